// The `pre_tokenizer` of a Hugging Face tokenizer.json: how normalized text is cut into the words
// that BPE merges within. GPT-2 and RoBERTa cut with ByteLevel's own regex; Llama-3, Qwen, GPT-4o
// and DeepSeek cut with `Split` regexes first and end with a ByteLevel that only maps bytes
// (`use_regex: false`). Every step runs on each piece the step before it produced, as in
// `tokenizers`' PreTokenizedString.split.
import { preTokenize } from './byteLevel.js';
import { literalRegExp, onigRegExp } from './onigPattern.js';

/** Text in, words out (still Unicode: the tokenizer turns each into byte characters). */
export type PreTokenizer = (text: string) => string[];

export class UnsupportedPreTokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedPreTokenizerError';
  }
}

/** What a Split keeps of the pattern's matches (tokenizers' SplitDelimiterBehavior). */
type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS: ReadonlySet<string> = new Set<Behavior>(['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']);

type Step = (piece: string, out: string[]) => void;

/** Cut `s` at the matches of `re`, as tokenizers' NormalizedString::split does; empty pieces are dropped. */
function split(s: string, re: RegExp, behavior: Behavior, invert: boolean, out: string[]): void {
  const parts: Array<[string, boolean]> = [];
  let prev = 0;
  for (const m of s.matchAll(re)) {
    if (m[0].length === 0) continue;
    if (m.index > prev) parts.push([s.slice(prev, m.index), invert]);
    parts.push([m[0], !invert]);
    prev = m.index + m[0].length;
  }
  if (prev < s.length) parts.push([s.slice(prev), invert]);
  const pieces: string[] = [];
  let previousMatch = false;
  switch (behavior) {
    case 'Isolated':
      for (const [p] of parts) pieces.push(p);
      break;
    case 'Removed':
      for (const [p, isMatch] of parts) if (!isMatch) pieces.push(p);
      break;
    case 'MergedWithPrevious':
      for (const [p, isMatch] of parts) {
        if (isMatch && !previousMatch && pieces.length > 0) pieces[pieces.length - 1] += p;
        else pieces.push(p);
        previousMatch = isMatch;
      }
      break;
    case 'MergedWithNext': {
      for (let i = parts.length - 1; i >= 0; i--) {
        const [p, isMatch] = parts[i]!;
        if (isMatch && !previousMatch && pieces.length > 0) pieces[pieces.length - 1] = p + pieces[pieces.length - 1];
        else pieces.push(p);
        previousMatch = isMatch;
      }
      pieces.reverse();
      break;
    }
    case 'Contiguous':
      parts.forEach(([p, isMatch], i) => {
        if (i > 0 && isMatch === previousMatch) pieces[pieces.length - 1] += p;
        else pieces.push(p);
        previousMatch = isMatch;
      });
      break;
  }
  for (const p of pieces) if (p.length > 0) out.push(p);
}

function describe(json: unknown): string {
  const type = (json as { type?: unknown } | null)?.type;
  return JSON.stringify(type ?? json);
}

function stepsOf(json: unknown, steps: Step[]): void {
  const node = (json ?? {}) as Record<string, unknown>;
  switch (node.type) {
    case 'Sequence': {
      if (!Array.isArray(node.pretokenizers)) throw new UnsupportedPreTokenizerError('Sequence pre-tokenizer without a "pretokenizers" list');
      for (const p of node.pretokenizers) stepsOf(p, steps);
      return;
    }
    case 'Split': {
      const pattern = node.pattern as { Regex?: unknown; String?: unknown } | undefined;
      let re: RegExp;
      if (typeof pattern?.Regex === 'string') {
        try {
          re = onigRegExp(pattern.Regex);
        } catch (err) {
          throw new UnsupportedPreTokenizerError(`Split pattern ${JSON.stringify(pattern.Regex)}: ${(err as Error).message}`);
        }
      } else if (typeof pattern?.String === 'string') re = literalRegExp(pattern.String);
      else throw new UnsupportedPreTokenizerError(`Split pre-tokenizer needs a {"Regex": …} or {"String": …} pattern, got ${JSON.stringify(pattern)}`);
      const behavior = node.behavior;
      if (typeof behavior !== 'string' || !BEHAVIORS.has(behavior)) throw new UnsupportedPreTokenizerError(`Split behavior ${JSON.stringify(behavior)} is not one of ${[...BEHAVIORS].join(', ')}`);
      const invert = node.invert === true;
      steps.push((piece, out) => split(piece, re, behavior as Behavior, invert, out));
      return;
    }
    case 'Digits': {
      const re = /\p{N}/gu;
      const behavior: Behavior = node.individual_digits === true ? 'Isolated' : 'Contiguous';
      steps.push((piece, out) => split(piece, re, behavior, false, out));
      return;
    }
    case 'ByteLevel': {
      const prefix = node.add_prefix_space === true;
      // use_regex defaults to true in tokenizers (files older than the field mean GPT-2's regex).
      const regex = node.use_regex !== false;
      steps.push((piece, out) => {
        const p = prefix && !piece.startsWith(' ') ? ' ' + piece : piece;
        if (regex) for (const w of preTokenize(p)) out.push(w);
        else out.push(p);
      });
      return;
    }
    default:
      throw new UnsupportedPreTokenizerError(`pre-tokenizer ${describe(json)} is not supported (m6 reads ByteLevel, Split, Digits and Sequence of them)`);
  }
}

function lastIsByteLevel(json: unknown): boolean {
  const node = (json ?? {}) as { type?: unknown; pretokenizers?: unknown };
  if (node.type === 'ByteLevel') return true;
  return node.type === 'Sequence' && Array.isArray(node.pretokenizers) && node.pretokenizers.length > 0 && lastIsByteLevel(node.pretokenizers.at(-1));
}

/**
 * The pre-tokenizer of a byte-level BPE file. ByteLevel must come last: steps after it would cut
 * byte characters rather than text, which no file m6 knows of does.
 */
export function preTokenizerFromJson(json: unknown): PreTokenizer {
  if (!lastIsByteLevel(json)) {
    throw new UnsupportedPreTokenizerError(`pre_tokenizer ${describe(json)} is not ByteLevel, nor a Sequence ending with ByteLevel; m6 reads byte-level BPE tokenizers only`);
  }
  const steps: Step[] = [];
  stepsOf(json, steps);
  if (steps.length === 1) {
    const only = steps[0]!;
    return (text) => {
      const out: string[] = [];
      only(text, out);
      return out;
    };
  }
  return (text) => {
    let pieces = [text];
    for (const step of steps) {
      const next: string[] = [];
      for (const p of pieces) step(p, next);
      pieces = next;
    }
    return pieces;
  };
}
