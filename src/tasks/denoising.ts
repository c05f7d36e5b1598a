// Text denoising (BART's text infilling, OFA's text-only objective): whole spans of words are
// replaced by one <mask> each until about 30% of the words are hidden, and the model writes the
// complete text back. Span lengths follow Poisson(3), so the model must also infer how many words
// each <mask> stands for. The masking is seeded per row: the same row is masked the same way in
// every epoch and on resume.
import { Rng } from '../data/random.js';
import { TASKS } from './instructions.js';

export const MASK_TOKEN = '<mask>';

export interface DenoisingOptions {
  /** Share of words hidden (default 0.3). */
  ratio?: number;
  /** Mean span length in words (default 3). */
  meanSpan?: number;
}

/** A Poisson draw by inversion (small means only). */
function poisson(rng: Rng, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0, p = rng.next();
  while (p > limit) {
    k++;
    p *= rng.next();
  }
  return k;
}

/** The words of `text` with spans replaced by <mask>, joined by single spaces. */
export function maskSpans(text: string, seed: number, o: DenoisingOptions = {}): string {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  if (words.length === 0) return '';
  const rng = new Rng(seed);
  const toHide = Math.max(1, Math.round((o.ratio ?? 0.3) * words.length));
  const hidden = new Array<boolean>(words.length).fill(false);
  let count = 0;
  for (let tries = 0; count < toHide && tries < 10 * words.length; tries++) {
    const length = Math.min(Math.max(1, poisson(rng, o.meanSpan ?? 3)), toHide - count);
    const start = rng.int(words.length);
    for (let i = start; i < Math.min(words.length, start + length); i++) {
      if (!hidden[i]) { hidden[i] = true; count++; }
    }
  }
  const out: string[] = [];
  words.forEach((w, i) => {
    if (!hidden[i]) out.push(w);
    else if (i === 0 || !hidden[i - 1]) out.push(MASK_TOKEN);
  });
  return out.join(' ');
}

/** The denoise task's example for one text: the instruction around the masked text, and the text. */
export function denoisingPair(text: string, seed: number, o: DenoisingOptions = {}): { source: string; target: string } {
  return { source: TASKS.denoise.instruction.replace('{}', maskSpans(text, seed, o)), target: text.trim() };
}
