// Capacity planning for a large run (`m6 plan`): for a model configuration on N devices, the memory
// each device holds under each way of spreading the model (data parallel, ZeRO-1/2/3, expert
// parallel, CPU offload), whether it fits, the step time from FLOPs at a stated MFU plus the
// communication that does not hide behind compute, and the days to train T tokens.
//
// Counts come from the model itself (modelStats builds it on the meta device); the rest is the
// standard arithmetic, each piece named where it is computed:
//  - bf16 (fp16 on V100) mixed precision with AdamW: 2-byte weights and gradients, and per
//    parameter a 4-byte fp32 master copy and two 4-byte moments (12 bytes: ZeRO's K = 12);
//  - ZeRO stage s shards optimizer state (s ≥ 1), gradients (s ≥ 2) and weights (s = 3) over the
//    data-parallel degree; stage 3 gathers one unit (a block, or the embedding) at a time, the next
//    one prefetched;
//  - expert parallel puts each MoE layer's experts on different devices (the busiest device holds
//    ceil(E/N) of them); the dense part is replicated or ZeRO-sharded over all N devices, and an
//    expert's replicas (when N > E) are its own data-parallel group;
//  - activations per layer are Megatron's count (Korthikanti et al. 2022: s·b·h·34 + 5·a·s²·b bytes
//    with 16-bit activations and dropout) with the FFN's width and MoE routing made explicit; full
//    activation checkpointing keeps each layer's input and recomputes one layer at a time;
//  - communication is per device per optimizer step: ring all-reduce 2·(N-1)/N of the gradient
//    bytes; ZeRO-3 3·(N-1)/N (gather for forward and backward, reduce-scatter) per micro-batch;
//    four all-to-alls per MoE layer (dispatch and combine, forward and backward; six with
//    recomputation), each tokens·k·dim·2 bytes·(P-1)/P over the P devices holding experts.
import { activeExperts, type M6Config } from '../model/config.js';
import { modelStats, type ModelStats } from '../model/inspect.js';
import { InputError } from '../torch/inputError.js';
import type { GpuSpec } from './gpus.js';

const GiB = 2 ** 30;
/** Bytes per parameter: bf16 weight, bf16 gradient, AdamW's fp32 master + two fp32 moments. */
export const BYTES = Object.freeze({ weight: 2, grad: 2, optimizer: 12, fp32Grad: 4 });
/** Tokens per active parameter when --tokens is not given (Chinchilla's compute-optimal ratio). */
export const DEFAULT_TOKENS_PER_PARAM = 20;

export type ZeroStage = 0 | 1 | 2 | 3;
/** What lives in host memory: nothing, the optimizer state (ZeRO-Offload), or the weights too (ZeRO-Infinity). */
export type Offload = 'none' | 'optimizer' | 'params';

export interface Strategy { name: string; expertParallel: boolean; zero: ZeroStage; offload: Offload; description: string }

export const STRATEGIES: readonly Strategy[] = Object.freeze([
  { name: 'ddp', expertParallel: false, zero: 0, offload: 'none', description: 'data parallel: a full replica per device' },
  { name: 'zero-1', expertParallel: false, zero: 1, offload: 'none', description: 'optimizer state sharded' },
  { name: 'zero-2', expertParallel: false, zero: 2, offload: 'none', description: 'optimizer state and gradients sharded' },
  { name: 'zero-3', expertParallel: false, zero: 3, offload: 'none', description: 'optimizer state, gradients and weights sharded (FSDP)' },
  { name: 'zero-offload', expertParallel: false, zero: 2, offload: 'optimizer', description: 'ZeRO-2, optimizer state and update in host memory' },
  { name: 'zero-infinity', expertParallel: false, zero: 3, offload: 'params', description: 'ZeRO-3, weights and optimizer state in host memory, streamed per block' },
  { name: 'ep', expertParallel: true, zero: 0, offload: 'none', description: 'experts sharded over devices, the dense part replicated' },
  { name: 'ep+zero-1', expertParallel: true, zero: 1, offload: 'none', description: 'experts sharded, optimizer state sharded' },
  { name: 'ep+zero-3', expertParallel: true, zero: 3, offload: 'none', description: 'experts sharded, everything else ZeRO-3' },
  { name: 'ep+zero-offload', expertParallel: true, zero: 2, offload: 'optimizer', description: 'experts sharded, ZeRO-2, optimizer state in host memory' },
  { name: 'ep+zero-infinity', expertParallel: true, zero: 3, offload: 'params', description: 'experts sharded, weights and optimizer state in host memory' },
]);

export interface PlanOptions {
  gpus: number;
  gpu: GpuSpec;
  gpusPerNode: number;
  /** Rows per device per micro-batch. */
  microBatch: number;
  gradAccum: number;
  /** Positions per row (default: the model's image patches + maxTextLen). */
  seqLen?: number;
  /** Model FLOPs utilisation the step time assumes. */
  mfu: number;
  /** Tokens (positions) to train on (default: 20 per active parameter). */
  tokens?: number;
  checkpointing: 'auto' | 'on' | 'off';
  /** CUDA context, cuBLAS and NCCL workspaces, allocator slack. */
  runtimeGiB: number;
}

export const DEFAULT_PLAN_OPTIONS = Object.freeze({ gpusPerNode: 8, microBatch: 4, gradAccum: 1, mfu: 0.4, checkpointing: 'auto', runtimeGiB: 1 } as const);

export interface DeviceMemory { params: number; grads: number; optimizer: number; gathered: number; activations: number; runtime: number; total: number }

export interface StrategyPlan {
  strategy: string;
  description: string;
  /** Whether activations are checkpointed (with 'auto': only when the plan does not fit without). */
  checkpointing: boolean;
  /** Bytes per device. */
  memory: DeviceMemory;
  hostBytesPerNode: number;
  fits: boolean;
  /** What does not fit, when something does not. */
  limit: 'gpu-memory' | 'host-memory' | null;
  /** Bytes each device sends per optimizer step. */
  communication: { dataParallel: number; allToAll: number; pcie: number };
  /** Seconds per optimizer step; `step` adds to compute what does not overlap it. */
  time: { compute: number; dataParallel: number; allToAll: number; pcie: number; step: number };
  tokensPerSecond: number;
  days: number;
}

export interface TrainingPlan {
  model: { name: string; totalParams: number; activeParams: number; expertParams: number; experts: number; moeLayers: number; layers: number; dim: number; shareLayers: boolean };
  hardware: { gpus: number; gpu: GpuSpec; gpusPerNode: number; nodes: number };
  batch: { microBatch: number; gradAccum: number; seqLen: number; tokensPerStep: number };
  /** Model FLOPs per trained token (6 per active parameter + attention), at seqLen. */
  flopsPerToken: number;
  mfu: number;
  tokens: number;
  tokensDefaulted: boolean;
  /** Bytes per device for one micro-batch. */
  activations: { full: number; checkpointed: number };
  strategies: StrategyPlan[];
}

/** Parameters a device holds before sharding, and the data-parallel degree they shard and average over. */
interface ParamGroup { params: number; degree: number }

/** Where a layer's E experts go on N devices: how many the busiest device holds, replicas of each, devices spanned. */
export function expertLayout(experts: number, gpus: number): { local: number; replicas: number; spread: number } {
  if (gpus >= experts) return { local: 1, replicas: Math.floor(gpus / experts), spread: experts };
  return { local: Math.ceil(experts / gpus), replicas: 1, spread: gpus };
}

function paramGroups(s: ModelStats, st: Strategy, gpus: number): ParamGroup[] {
  if (!st.expertParallel || s.expertParams === 0) return [{ params: s.totalParams, degree: gpus }];
  const ep = expertLayout(s.experts, gpus);
  return [
    { params: s.totalParams - s.expertParams, degree: gpus },
    { params: (s.expertParams * ep.local) / s.experts, degree: ep.replicas },
  ];
}

/** Device and host bytes of one group's weights, gradients and optimizer state. */
function groupMemory(g: ParamGroup, st: Strategy): { params: number; grads: number; optimizer: number; host: number } {
  const shard = (stage: ZeroStage) => (st.zero >= stage ? g.degree : 1);
  const onHost = st.offload === 'params';
  return {
    params: onHost ? 0 : (BYTES.weight * g.params) / shard(3),
    grads: onHost ? 0 : (BYTES.grad * g.params) / shard(2),
    optimizer: st.offload === 'none' ? (BYTES.optimizer * g.params) / shard(1) : 0,
    // Offloaded: the fp32 master and moments, the fp32 gradients the host update reads, and with
    // the weights offloaded their bf16 copy too; always partitioned over the group.
    host: st.offload === 'none' ? 0 : ((BYTES.optimizer + BYTES.fp32Grad + (onHost ? BYTES.weight : 0)) * g.params) / g.degree,
  };
}

/** Bytes of the gathered working set under ZeRO-3: the largest unit's weights twice (now, prefetched) and its gradients. */
function gatheredBytes(s: ModelStats, st: Strategy, gpus: number): number {
  if (st.zero < 3) return 0;
  const experts = s.moeLayers === 0 ? 0 : (st.expertParallel ? expertLayout(s.experts, gpus).local : s.experts) * s.paramsPerExpert;
  return (2 * BYTES.weight + BYTES.grad) * Math.max(s.embeddingParams, s.blockDenseParams + experts);
}

/** Activation bytes per device for one micro-batch of `rows` rows of `seq` positions, with and without checkpointing. */
export function activationBytes(cfg: M6Config, moeLayers: number, rows: number, seq: number): { full: number; checkpointed: number } {
  const sbh = seq * rows * cfg.dim;
  const drop = cfg.dropout > 0;
  // Attention: its input, Q, K, V, softmax output (and dropout mask + output), the output projection's input.
  const attention = (drop ? 11 : 10) * sbh + (drop ? 5 : 2) * cfg.heads * seq * seq * rows;
  // FFN: its input, the GELU's input and output (2 bytes × ffnDim each), a dropout mask.
  const ffn = (drop ? 3 : 2) * sbh + 4 * seq * rows * cfg.ffnDim;
  // A routed token is copied to each of its k experts (padded to capacity), and dispatched and combined.
  const routed = activeExperts(cfg) * (cfg.capacityFactor > 0 ? cfg.capacityFactor : 1);
  const dense = attention + 4 * sbh + ffn;
  const moe = attention + 4 * sbh + routed * (ffn + 4 * sbh);
  const full = (cfg.layers - moeLayers) * dense + moeLayers * moe;
  return { full, checkpointed: cfg.layers * 2 * sbh + (moeLayers > 0 ? Math.max(dense, moe) : dense) };
}

/** Bytes one device sends in data-parallel collectives per optimizer step. */
function dataParallelBytes(groups: ParamGroup[], st: Strategy, gradAccum: number): number {
  return groups.reduce((sum, g) => {
    const ring = (g.degree - 1) / g.degree;
    const grads = BYTES.grad * g.params;
    if (st.zero === 3) return sum + 3 * ring * grads * gradAccum;
    // ZeRO-2 reduce-scatters each micro-batch's gradients, then all-gathers the updated weights.
    if (st.zero === 2) return sum + ring * grads * (gradAccum + 1);
    return sum + 2 * ring * grads;
  }, 0);
}

function allToAllBytes(cfg: M6Config, s: ModelStats, st: Strategy, o: Resolved, checkpointing: boolean): number {
  if (!st.expertParallel || s.moeLayers === 0) return 0;
  const { spread } = expertLayout(s.experts, o.gpus);
  const routed = activeExperts(cfg) * (cfg.capacityFactor > 0 ? cfg.capacityFactor : 1);
  const perCall = o.microBatch * o.seqLen * routed * cfg.dim * BYTES.weight * (spread - 1) / spread;
  return s.moeLayers * (checkpointing ? 6 : 4) * o.gradAccum * perCall;
}

/** Host ↔ device bytes per step: offloaded gradients out and weights back; streamed weights twice per micro-batch. */
function pcieBytes(groups: ParamGroup[], st: Strategy, gradAccum: number): number {
  if (st.offload === 'none') return 0;
  const shard = groups.reduce((n, g) => n + g.params / g.degree, 0);
  return st.offload === 'optimizer' ? (BYTES.grad + BYTES.weight) * shard : (2 * BYTES.weight + BYTES.grad) * shard * gradAccum;
}

type Resolved = Required<PlanOptions>;

function validate(o: Resolved): void {
  const bad: string[] = [];
  const posInt = (flag: string, v: number) => { if (!Number.isInteger(v) || v <= 0) bad.push(`${flag} must be a positive integer, got ${v}`); };
  posInt('--gpus', o.gpus); posInt('--gpus-per-node', o.gpusPerNode); posInt('--micro-batch', o.microBatch);
  posInt('--grad-accum', o.gradAccum); posInt('--seq-len', o.seqLen);
  if (!(o.mfu > 0 && o.mfu <= 1)) bad.push(`--mfu must be in (0, 1], got ${o.mfu}`);
  if (!(o.tokens > 0)) bad.push(`--tokens must be > 0, got ${o.tokens}`);
  if (!(o.runtimeGiB >= 0)) bad.push(`runtime reserve must be ≥ 0 GiB, got ${o.runtimeGiB}`);
  if (bad.length) throw new InputError(bad.join('; '));
}

/** Seconds to move `bytes` from each device: over NVLink within one node, else at the inter-node rate. */
function collectiveSeconds(bytes: number, o: Resolved): number {
  return bytes / ((o.gpus <= o.gpusPerNode ? o.gpu.intraNodeGBps : o.gpu.interNodeGBps) * 1e9);
}

/** All-to-all among P expert devices: the share bound for other nodes goes at the inter-node rate, the rest over NVLink, at once. */
function allToAllSeconds(bytes: number, s: ModelStats, o: Resolved): number {
  if (bytes === 0) return 0;
  const { spread } = expertLayout(s.experts, o.gpus);
  const offNode = spread > o.gpusPerNode ? (spread - o.gpusPerNode) / (spread - 1) : 0;
  return Math.max((bytes * offNode) / (o.gpu.interNodeGBps * 1e9), (bytes * (1 - offNode)) / (o.gpu.intraNodeGBps * 1e9));
}

interface Shared { cfg: M6Config; stats: ModelStats; o: Resolved; activations: { full: number; checkpointed: number }; tokensPerStep: number }

function deviceMemory(sh: Shared, st: Strategy, checkpointing: boolean): { memory: DeviceMemory; host: number } {
  const parts = paramGroups(sh.stats, st, sh.o.gpus).map((g) => groupMemory(g, st));
  const sum = (k: 'params' | 'grads' | 'optimizer' | 'host') => parts.reduce((n, p) => n + p[k], 0);
  const m = {
    params: sum('params'), grads: sum('grads'), optimizer: sum('optimizer'), gathered: gatheredBytes(sh.stats, st, sh.o.gpus),
    activations: checkpointing ? sh.activations.checkpointed : sh.activations.full, runtime: sh.o.runtimeGiB * GiB,
  };
  const total = m.params + m.grads + m.optimizer + m.gathered + m.activations + m.runtime;
  return { memory: { ...m, total }, host: sum('host') * Math.min(sh.o.gpusPerNode, sh.o.gpus) };
}

function stepTimes(sh: Shared, st: Strategy, checkpointing: boolean): Pick<StrategyPlan, 'communication' | 'time'> {
  const { o, stats } = sh;
  const groups = paramGroups(stats, st, o.gpus);
  const communication = {
    dataParallel: dataParallelBytes(groups, st, o.gradAccum),
    allToAll: allToAllBytes(sh.cfg, stats, st, o, checkpointing),
    pcie: pcieBytes(groups, st, o.gradAccum),
  };
  // Recomputing the forward adds a third to the FLOPs the hardware runs (MFU counts model FLOPs only).
  const compute = (stats.flopsPerTokenTraining * sh.tokensPerStep / o.gpus / (o.gpu.peakTflops * 1e12 * o.mfu)) * (checkpointing ? 4 / 3 : 1);
  const time = {
    compute,
    dataParallel: collectiveSeconds(communication.dataParallel, o),
    allToAll: allToAllSeconds(communication.allToAll, stats, o),
    pcie: communication.pcie / (o.gpu.pcieGBps * 1e9),
  };
  // Gradient collectives and host transfers overlap the backward (ZeRO-3's prefetched gathers the
  // forward too); tokens wait for their experts, so the all-to-alls add to the step.
  const window = st.zero === 3 ? compute : compute * (checkpointing ? 3 / 4 : 2 / 3);
  return { communication, time: { ...time, step: compute + time.allToAll + Math.max(0, time.dataParallel + time.pcie - window) } };
}

function planStrategy(sh: Shared, st: Strategy): StrategyPlan {
  const limitOf = (ckpt: boolean) => {
    const { memory, host } = deviceMemory(sh, st, ckpt);
    if (memory.total > sh.o.gpu.memoryGiB * GiB) return 'gpu-memory' as const;
    return host > sh.o.gpu.hostMemoryGiBPerNode * GiB ? 'host-memory' as const : null;
  };
  // 'auto' recomputes only where activations are what overflows the device (never for host memory).
  const checkpointing = sh.o.checkpointing === 'on' || (sh.o.checkpointing === 'auto' && limitOf(false) === 'gpu-memory');
  const { memory, host } = deviceMemory(sh, st, checkpointing);
  const limit = limitOf(checkpointing);
  const t = stepTimes(sh, st, checkpointing);
  const tokensPerSecond = sh.tokensPerStep / t.time.step;
  return {
    strategy: st.name, description: st.description, checkpointing, memory, hostBytesPerNode: host, fits: limit === null, limit,
    ...t, tokensPerSecond, days: sh.o.tokens / tokensPerSecond / 86_400,
  };
}

/** The plan for training `cfg` with `opts`: every strategy that applies (expert parallel only for MoE models). */
export function planTraining(cfg: M6Config, opts: PlanOptions): TrainingPlan {
  const stats = modelStats(cfg, opts.seqLen === undefined ? {} : { context: opts.seqLen });
  const tokensDefaulted = opts.tokens === undefined;
  const o: Resolved = { ...opts, seqLen: stats.context, tokens: opts.tokens ?? DEFAULT_TOKENS_PER_PARAM * stats.activeParams };
  validate(o);
  const tokensPerStep = o.gpus * o.microBatch * o.gradAccum * o.seqLen;
  const activations = activationBytes(cfg, stats.moeLayers, o.microBatch, o.seqLen);
  const sh: Shared = { cfg, stats, o, activations, tokensPerStep };
  const strategies = STRATEGIES.filter((st) => !st.expertParallel || stats.moeLayers > 0).map((st) => planStrategy(sh, st));
  return {
    model: {
      name: cfg.name, totalParams: stats.totalParams, activeParams: stats.activeParams, expertParams: stats.expertParams,
      experts: cfg.experts, moeLayers: stats.moeLayers, layers: cfg.layers, dim: cfg.dim, shareLayers: cfg.shareLayers,
    },
    hardware: { gpus: o.gpus, gpu: o.gpu, gpusPerNode: o.gpusPerNode, nodes: Math.ceil(o.gpus / o.gpusPerNode) },
    batch: { microBatch: o.microBatch, gradAccum: o.gradAccum, seqLen: o.seqLen, tokensPerStep },
    flopsPerToken: stats.flopsPerTokenTraining, mfu: o.mfu, tokens: o.tokens, tokensDefaulted, activations, strategies,
  };
}
