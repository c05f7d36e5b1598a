// Process groups over torch c10d (native/src/distributed.cc): a TCPStore rendezvous, then Gloo for CPU
// tensors or NCCL for CUDA tensors (with a CUDA libtorch). Every collective runs on the group's own
// communication thread and returns a Promise, so the event loop keeps running; collectives run in the
// order they are called, which must be the same on every rank (as in torch.distributed).
//
// Failures are rejections, never hangs or aborts: a peer that exits, or one that never arrives within
// `timeoutMs`, rejects the pending collective with a `DistError` naming the collective, the tensor, this
// rank and its peers. After a failed collective the group refuses further ones (the ranks' streams are
// out of step); destroy it and start again.
import { native } from '../torch/native.js';
import { Tensor } from '../torch/tensor.js';
import { isFloatingDtype } from '../torch/dtype.js';

export type Backend = 'gloo' | 'nccl';
/** `avg` is a sum divided by the world size (Gloo has no native average; torch.distributed users divide too). */
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min' | 'product';

export interface InitOptions {
  /** `gloo` (CPU tensors; default) or `nccl` (CUDA tensors; needs a CUDA libtorch with NCCL). */
  backend: Backend;
  /** This process's rank in 0..worldSize-1. Default: the RANK environment variable (torchrun's). */
  rank: number;
  /** Default: WORLD_SIZE. */
  worldSize: number;
  /** Where rank 0 serves the TCPStore rendezvous. Default: MASTER_ADDR, else 127.0.0.1. */
  masterAddr: string;
  /** Default: MASTER_PORT, else 29500 (torch's). */
  masterPort: number;
  /** Bounds the rendezvous and every collective. Default: 30 minutes, torch.distributed's. */
  timeoutMs: number;
}

/** The error of a failed init or collective. `code` is `ERR_M6_DIST_TIMEOUT` when a deadline passed. */
export interface DistError extends Error {
  code: 'ERR_M6_DIST' | 'ERR_M6_DIST_TIMEOUT';
  collective: 'init' | 'allReduce' | 'broadcast' | 'allGather' | 'allToAll' | 'barrier' | 'destroy';
  rank: number;
  worldSize: number;
}

export interface AllToAllOptions {
  /** Rows of the input sent to each rank, in rank order (sums to the input's first dimension). Default: equal parts. */
  inputSplits?: readonly number[];
  /** Rows received from each rank. Default: learnt from the peers by a first all-to-all of the split sizes. */
  outputSplits?: readonly number[];
}

export interface AllToAllResult {
  /** The rows received, rank 0's first; shape [sum(outputSplits), ...input.shape.slice(1)]. */
  output: Tensor;
  outputSplits: number[];
}

const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
const DEFAULT_PORT = 29500;

/** Which backends this build of the addon has (`reason` says why Gloo is missing, when it is). */
export function availableBackends(): { gloo: boolean; nccl: boolean; reason?: string } {
  return native.distBackends();
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new RangeError(`m6 dist: the environment variable ${name}=${JSON.stringify(v)} is not an integer`);
  return n;
}

/** Resolves options against torchrun's environment variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). */
export function resolveInitOptions(opts: Partial<InitOptions> = {}): InitOptions {
  const rank = opts.rank ?? envInt('RANK');
  const worldSize = opts.worldSize ?? envInt('WORLD_SIZE');
  if (rank === undefined || worldSize === undefined) {
    throw new Error('m6 dist: init() needs rank and worldSize: pass { rank, worldSize } or set RANK and WORLD_SIZE '
      + `(got rank ${rank ?? 'unset'}, worldSize ${worldSize ?? 'unset'})`);
  }
  return {
    backend: opts.backend ?? 'gloo',
    rank,
    worldSize,
    masterAddr: opts.masterAddr ?? (process.env.MASTER_ADDR || '127.0.0.1'),
    masterPort: opts.masterPort ?? envInt('MASTER_PORT') ?? DEFAULT_PORT,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
}

/**
 * Joins a process group: resolves once all `worldSize` ranks have met at `masterAddr:masterPort` and
 * connected to each other; rejects (DistError, collective 'init') when they have not within `timeoutMs`.
 */
export async function init(opts: Partial<InitOptions> = {}): Promise<ProcessGroup> {
  const o = resolveInitOptions(opts);
  const [id, ready] = native.distInit(o.backend, o.rank, o.worldSize, o.masterAddr, o.masterPort, o.timeoutMs);
  await ready;
  return new ProcessGroup(id, o);
}

export class ProcessGroup implements AsyncDisposable, Disposable {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: Backend;
  readonly timeoutMs: number;
  #id: number;
  #destroyed: Promise<void> | undefined;

  /** @internal Use `init()`. */
  constructor(id: number, o: InitOptions) {
    this.#id = id;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.backend = o.backend;
    this.timeoutMs = o.timeoutMs;
  }

  get isDestroyed(): boolean { return this.#destroyed !== undefined; }

  /** Reduces `t` across ranks in place; resolves to `t` holding the result on every rank. */
  async allReduce(t: Tensor, op: ReduceOp = 'sum'): Promise<Tensor> {
    if (op === 'avg' && !isFloatingDtype(t.dtype)) throw new TypeError(`m6 dist: allReduce(avg) needs a floating-point tensor, got ${t.dtype} (use 'sum' and divide)`);
    await native.distAllReduce(this.id, t.handle, op);
    return t;
  }

  /** Overwrites `t` on every rank with rank `root`'s `t`; resolves to `t`. */
  async broadcast(t: Tensor, root = 0): Promise<Tensor> {
    await native.distBroadcast(this.id, t.handle, root);
    return t;
  }

  /** Every rank's `t` (same shape and dtype on all ranks), in rank order: new tensors in the caller's scope. */
  async allGather(t: Tensor): Promise<Tensor[]> {
    // Gloo's allgather divides by the element count (SIGFPE on an empty tensor); every rank's is empty
    // too (same shape on all ranks), so the result is known without communicating.
    if (t.numel === 0) return Array.from({ length: this.worldSize }, () => t.clone());
    const ids = await native.distAllGather(this.id, t.handle);
    return ids.map((h) => new Tensor(h));
  }

  /**
   * Sends rows of `t` to each rank and receives theirs (all_to_all_single with variable splits: the two
   * all-to-alls of an expert-parallel MoE layer). Without `outputSplits`, a first all-to-all of the split
   * sizes tells each rank how many rows to expect.
   */
  async allToAll(t: Tensor, opts: AllToAllOptions = {}): Promise<AllToAllResult> {
    const r = await native.distAllToAll(this.id, t.handle, opts.inputSplits ? [...opts.inputSplits] : null, opts.outputSplits ? [...opts.outputSplits] : null);
    return { output: new Tensor(r.output), outputSplits: r.outputSplits };
  }

  /**
   * A synchronous, differentiable all-to-all for inside a model's forward (expert parallelism, as
   * DeepSpeed-MoE's `_AllToAll`): rows `[Σ in[0..r), +in[r])` go to rank r, and the result holds each
   * rank's rows in rank order. Its backward, inside `backward()`, sends the gradient rows back the same
   * way. Both splits are needed (exchange the counts first, e.g. with this call on an int64 tensor);
   * every rank must make the same calls in the same order, forward and backward. It blocks the event
   * loop while it runs, as the forward does.
   */
  allToAllInGraph(t: Tensor, inputSplits: readonly number[], outputSplits: readonly number[]): Tensor {
    return new Tensor(native.distAllToAllInGraph(this.id, t.handle, [...inputSplits], [...outputSplits]));
  }

  /** Resolves once every rank has reached the barrier (and its earlier collectives are done). */
  async barrier(): Promise<void> {
    await native.distBarrier(this.id);
  }

  /**
   * Hooks on the gradient accumulators of `params` (Gloo, CPU; PyTorch DDP's reducer): while armed, each
   * gradient is copied into its bucket's `flat` as backward accumulates it, and each bucket's all-reduce
   * (average) is issued as soon as it and every bucket before it are full, so communication runs while
   * backward still computes. `flush()` after backward packs and issues the rest.
   */
  gradientBuckets(params: readonly Tensor[], buckets: readonly { flat: Tensor; params: readonly number[]; offsets: readonly number[] }[]): GradientBucketHooks {
    const id = native.distReducerCreate(this.id, params.map((p) => p.handle), buckets.map((b) => b.flat.handle), buckets.map((b) => [...b.params]), buckets.map((b) => [...b.offsets]));
    return new GradientBucketHooks(id);
  }

  /** Tears the group down after the collectives already called; idempotent. Use after destroy throws. */
  destroy(): Promise<void> {
    return (this.#destroyed ??= native.distDestroy(this.#id));
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.destroy(); }

  /** `using pg = await init(...)`: starts the teardown; `await using` waits for it. */
  [Symbol.dispose](): void { this.destroy().catch(() => { /* torn down by a failed collective already */ }); }

  private get id(): number {
    if (this.#destroyed) throw new Error(`m6 dist: this process group (rank ${this.rank} of ${this.worldSize}) was destroyed`);
    return this.#id;
  }
}

/** The native side of an overlapping gradient reducer (`ProcessGroup.gradientBuckets`). */
export class GradientBucketHooks implements Disposable {
  #id: number | undefined;
  /** @internal */
  constructor(id: number) { this.#id = id; }
  /**
   * The next backward's hooks issue buckets as they fill. With the `loss` that backward starts from,
   * parameters its graph does not reach are ready at once (DDP's find_unused_parameters).
   */
  arm(loss?: Tensor): void {
    if (loss === undefined) native.distReducerArm(this.live());
    else native.distReducerArm(this.live(), loss.handle);
  }
  /** Packs and issues what no hook did (everything when not armed); resolves, with how many buckets backward issued, once all are averaged. */
  flush(): Promise<number> { return native.distReducerFlush(this.live()); }
  dispose(): void {
    if (this.#id === undefined) return;
    native.distReducerDestroy(this.#id);
    this.#id = undefined;
  }
  [Symbol.dispose](): void { this.dispose(); }
  private live(): number {
    if (this.#id === undefined) throw new Error('m6 dist: these gradient bucket hooks were disposed');
    return this.#id;
  }
}
