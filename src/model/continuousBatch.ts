// Continuous batching (Orca's iteration-level scheduling, TGI's router): rows join a running greedy
// text generation between its decode steps and leave as each finishes. A server's batch then stays
// full while requests come and go; with fixed batches, a batch waits for its longest row and the
// requests that arrive meanwhile wait for the whole batch, then start as a smaller one.
//
// Every row gets the tokens `generate` would give it alone. All rows share one KV cache per layer,
// (N, H, capacity, hd) with one fill length: a row's keys sit in the slots from where it joined to
// the fill length, and `keyValid` masks every other slot (before it joined, its prefix's padding).
// Positions are each row's own (its target position), so where its keys sit changes nothing. When
// rows join, the cache is rebuilt: their prefill's keys are placed to end at the shared length,
// slots no row uses any more are dropped, and the capacity is what the rows still have to write.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { KvCache } from '../nn/index.js';
import { isolatedImageMask, prefixLmMask, type M6Model } from './m6.js';
import { applyBan, bannedTokens } from './sampling.js';
import type { FinishReason, GenerationPrompt } from './generate.js';

export interface ContinuousBatchOptions {
  bosId: number;
  padId: number;
  /** Tokens that end a row; the stop token is part of its output. */
  stopTokens: readonly number[];
  /** Text tokens never to emit. */
  suppressTokens: readonly number[];
  /** What each step's compute runs inside (autocast), as `GenerateOptions.stepContext`. */
  stepContext?: <T>(fn: () => T) => T;
}

/** A row that has finished: the tokens it wrote (BOS excluded, the stop token included). */
export interface FinishedRow {
  id: number;
  tokens: number[];
  logProb: number;
  finishReason: FinishReason;
}

interface Row {
  readonly id: number;
  readonly maxNew: number;
  readonly tokens: number[];
  logProb: number;
  /** Its first slot in the shared cache. */
  start: number;
}

/**
 * A greedy text generation that rows join (`join`, between steps) and leave (finished, or
 * `drop`ped because their caller went away). Each `step` writes one token for every running row.
 *
 *   const batch = new ContinuousBatch(model, { bosId, padId, stopTokens: [eos], suppressTokens: [pad, bos] });
 *   const [id] = batch.join({ images }, [32]);
 *   while (batch.size > 0) for (const row of batch.step()) answer(row.id, row.tokens);
 */
export class ContinuousBatch {
  private rows: Row[] = [];
  private caches: KvCache[] = [];
  private keyValid: Tensor | undefined;   // (N, capacity) bool: the slots each row may attend to
  private finished: FinishedRow[] = [];
  private nextId = 0;
  private readonly banned: Tensor;
  private readonly stop: ReadonlySet<number>;
  private readonly wasTraining: boolean;
  private readonly within: <T>(fn: () => T) => T;

  constructor(private readonly model: M6Model, private readonly o: ContinuousBatchOptions) {
    this.banned = torch.noGrad(() => bannedTokens(model.cfg, 'text', o.suppressTokens, model.device).keep());
    this.stop = new Set(o.stopTokens);
    this.within = o.stepContext ?? ((fn) => fn());
    this.wasTraining = model.training;
    model.eval();
  }

  /** Rows running, plus finished ones the next step() hands back. */
  get size(): number {
    return this.rows.length + this.finished.length;
  }

  /**
   * Reads the prompts (one row each, right-padded source like `generate`'s) and writes each row's
   * first token; from the next step on they decode with the rest. maxNew[i]: most tokens for row i.
   * Returns the rows' ids. The prompt's tensors are read now and may be freed after the call.
   */
  join(prompt: GenerationPrompt, maxNew: readonly number[]): number[] {
    const M = (prompt.images ?? prompt.source)?.shape[0] ?? 0;
    if (M === 0 || maxNew.length !== M) throw new RangeError(`join: a prompt of ${M} rows (images or source) and as many maxNew, got ${maxNew.length}`);
    const limit = this.model.cfg.maxTextLen;
    const bad = maxNew.find((m) => !Number.isInteger(m) || m < 1 || m > limit);
    if (bad !== undefined) throw new RangeError(`maxNew must be an integer in [1, ${limit}] (${this.model.cfg.name}'s target positions); got ${bad}`);
    const rows: Row[] = maxNew.map((m) => ({ id: this.nextId++, maxNew: m, tokens: [], logProb: 0, start: 0 }));
    this.within(() => torch.noGrad(() => torch.scope(() => {
      const { model } = this;
      const device = model.device;
      const prefix = model.embedPrefix(prompt.images, prompt.source, prompt.sourceMask, M);
      const P = prefix.x?.shape[1] ?? 0;
      const caches = Array.from({ length: model.cfg.layers }, () => new KvCache(P + 1));
      try {
        const tgt = model.embedTarget(torch.full([M, 1], this.o.bosId, { dtype: 'int64', device }), 'text', 0);
        const x = prefix.x ? torch.cat([prefix.x, tgt], 1) : tgt;
        const valid = torch.cat([prefix.valid ?? torch.ones([M, 0], { dtype: 'bool', device }), torch.ones([M, 1], { dtype: 'bool', device })], 1);
        const isolated = isolatedImageMask(prompt.isolateImage, prompt.images !== undefined, P, prompt.source?.shape[1] ?? 0);
        const h = model.runBlocks(x, prefixLmMask(valid, P, isolated), caches).x;
        this.choose(rows, model.head(h.narrow(1, P, 1)).squeeze(1));
        this.merge(rows, caches, valid);
      } finally {
        for (const c of caches) c.dispose();
      }
    })));
    return rows.map((r) => r.id);
  }

  /** Stops row `id` (its caller went away); unknown or finished ids are ignored. */
  drop(id: number): void {
    const at = this.rows.findIndex((r) => r.id === id);
    if (at >= 0) this.keepRows(this.rows.filter((r) => r.id !== id));
    this.finished = this.finished.filter((r) => r.id !== id);
  }

  /** One token for every running row; returns the rows that have finished since the last call. */
  step(): FinishedRow[] {
    if (this.rows.length > 0) {
      this.within(() => torch.noGrad(() => torch.scope(() => {
        const { model, rows } = this;
        const N = rows.length, device = model.device;
        const ids = torch.tensor(rows.map((r) => r.tokens[r.tokens.length - 1]!), { dtype: 'int64', device, shape: [N, 1] });
        // A row has fed BOS and all its tokens but the last: that one goes in at its own position.
        const positions = torch.tensor(rows.map((r) => r.tokens.length), { dtype: 'int64', device, shape: [N, 1] });
        const x = model.embedTarget(ids, 'text', positions);
        const mask = this.keyValid!.narrow(1, 0, this.caches[0]!.length + 1).unsqueeze(1).unsqueeze(1);   // (N, 1, 1, Tk)
        const h = model.runBlocks(x, mask, this.caches).x;
        this.choose(rows, model.head(h).squeeze(1));
      })));
      const running = this.rows.filter((r) => !this.isDone(r));
      if (running.length < this.rows.length) this.keepRows(running);
    }
    const out = this.finished;
    this.finished = [];
    return out;
  }

  /** Frees the cache (rows still running are dropped) and gives the model back its mode. */
  dispose(): void {
    this.keepRows([]);
    this.finished = [];
    this.banned.dispose();
    this.model.train(this.wasTraining);
  }

  /** Greedy: each row's next token from its logits (N, V), and the finished rows set aside. */
  private choose(rows: readonly Row[], logits: Tensor): void {
    const banned = applyBan(logits.float(), this.banned);
    const next = banned.argmax(-1);
    const logp = torch.nn.logSoftmax(banned, -1).gather(1, next.unsqueeze(1)).squeeze(1);
    const chosen = next.toArray() as number[], lp = logp.toArray() as number[];
    rows.forEach((r, i) => {
      r.tokens.push(chosen[i]!);
      r.logProb += lp[i]!;
      if (this.isDone(r)) this.finished.push({ id: r.id, tokens: r.tokens, logProb: r.logProb, finishReason: this.stop.has(chosen[i]!) ? 'stop' : 'length' });
    });
  }

  private isDone(r: Row): boolean {
    return this.stop.has(r.tokens[r.tokens.length - 1]!) || r.tokens.length >= r.maxNew;
  }

  /**
   * Rebuilds the shared cache with `joining` (their prefill `caches`, `valid` (M, Lj)) beside the
   * running rows. Rows that finished at their first token never enter it.
   */
  private merge(joining: Row[], caches: KvCache[], valid: Tensor): void {
    const entering = joining.map((r, i) => ({ r, i })).filter(({ r }) => !this.isDone(r));
    if (entering.length === 0) return;
    const old = this.rows, N = old.length, M = entering.length;
    const L = this.caches[0]?.length ?? 0, Lj = caches[0]!.length;
    const end = Math.max(L, Lj);                                     // the shared fill length after
    for (const r of old) r.start += end - L;
    for (const { r } of entering) r.start = end - Lj;
    const all = [...old, ...entering.map(({ r }) => r)];
    const drop = Math.min(...all.map((r) => r.start));               // slots no row uses any more
    const used = end - drop;
    const capacity = used + Math.max(...all.map((r) => r.maxNew - r.tokens.length));
    const index = torch.tensor(entering.map(({ i }) => i), { dtype: 'int64', device: this.model.device });
    // Copies rows [row0, row0 + rows) of the new layout from `src`, whose filled slots [0, len) move
    // by `shift` (to end at `end`) and lose the first `drop`. Slots are dim 2 of a cache, 1 of keyValid.
    const place = (dst: Tensor, src: Tensor, row0: number, rows: number, shift: number, len: number) => {
      const slots = dst.ndim === 4 ? 2 : 1;
      const from = Math.max(0, drop - shift);
      if (len > from) dst.narrow(0, row0, rows).narrow(slots, shift + from - drop, len - from).copy_(src.narrow(slots, from, len - from));
    };
    const layers = caches.map((c, layer) => {
      const fresh = c.stored!, mine = this.caches[layer]?.stored;
      const [, H, , hd] = fresh.k.shape;
      const out = ['k', 'v'].map((key) => {
        const t = torch.zeros([N + M, H!, capacity, hd!], { dtype: fresh.k.dtype, device: fresh.k.device });
        if (mine !== undefined) place(t, mine[key as 'k' | 'v'], 0, N, end - L, L);
        place(t, fresh[key as 'k' | 'v'].indexSelect(0, index), N, M, end - Lj, Lj);
        return t.keep();
      });
      return out as [Tensor, Tensor];
    });
    const kv = torch.zeros([N + M, capacity], { dtype: 'bool', device: this.model.device });
    if (this.keyValid !== undefined) place(kv, this.keyValid, 0, N, end - L, L);
    place(kv, valid.indexSelect(0, index), N, M, end - Lj, Lj);
    if (capacity > used) kv.narrow(1, used, capacity - used).fill_(1);   // the positions still to be written
    for (const r of all) r.start -= drop;
    if (this.caches.length === 0) this.caches = caches.map((c) => new KvCache(c.maxLength));
    this.caches.forEach((c, layer) => c.adopt(layers[layer]![0], layers[layer]![1], used));
    this.keyValid?.dispose();
    this.keyValid = kv.keep();
    this.rows = all;
  }

  /** Keeps only `rows` (in this order) in the cache; none frees it. */
  private keepRows(rows: Row[]): void {
    if (rows.length === 0) {
      for (const c of this.caches) c.dispose();
      this.caches = [];
      this.keyValid?.dispose();
      this.keyValid = undefined;
      this.rows = [];
      return;
    }
    torch.noGrad(() => torch.scope(() => {
      const at = new Map(this.rows.map((r, i) => [r.id, i]));
      const index = torch.tensor(rows.map((r) => at.get(r.id)!), { dtype: 'int64', device: this.model.device });
      for (const c of this.caches) c.reorder(index);
      const kv = this.keyValid!.indexSelect(0, index).keep();
      this.keyValid!.dispose();
      this.keyValid = kv;
    }));
    this.rows = rows;
  }
}
