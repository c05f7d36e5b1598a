// Generation: M6 writes text or image codes one token at a time after reading a prompt (image
// patches and/or source text). Read in order: options and results, the two ways of running the
// model step by step (with a KV cache, and without one as the reference), greedy/sampled decoding,
// beam search, then `generate` and `generateStream`.
//
// Like nanoGPT's generate, it is a plain loop: feed what was chosen, take the last position's
// logits, rule out what may not come next, choose. The prefix is read once (bidirectionally) and
// its keys/values cached; each new token then costs one position through the stack.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { KvCache } from '../nn/index.js';
import { CORE_SPECIAL_TOKENS } from '../data/tokenizer.js';
import { gridSize } from './config.js';
import { isolatedImageMask, prefixLmMask, type M6Model, type TargetKind } from './m6.js';
import { applyBan, bannedTokens, sampleNext, validateSampling, type SamplingOptions } from './sampling.js';

// The tokenizer puts its core specials first (<pad> <bos> <eos> <unk>): these are their ids.
const PAD_ID = CORE_SPECIAL_TOKENS.indexOf('<pad>');
const BOS_ID = CORE_SPECIAL_TOKENS.indexOf('<bos>');
const EOS_ID = CORE_SPECIAL_TOKENS.indexOf('<eos>');

/** What the model reads before it writes. Rows of `source` may be right-padded (`sourceMask` false). */
export interface GenerationPrompt {
  images?: Tensor;        // (B, 3, H, W)
  source?: Tensor;        // (B, S) int64
  sourceMask?: Tensor;    // (B, S) bool, true = a real token
  /** Rows to generate when there is neither image nor source (unconditional generation); default 1. */
  batch?: number;
  /** The image does not attend the source (answer prompts of a `packAnswers` model: M6Config says why). */
  isolateImage?: boolean;
}

export interface GenerateOptions extends SamplingOptions {
  /** 'text' (default) never emits image codes; 'image' emits exactly grid² image codes, then stops. */
  kind?: TargetKind;
  /** Most tokens to write per row (default: cfg.maxTextLen; for images, grid²). */
  maxNewTokens?: number;
  /** Draw tokens instead of taking the argmax. Implied by temperature, topK or topP. */
  sample?: boolean;
  /** Seeds libtorch's generator before sampling: the same seed gives the same tokens. */
  seed?: number;
  /** Beam search with this many hypotheses per prompt (1 = greedy or sampling). */
  numBeams?: number;
  /** Beam scores are logProb / length^lengthPenalty: > 0 favours longer outputs (default 1). */
  lengthPenalty?: number;
  /** Beam search ends a prompt as soon as it has numBeams finished hypotheses (default true); when false,
   * it goes on while a running beam could still beat the worst finished one. */
  earlyStopping?: boolean;
  /** Reuse keys/values of earlier positions (default true). false recomputes the whole sequence every
   * step: the reference the cache is tested against, and the contrast in the bench. */
  useCache?: boolean;
  /** Tokens that end a text row (default [eos]). The stop token is part of the output. */
  stopTokens?: readonly number[];
  /** Text tokens never to emit (default [pad, bos]). */
  suppressTokens?: readonly number[];
  bosId?: number;
  padId?: number;
  /**
   * Classifier-free guidance (Ho & Salimans; Parti and Muse for image tokens): every step also runs
   * the model on `unconditional` (the prompt left out, e.g. design's bare instruction: one row, or
   * one per prompt), and the next token is drawn from u + scale·(c − u) of the two logits. scale 1
   * is plain conditional decoding; > 1 follows the prompt more closely, at twice the compute. The
   * model must have been trained with prompts dropped (M6Config.designPromptDropout).
   */
  guidance?: { scale: number; unconditional: GenerationPrompt };
  /** Called for each token as soon as it is chosen (streaming). Beam search calls it at the end, for
   * the best hypothesis, because until then no token is final. */
  onToken?: (token: number, step: number, row: number) => void;
  /** generateStream: what each step runs inside, besides noGrad (e.g. autocast, which, like grad
   * mode, holds only for the synchronous call it wraps, not across the stream's awaits). */
  stepContext?: <T>(fn: () => T) => T;
  /** generateStream / generateAsync: checked between steps; once aborted, the generation stops there
   * (its tensors freed) and throws the signal's reason. */
  signal?: AbortSignal;
}

export type FinishReason = 'stop' | 'length';

export interface GenerateResult {
  /** Per prompt: the tokens written (BOS excluded; the stop token that ended a row included). */
  sequences: number[][];
  /** Per prompt: Σ log p(token) under the model's distribution after the constraints (temperature,
   * top-k and top-p shape the draw, not this score). */
  logProbs: number[];
  /** Per prompt: what the search ranked by: logProb / length^lengthPenalty for beams, logProb otherwise. */
  scores: number[];
  finishReasons: FinishReason[];
}

export interface TokenEvent { token: number; step: number; row: number }

// ---------------------------------------------------------------------------------------------
// Running the model one position at a time. Both runners give the same logits; only the cost differs.

/** One decoding step of the model for N rows. */
interface Stepper {
  /** Next-token logits (N, V) float32 after feeding `tokens` (one per row), or BOS when undefined (the first step). */
  next(tokens: readonly number[] | undefined): Tensor;
  /** Row i continues row rows[i] (beam search keeps, drops and duplicates hypotheses). */
  reorder(rows: readonly number[]): void;
  dispose(): void;
}

/**
 * With a KV cache: step 0 runs the prefix plus BOS under the prefix-LM mask and caches every
 * layer's keys/values; step t feeds one token at target position t, whose query attends to every
 * real cached key. Padded prefix positions stay in the cache (rows have one length) but are masked.
 */
class CachedStepper implements Stepper {
  private caches: KvCache[] = [];
  private keyValid: Tensor | undefined;   // (N, P + maxNew) bool: which cached positions are real keys
  private prefixLength = 0;
  private fed = 0;                        // target positions in the cache

  constructor(private readonly model: M6Model, private readonly prompt: GenerationPrompt, private readonly batch: number,
    private readonly expand: number, private readonly kind: TargetKind, private readonly maxNew: number, private readonly bos: number) {}

  next(tokens: readonly number[] | undefined): Tensor {
    if (!tokens) return this.prefill();
    const { model } = this;
    const N = tokens.length;
    const device = this.keyValid!.device;
    const ids = torch.tensor([...tokens], { dtype: 'int64', device, shape: [N, 1] });
    const x = model.embedTarget(ids, this.kind, this.fed);                                           // (N, 1, D)
    const mask = this.keyValid!.narrow(1, 0, this.prefixLength + this.fed + 1).unsqueeze(1).unsqueeze(1);  // (N, 1, 1, Tk)
    const h = model.runBlocks(x, mask, this.caches).x;
    this.fed++;
    return model.head(h).squeeze(1).float();
  }

  private prefill(): Tensor {
    const { model, prompt, batch: B, maxNew } = this;
    const device = modelDevice(model);
    const prefix = model.embedPrefix(prompt.images, prompt.source, prompt.sourceMask, B);
    const P = prefix.x?.shape[1] ?? 0;
    this.caches = Array.from({ length: model.cfg.layers }, () => new KvCache(P + maxNew));
    const tgt = model.embedTarget(torch.full([B, 1], this.bos, { dtype: 'int64', device }), this.kind, 0);
    const x = prefix.x ? torch.cat([prefix.x, tgt], 1) : tgt;                                       // (B, P + 1, D)
    const prefixValid = prefix.valid ?? torch.ones([B, 0], { dtype: 'bool', device });
    let keyValid = torch.cat([prefixValid, torch.ones([B, maxNew], { dtype: 'bool', device })], 1);
    const isolated = isolatedImageMask(prompt.isolateImage, prompt.images !== undefined, P, prompt.source?.shape[1] ?? 0);
    const h = model.runBlocks(x, prefixLmMask(keyValid.narrow(1, 0, P + 1), P, isolated), this.caches).x;
    let logits = model.head(h.narrow(1, P, 1)).squeeze(1);                                          // (B, V)
    if (this.expand > 1) {
      // Beam search: every prompt starts numBeams identical hypotheses; copy the cache rather than
      // reading the prefix numBeams times.
      const rows = repeatRows(B, this.expand, device);
      for (const c of this.caches) c.reorder(rows);
      keyValid = keyValid.indexSelect(0, rows);
      logits = logits.indexSelect(0, rows);
    }
    this.keyValid = keyValid.keep();
    this.prefixLength = P;
    this.fed = 1;
    return logits.float();
  }

  reorder(rows: readonly number[]): void {
    torch.noGrad(() => torch.scope(() => {
      const index = torch.tensor([...rows], { dtype: 'int64', device: this.keyValid!.device });
      for (const c of this.caches) c.reorder(index);
      const kv = this.keyValid!.indexSelect(0, index).keep();
      this.keyValid!.dispose();
      this.keyValid = kv;
    }));
  }

  dispose(): void {
    for (const c of this.caches) c.dispose();
    this.keyValid?.dispose();
  }
}

/** Without a cache: every step is a full teacher-forced forward over prompt + everything written so far. */
class FullStepper implements Stepper {
  private seqs: number[][];
  private readonly prompt: GenerationPrompt;
  private readonly owned: Tensor[] = [];

  constructor(private readonly model: M6Model, prompt: GenerationPrompt, batch: number, expand: number,
    private readonly kind: TargetKind, bos: number) {
    this.seqs = Array.from({ length: batch * expand }, () => [bos]);
    if (expand === 1) { this.prompt = prompt; return; }
    this.prompt = torch.noGrad(() => torch.scope(() => {
      const rows = repeatRows(batch, expand, modelDevice(model));
      const grow = (t: Tensor | undefined) => { if (!t) return undefined; const g = t.indexSelect(0, rows).keep(); this.owned.push(g); return g; };
      return { images: grow(prompt.images), source: grow(prompt.source), sourceMask: grow(prompt.sourceMask), ...(prompt.isolateImage !== undefined ? { isolateImage: prompt.isolateImage } : {}) };
    }));
  }

  next(tokens: readonly number[] | undefined): Tensor {
    if (tokens) this.seqs.forEach((s, i) => s.push(tokens[i]));
    const target = torch.tensor(this.seqs, { dtype: 'int64', device: modelDevice(this.model) });
    const { images, source, sourceMask, isolateImage } = this.prompt;
    const logits = this.model.forward({ images, source, sourceMask, target, targetKind: this.kind, ...(isolateImage !== undefined ? { isolateImage } : {}) }).logits;  // (N, T, V)
    return logits.select(1, target.shape[1] - 1).float();
  }

  reorder(rows: readonly number[]): void { this.seqs = rows.map((r) => [...this.seqs[r]]); }

  dispose(): void { for (const t of this.owned) t.dispose(); }
}

/**
 * Classifier-free guidance over another stepper that runs 2N rows: the N prompts, then their N
 * unconditional twins. Both halves are fed the same tokens (the guided choice) and reordered together.
 */
class GuidedStepper implements Stepper {
  constructor(private readonly inner: Stepper, private readonly rows: number, private readonly scale: number) {}

  next(tokens: readonly number[] | undefined): Tensor {
    const logits = this.inner.next(tokens && [...tokens, ...tokens]);                // (2N, V)
    const N = logits.shape[0] / 2;
    const c = logits.narrow(0, 0, N), u = logits.narrow(0, N, N);
    return u.add(c.sub(u).mul(this.scale));
  }

  reorder(rows: readonly number[]): void {
    const N = this.rows;
    this.inner.reorder([...rows, ...rows.map((r) => r + N)]);
  }

  dispose(): void { this.inner.dispose(); }
}

/**
 * The prompt and its unconditional twin as one prompt of 2B rows (sources right-padded to one
 * length); an unconditional prompt of one row stands for every prompt. The tensors made are pushed
 * on `owned` (kept: the generation frees them).
 */
function guidedPrompt(prompt: GenerationPrompt, unconditional: GenerationPrompt, pad: number, owned: Tensor[]): GenerationPrompt {
  const B = promptBatch(prompt), U = promptBatch(unconditional);
  if (U !== 1 && U !== B) throw new RangeError(`guidance: the unconditional prompt has ${U} rows; give 1 or one per prompt (${B})`);
  if ((prompt.images === undefined) !== (unconditional.images === undefined)) throw new RangeError('guidance: the prompt and its unconditional twin must both have images or both have none');
  if ((prompt.source === undefined) !== (unconditional.source === undefined)) throw new RangeError('guidance: the prompt and its unconditional twin must both have a source or both have none');
  return torch.noGrad(() => torch.scope(() => {
    const rows = (t: Tensor) => (U === B ? t : t.expand(B, ...t.shape.slice(1)));
    const out: GenerationPrompt = { batch: 2 * B, ...(prompt.isolateImage !== undefined ? { isolateImage: prompt.isolateImage } : {}) };
    if (prompt.images && unconditional.images) out.images = torch.cat([prompt.images, rows(unconditional.images)], 0);
    if (prompt.source && unconditional.source) {
      const device = prompt.source.device;
      const maskOf = (p: GenerationPrompt) => p.sourceMask ?? torch.ones(p.source!.shape, { dtype: 'bool', device });
      const L = Math.max(prompt.source.shape[1], unconditional.source.shape[1]);
      const widen = (t: Tensor, fill: number | boolean, dtype: 'int64' | 'bool') => (t.shape[1] === L ? t : torch.cat([t, torch.full([t.shape[0], L - t.shape[1]], fill, { dtype, device })], 1));
      out.source = torch.cat([widen(prompt.source, pad, 'int64'), rows(widen(unconditional.source, pad, 'int64'))], 0);
      out.sourceMask = torch.cat([widen(maskOf(prompt), false, 'bool'), rows(widen(maskOf(unconditional), false, 'bool'))], 0);
    }
    for (const t of [out.images, out.source, out.sourceMask]) if (t) owned.push(t.keep());
    return out;
  }));
}

// ---------------------------------------------------------------------------------------------
// Searches. Each step() runs one model step in a scope under noGrad and returns the tokens chosen.

interface Settings {
  kind: TargetKind; maxNew: number; stop: Set<number>; pad: number; numBeams: number;
  sample: boolean; sampling: SamplingOptions; lengthPenalty: number; earlyStopping: boolean;
}

interface Search {
  readonly done: boolean;
  step(): TokenEvent[];
  result(): GenerateResult;
}

/** Greedy or sampled decoding: one hypothesis per prompt. */
class TokenSearch implements Search {
  private readonly seqs: number[][];
  private readonly logProbs: number[];
  private readonly reasons: (FinishReason | undefined)[];
  private last: number[] | undefined;
  private steps = 0;

  constructor(private readonly stepper: Stepper, private readonly banned: Tensor, private readonly s: Settings, batch: number) {
    this.seqs = Array.from({ length: batch }, () => []);
    this.logProbs = new Array<number>(batch).fill(0);
    this.reasons = new Array<FinishReason | undefined>(batch).fill(undefined);
  }

  get done(): boolean { return this.reasons.every((r) => r !== undefined); }

  step(): TokenEvent[] {
    const { chosen, logp } = torch.noGrad(() => torch.scope(() => {
      const logits = applyBan(this.stepper.next(this.last), this.banned);    // (B, V)
      const next = this.s.sample ? sampleNext(logits, this.s.sampling) : logits.argmax(-1);
      const logp = torch.nn.logSoftmax(logits, -1).gather(1, next.unsqueeze(1)).squeeze(1);
      return { chosen: next.toArray() as number[], logp: logp.toArray() as number[] };
    }));
    const step = this.steps++;
    const events: TokenEvent[] = [];
    chosen.forEach((token, row) => {
      if (this.reasons[row]) return;        // finished rows keep being fed padding; their outputs are ignored
      this.seqs[row].push(token);
      this.logProbs[row] += logp[row];
      events.push({ token, step, row });
      if (this.s.stop.has(token)) this.reasons[row] = 'stop';
      else if (this.steps === this.s.maxNew) this.reasons[row] = 'length';
    });
    this.last = chosen.map((t, row) => (this.reasons[row] === 'stop' ? this.s.pad : t));
    return events;
  }

  result(): GenerateResult {
    return { sequences: this.seqs, logProbs: this.logProbs, scores: [...this.logProbs], finishReasons: this.reasons.map((r) => r ?? 'length') };
  }
}

interface Hypothesis { tokens: number[]; logProb: number; score: number; reason: FinishReason }

/**
 * Beam search over numBeams hypotheses per prompt (rows b·K … b·K+K-1). Each step extends every
 * hypothesis by every token, keeps the K best non-stop continuations per prompt, and sets aside
 * continuations that end in a stop token (if they rank in the top K) as finished hypotheses.
 */
class BeamSearch implements Search {
  private seqs: number[][];
  private scores: number[];                 // Σ log p of each running hypothesis
  private readonly finished: Hypothesis[][];
  private readonly promptDone: boolean[];
  private last: number[] | undefined;
  private steps = 0;
  private readonly K: number;

  constructor(private readonly stepper: Stepper, private readonly banned: Tensor, private readonly s: Settings, private readonly batch: number) {
    this.K = s.numBeams;
    const N = batch * this.K;
    this.seqs = Array.from({ length: N }, () => []);
    // All K hypotheses of a prompt start identical: only the first may expand, or step 0 would pick K copies.
    this.scores = Array.from({ length: N }, (_, i) => (i % this.K === 0 ? 0 : -Infinity));
    this.finished = Array.from({ length: batch }, () => []);
    this.promptDone = new Array<boolean>(batch).fill(false);
  }

  get done(): boolean { return this.promptDone.every(Boolean); }

  step(): TokenEvent[] {
    const { K, batch: B } = this;
    const { values, indices, V } = torch.noGrad(() => torch.scope(() => {
      const logp = torch.nn.logSoftmax(applyBan(this.stepper.next(this.last), this.banned), -1);   // (B·K, V)
      const V = logp.shape[1];
      const total = logp.add(torch.tensor(this.scores, { device: logp.device }).unsqueeze(1)).view(B, K * V);
      // K + |stop| candidates always hold K that do not stop.
      const top = total.topk(Math.min(K + this.s.stop.size, K * V), -1);
      return { values: top.values.toArray() as number[][], indices: top.indices.toArray() as number[][], V };
    }));
    this.steps++;
    const origins: number[] = [], tokens: number[] = [], scores: number[] = [];
    for (let b = 0; b < B; b++) {
      if (this.promptDone[b]) {     // keep its rows in place; they are fed padding and ignored
        for (let j = 0; j < K; j++) { origins.push(b * K + j); tokens.push(this.s.pad); scores.push(this.scores[b * K + j]); }
        continue;
      }
      let taken = 0;
      for (let rank = 0; rank < values[b].length && taken < K; rank++) {
        const score = values[b][rank];
        if (score === -Infinity) break;
        const row = b * K + Math.floor(indices[b][rank] / V), token = indices[b][rank] % V;
        if (this.s.stop.has(token)) {
          if (rank < K) this.addFinished(b, [...this.seqs[row], token], score, 'stop');
          continue;
        }
        origins.push(row); tokens.push(token); scores.push(score); taken++;
      }
      for (; taken < K; taken++) { origins.push(b * K); tokens.push(this.s.pad); scores.push(-Infinity); }  // nothing left to expand
    }
    this.seqs = origins.map((o, i) => [...this.seqs[o], tokens[i]]);
    this.scores = scores;
    this.last = tokens;
    for (let b = 0; b < B; b++) if (!this.promptDone[b]) this.promptDone[b] = this.isDone(b);
    if (!this.done && origins.some((o, i) => o !== i)) this.stepper.reorder(origins);   // (a cache copy per layer)
    return [];
  }

  private isDone(b: number): boolean {
    const { K } = this;
    const running = this.scores.slice(b * K, b * K + K);
    if (this.steps === this.s.maxNew || running.every((s) => s === -Infinity)) {
      running.forEach((s, j) => { if (s > -Infinity) this.addFinished(b, this.seqs[b * K + j], s, 'length'); });
      return true;
    }
    const hyps = this.finished[b];
    if (hyps.length < K) return false;
    if (this.s.earlyStopping) return true;
    // A running hypothesis of the current length that cannot beat the worst finished one ends the prompt
    // (Hugging Face's heuristic: exact for lengthPenalty ≤ 0 and close to it otherwise).
    const bestRunning = Math.max(...running) / this.steps ** this.s.lengthPenalty;
    return bestRunning <= hyps[hyps.length - 1].score;
  }

  /** Adds a finished hypothesis, keeping the K best by length-normalised score. */
  private addFinished(b: number, tokens: number[], logProb: number, reason: FinishReason): void {
    const hyps = this.finished[b];
    hyps.push({ tokens, logProb, score: logProb / tokens.length ** this.s.lengthPenalty, reason });
    hyps.sort((x, y) => y.score - x.score);
    if (hyps.length > this.K) hyps.length = this.K;
  }

  result(): GenerateResult {
    const best = this.finished.map((h) => h[0] ?? { tokens: [], logProb: -Infinity, score: -Infinity, reason: 'length' as const });
    return {
      sequences: best.map((h) => h.tokens), logProbs: best.map((h) => h.logProb),
      scores: best.map((h) => h.score), finishReasons: best.map((h) => h.reason),
    };
  }
}

// ---------------------------------------------------------------------------------------------

/** A generation in progress: the search, and the tensors it holds until dispose(). */
class Generation {
  readonly search: Search;
  private readonly stepper: Stepper;
  private readonly banned: Tensor;
  private readonly owned: Tensor[] = [];
  private readonly wasTraining: boolean;

  constructor(readonly model: M6Model, prompt: GenerationPrompt, opts: GenerateOptions) {
    const cfg = model.cfg;
    const batch = promptBatch(prompt);
    const kind = opts.kind ?? 'text';
    const cells = gridSize(cfg) ** 2;
    if (kind === 'image' && opts.maxNewTokens !== undefined && opts.maxNewTokens !== cells) {
      throw new RangeError(`an image is exactly ${cells} codes (grid ${gridSize(cfg)}²) for ${cfg.name}; got maxNewTokens ${opts.maxNewTokens}`);
    }
    const maxNew = kind === 'image' ? cells : opts.maxNewTokens ?? cfg.maxTextLen;
    if (!Number.isInteger(maxNew) || maxNew < 1 || maxNew > cfg.maxTextLen) {
      throw new RangeError(`maxNewTokens must be an integer in [1, ${cfg.maxTextLen}] (${cfg.name}'s target positions); got ${maxNew}`);
    }
    const numBeams = opts.numBeams ?? 1;
    if (!Number.isInteger(numBeams) || numBeams < 1) throw new RangeError(`numBeams must be a positive integer (got ${numBeams})`);
    const sampling: SamplingOptions = { temperature: opts.temperature, topK: opts.topK, topP: opts.topP };
    validateSampling(sampling);
    const sample = opts.sample ?? (opts.temperature !== undefined || opts.topK !== undefined || opts.topP !== undefined);
    if (sample && numBeams > 1) throw new RangeError('beam search does not sample: give numBeams or sampling options, not both');
    const pad = opts.padId ?? PAD_ID, bos = opts.bosId ?? BOS_ID;
    // An image ends by length alone; its stop tokens (text) are banned anyway.
    const stop = new Set(kind === 'image' ? [] : opts.stopTokens ?? [EOS_ID]);
    const s: Settings = {
      kind, maxNew, stop, pad, numBeams, sample, sampling,
      lengthPenalty: opts.lengthPenalty ?? 1, earlyStopping: opts.earlyStopping ?? true,
    };

    const scale = opts.guidance?.scale ?? 1;
    if (!(Number.isFinite(scale) && scale >= 0)) throw new RangeError(`guidance scale must be a number ≥ 0 (1 = none), got ${scale}`);
    const guided = opts.guidance !== undefined && scale !== 1;
    const stepped = guided ? guidedPrompt(prompt, opts.guidance!.unconditional, pad, this.owned) : prompt;
    const rows = guided ? 2 * batch : batch;
    this.banned = torch.noGrad(() => bannedTokens(cfg, kind, opts.suppressTokens ?? [pad, bos], modelDevice(model)).keep());
    const stepper = (opts.useCache ?? true)
      ? new CachedStepper(model, stepped, rows, numBeams, kind, maxNew, bos)
      : new FullStepper(model, stepped, rows, numBeams, kind, bos);
    this.stepper = guided ? new GuidedStepper(stepper, batch * numBeams, scale) : stepper;
    this.search = numBeams > 1 ? new BeamSearch(this.stepper, this.banned, s, batch) : new TokenSearch(this.stepper, this.banned, s, batch);
    if (sample && opts.seed !== undefined) torch.manualSeed(opts.seed);
    // Generation runs in eval mode (no dropout) and gives the model back as it found it.
    this.wasTraining = model.training;
    model.eval();
  }

  dispose(): void {
    this.stepper.dispose();
    this.banned.dispose();
    for (const t of this.owned) t.dispose();
    this.model.train(this.wasTraining);
  }
}

/**
 * Writes up to maxNewTokens tokens after each prompt: greedy by default; sampled with
 * temperature/topK/topP (and a seed); or beam search with numBeams > 1.
 *
 *   const { sequences } = generate(model, { images, source }, { kind: 'text', maxNewTokens: 32 });
 */
export function generate(model: M6Model, prompt: GenerationPrompt, opts: GenerateOptions = {}): GenerateResult {
  const g = torch.noGrad(() => new Generation(model, prompt, opts));
  try {
    while (!g.search.done) for (const e of torch.noGrad(() => g.search.step())) opts.onToken?.(e.token, e.step, e.row);
    const r = g.search.result();
    if (opts.onToken && (opts.numBeams ?? 1) > 1) r.sequences.forEach((seq, row) => seq.forEach((t, step) => opts.onToken!(t, step, row)));
    return r;
  } finally {
    g.dispose();
  }
}

/**
 * `generate` as an async iterator of tokens, yielding to the event loop between steps (a server
 * streams tokens while other requests proceed). Returns the GenerateResult when done. Breaking out
 * of the loop frees everything. Beam search yields its best hypotheses at the end.
 *
 *   for await (const { token, row } of generateStream(model, prompt, opts)) send(row, token);
 */
export async function* generateStream(model: M6Model, prompt: GenerationPrompt, opts: GenerateOptions = {}): AsyncGenerator<TokenEvent, GenerateResult, void> {
  // Generation never needs gradients, and grad mode is per call: each step runs under noGrad
  // itself, because the caller's noGrad has ended by the time a later step of the stream runs.
  const within = opts.stepContext ?? ((fn) => fn());
  const g = within(() => torch.noGrad(() => new Generation(model, prompt, opts)));
  try {
    while (!g.search.done) {
      for (const e of within(() => torch.noGrad(() => g.search.step()))) yield e;
      await new Promise<void>((resolve) => setImmediate(resolve));
      opts.signal?.throwIfAborted();
    }
    const r = g.search.result();
    if ((opts.numBeams ?? 1) > 1) for (const [row, seq] of r.sequences.entries()) for (const [step, token] of seq.entries()) yield { token, step, row };
    return r;
  } finally {
    g.dispose();
  }
}

/**
 * `generate` a step at a time: the event loop runs between decode steps (a server answers health
 * checks and takes requests while a batch generates), and `opts.signal` stops it at the next step.
 * The prompt's tensors must outlive the call (keep them; a sync scope closes at the first await).
 */
export async function generateAsync(model: M6Model, prompt: GenerationPrompt, opts: GenerateOptions = {}): Promise<GenerateResult> {
  opts.signal?.throwIfAborted();
  const stream = generateStream(model, prompt, opts);
  for (;;) {
    const next = await stream.next();
    if (next.done) return next.value;
    opts.onToken?.(next.value.token, next.value.step, next.value.row);
  }
}

// ---------------------------------------------------------------------------------------------

function modelDevice(model: M6Model): torch.Device {
  return model.device;
}

/** [0, 0, …, 1, 1, …]: each of n rows k times (n·k) — a prompt's rows for its k beams. */
function repeatRows(n: number, k: number, device: torch.Device): Tensor {
  return torch.arange(n, undefined, 1, { device }).unsqueeze(1).expand(n, k).reshape(-1);
}

/** The number of prompts, checked across images, source and sourceMask. */
function promptBatch(p: GenerationPrompt): number {
  const sizes = [['images', p.images], ['source', p.source], ['sourceMask', p.sourceMask]] as const;
  const given = sizes.filter(([, t]) => t !== undefined).map(([name, t]) => [name, t!.shape[0]] as const);
  if (!given.length) return p.batch ?? 1;
  const B = given[0][1];
  const bad = given.find(([, n]) => n !== B);
  if (bad) throw new RangeError(`prompt batch sizes differ: ${given.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (p.sourceMask && (!p.source || p.sourceMask.shape.join() !== p.source.shape.join())) {
    throw new RangeError(`sourceMask ${JSON.stringify(p.sourceMask.shape)} must match source ${JSON.stringify(p.source?.shape ?? null)}`);
  }
  if (p.batch !== undefined && p.batch !== B) throw new RangeError(`prompt.batch is ${p.batch} but the prompt tensors hold ${B} rows`);
  return B;
}
