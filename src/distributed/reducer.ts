// Data-parallel gradient averaging in the manner of PyTorch DDP's Reducer (c10d/reducer.cpp): gradients
// are copied into flat buckets, one flat tensor per (dtype, device), each bucket all-reduced as one
// collective, and the averaged values copied back into every parameter's `.grad`.
//
// Buckets: parameters in reverse registration order (the order backward roughly produces their
// gradients), the first bucket of each dtype/device closed once it holds ≥ 1 MiB, later ones ≥ 25 MiB
// (DDP's first_bucket_bytes / bucket_cap_mb): a small first bucket starts communication early.
//
// When: as DDP, from autograd hooks inside backward (Gloo on CPU: `ProcessGroup.gradientBuckets`, native
// hooks on every parameter's gradient accumulator). `armForBackward()` before the backward that ends the
// step; each gradient is copied into its bucket as backward accumulates it, and a bucket's all-reduce is
// issued once it and every bucket before it are full, so Gloo's threads communicate while backward
// computes the earlier layers. `syncGradients()` then issues what backward did not fill and copies the
// averages back. Elsewhere (NCCL, `overlap: false`: expert parallelism, whose in-graph all-to-alls must
// keep one order with the buckets on every rank) `syncGradients()` fills and issues the buckets after
// backward, bucket 1 filling while bucket 0 is on the wire.
//
// A parameter without a gradient on this rank (unused in this step) contributes zeros, and receives the
// average of the others', so every rank ends the step with the same gradients.
import * as torch from '../torch/index.js';
import type { Tensor, DType, Device } from '../torch/index.js';
import { dtypeBytes } from '../torch/index.js';
import type { GradientBucketHooks, ProcessGroup } from './processGroup.js';

export interface ReducerOptions {
  /** The first bucket of each dtype/device closes once it holds this many bytes. Default 1 MiB (DDP's). */
  firstBucketBytes: number;
  /** Later buckets close at this many bytes. Default 25 MiB (DDP's bucket_cap_mb). */
  bucketBytes: number;
  /** Issue buckets from autograd hooks during backward (Gloo, CPU parameters). Default true. */
  overlap: boolean;
}

const MiB = 1 << 20;
export const DEFAULT_REDUCER_OPTIONS: ReducerOptions = { firstBucketBytes: MiB, bucketBytes: 25 * MiB, overlap: true };

/** What the bucket plan needs of a parameter. */
export interface ParamSpec { dtype: DType; device: Device; numel: number }

export interface BucketPlan {
  dtype: DType;
  device: Device;
  /** Indices into the parameter list, in bucket order (reverse registration order). */
  params: number[];
  /** Offset of each parameter's gradient in the flat bucket, in elements. */
  offsets: number[];
  numel: number;
  bytes: number;
}

/**
 * The bucket layout for these parameters (DDP's compute_bucket_assignment_by_size): walk parameters in
 * reverse order; each (dtype, device) has one open bucket; a parameter joins its key's open bucket, and
 * the bucket closes once its bytes reach the limit (the first bucket of the key: firstBucketBytes, then
 * bucketBytes). Buckets are listed in the order they were opened.
 */
export function planBuckets(params: readonly ParamSpec[], opts: Partial<Omit<ReducerOptions, 'overlap'>> = {}): BucketPlan[] {
  const o = { ...DEFAULT_REDUCER_OPTIONS, ...opts };
  if (!(o.firstBucketBytes > 0) || !(o.bucketBytes > 0)) throw new RangeError(`planBuckets: bucket sizes must be > 0 bytes, got first ${o.firstBucketBytes}, then ${o.bucketBytes}`);
  const all: BucketPlan[] = [];
  const open = new Map<string, BucketPlan>();
  const closedPerKey = new Map<string, number>();
  for (let i = params.length - 1; i >= 0; i--) {
    const p = params[i]!;
    const key = `${p.dtype}@${p.device}`;
    let b = open.get(key);
    if (!b) {
      b = { dtype: p.dtype, device: p.device, params: [], offsets: [], numel: 0, bytes: 0 };
      open.set(key, b);
      all.push(b);
    }
    b.params.push(i);
    b.offsets.push(b.numel);
    b.numel += p.numel;
    b.bytes += p.numel * dtypeBytes(p.dtype);
    const limit = (closedPerKey.get(key) ?? 0) === 0 ? o.firstBucketBytes : o.bucketBytes;
    if (b.bytes >= limit) {
      open.delete(key);
      closedPerKey.set(key, (closedPerKey.get(key) ?? 0) + 1);
    }
  }
  return all;
}

interface Bucket extends BucketPlan { flat: Tensor }

/**
 * Averages the gradients of `params` over the process group. Build it with `GradReducer.create`, which
 * checks that every rank has the same parameters and copies rank 0's values to all (DDP's constructor);
 * then per step: backward, `await reducer.syncGradients()`, optimizer step.
 */
export class GradReducer implements Disposable {
  readonly buckets: readonly BucketPlan[];
  readonly #params: readonly Tensor[];
  readonly #buckets: Bucket[];
  readonly #hooks: GradientBucketHooks | undefined;
  #syncEnabled = true;
  /** Buckets the last `syncGradients` found already issued by backward's hooks (0 without overlap). */
  issuedInBackward = 0;
  #disposed = false;

  private constructor(readonly pg: ProcessGroup, params: readonly Tensor[], opts: Partial<ReducerOptions>) {
    this.#params = params.filter((p) => p.requiresGrad);
    const plans = planBuckets(this.#params.map((p) => ({ dtype: p.dtype, device: p.device, numel: p.numel })), opts);
    this.#buckets = plans.map((b) => ({ ...b, flat: torch.zeros([b.numel], { dtype: b.dtype, device: b.device }).keep() }));
    this.buckets = plans;
    const overlap = (opts.overlap ?? DEFAULT_REDUCER_OPTIONS.overlap) && pg.backend === 'gloo' && this.#params.every((p) => p.device === 'cpu');
    this.#hooks = overlap ? pg.gradientBuckets(this.#params, this.#buckets) : undefined;
  }

  /** Whether buckets are issued from backward's hooks. */
  get overlaps(): boolean { return this.#hooks !== undefined; }

  /**
   * Call before the backward whose gradients the next `syncGradients` averages (the last micro-batch of
   * a step): its hooks then start the buckets' all-reduces while backward runs. Given the `loss` that
   * backward starts from, parameters its graph does not reach count as ready at once (DDP's
   * find_unused_parameters), so a bucket holding one (a task's parameter in a step without that task)
   * does not wait for the end. A no-op without overlap or inside `noSync`. Without it, `syncGradients`
   * still averages everything, after backward.
   */
  armForBackward(loss?: Tensor): void {
    this.#live();
    if (this.#hooks === undefined || !this.#syncEnabled) return;
    this.#hooks.arm(loss);
  }

  /** Checks that the ranks agree on the parameters (count, shapes, dtypes) and broadcasts rank 0's values. */
  static async create(pg: ProcessGroup, params: readonly Tensor[], opts: Partial<ReducerOptions> = {}): Promise<GradReducer> {
    const r = new GradReducer(pg, params, opts);
    try {
      await r.#checkSameParameters();
      await r.broadcastParameters(0);
      return r;
    } catch (e) {
      r.dispose();
      throw e;
    }
  }

  /** Overwrites every parameter with rank `root`'s (through the flat buckets: one broadcast per bucket). */
  async broadcastParameters(root = 0): Promise<void> {
    this.#live();
    const grads = false;
    for (const b of this.#buckets) {
      this.#pack(b, grads);
      await this.pg.broadcast(b.flat, root);
      this.#unpack(b, grads);
    }
  }

  /**
   * Averages every parameter's gradient over the ranks, in place, bucket by bucket. A no-op inside
   * `noSync` (gradients keep accumulating locally, as with DDP's no_sync).
   */
  async syncGradients(): Promise<void> {
    this.#live();
    if (!this.#syncEnabled) return;
    if (this.#hooks !== undefined) {
      this.issuedInBackward = await this.#hooks.flush();
      for (const b of this.#buckets) this.#unpack(b, true);
      return;
    }
    // Issue every bucket's all-reduce as soon as the bucket is filled; the next fills while it is in flight.
    const inflight: Promise<unknown>[] = [];
    for (const b of this.#buckets) {
      this.#pack(b, true);
      inflight.push(this.pg.allReduce(b.flat, 'avg').then(() => undefined, (e: unknown) => e));
    }
    let firstError: unknown;
    for (const [i, p] of inflight.entries()) {
      const e = await p;
      if (e !== undefined) { firstError ??= e; continue; }
      if (firstError === undefined) this.#unpack(this.#buckets[i]!, true);
    }
    if (firstError !== undefined) throw firstError;
  }

  /**
   * Runs `fn` with gradient synchronisation off (micro-batches of gradient accumulation: only the last
   * backward's `syncGradients` communicates). Restored when `fn` returns, throws, or its Promise settles.
   */
  noSync<T>(fn: () => T): T {
    const prev = this.#syncEnabled;
    this.#syncEnabled = false;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.#syncEnabled = prev;
      throw e;
    }
    if (result instanceof Promise) {
      return result.finally(() => { this.#syncEnabled = prev; }) as T;
    }
    this.#syncEnabled = prev;
    return result;
  }

  get syncEnabled(): boolean { return this.#syncEnabled; }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#hooks?.dispose();
    for (const b of this.#buckets) b.flat.dispose();
  }

  [Symbol.dispose](): void { this.dispose(); }

  // Copies gradients (or values) into the bucket; a missing gradient is zeros.
  #pack(b: Bucket, grads: boolean): void {
    torch.noGrad(() => torch.scope(() => {
      for (const [k, i] of b.params.entries()) {
        const p = this.#params[i]!;
        const slice = b.flat.narrow(0, b.offsets[k]!, p.numel);
        const src = grads ? p.grad : p;
        if (src) slice.copy_(src.reshape(-1));
        else slice.zero_();
        if (grads && src) src.dispose();
      }
    }));
  }

  // Copies the reduced bucket back into gradients (or values).
  #unpack(b: Bucket, grads: boolean): void {
    torch.noGrad(() => torch.scope(() => {
      for (const [k, i] of b.params.entries()) {
        const p = this.#params[i]!;
        const slice = b.flat.narrow(0, b.offsets[k]!, p.numel).view(p.shape);
        if (!grads) { p.copy_(slice); continue; }
        const g = p.grad;
        if (g) { g.copy_(slice); g.dispose(); } else p.grad = slice.clone();
      }
    }));
  }

  async #checkSameParameters(): Promise<void> {
    // Each rank's parameter count, total elements and a hash of the shapes and dtypes, gathered on all ranks.
    const sig = this.#params.map((p) => `${p.dtype}[${p.shape.join(',')}]`).join(';');
    let h = 0;
    for (let i = 0; i < sig.length; i++) h = (Math.imul(h, 31) + sig.charCodeAt(i)) | 0;
    const total = this.#params.reduce((n, p) => n + p.numel, 0);
    const mine = torch.tensor([this.#params.length, total, h], { dtype: 'int64' });
    const all = await this.pg.allGather(mine);
    try {
      const rows = all.map((t) => (t.toArray() as number[]).map(Number));
      const bad = rows.map((r, rank) => ({ r, rank })).filter(({ r }) => r.join() !== rows[0]!.join());
      if (bad.length) {
        throw new Error(`GradReducer: the ranks' parameters differ: rank 0 has ${rows[0]![0]} parameters (${rows[0]![1]} elements), `
          + bad.map(({ r, rank }) => `rank ${rank} has ${r[0]} (${r[1]} elements${r[2] !== rows[0]![2] ? ', other shapes or dtypes' : ''})`).join(', ')
          + '; every rank must build the same model');
      }
    } finally {
      mine.dispose();
      for (const t of all) t.dispose();
    }
  }

  #live(): void {
    if (this.#disposed) throw new Error('GradReducer: used after dispose()');
  }
}
