// metrics.jsonl: one JSON object per line, appended as the run goes (a resumed run appends to the
// same file), so curves can be plotted while it trains and after a crash.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

export interface TrainMetric {
  kind: 'train';
  step: number;
  loss: number;
  taskLoss: Record<string, number>;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  /** Where this step's wall time went (absent in files written before it was recorded). */
  timing?: StepTiming;
  /** MoE models: each MoE layer's routing, averaged over the step's micro-batches. */
  moe?: MoeRouting[];
}

/** How one MoE layer routed a batch: what capacity dropped, and how lopsided the load was. */
export interface MoeRouting {
  layer: number;
  /** Fraction of assignments dropped by capacity (they passed through the residual). */
  dropped: number;
  /** The busiest expert's share of assignments × the number of experts: 1 = perfectly even. */
  maxLoad: number;
}

/**
 * One step's wall time by phase, in seconds. On CPU every phase is synchronous; on CUDA, kernels run
 * asynchronously and their time lands in whichever phase next waits for them (loss.item() in forward).
 */
export interface StepTiming {
  /** Waiting for the loader's next batch (images are prepared ahead by workers: ~0 when they keep up). */
  data: number;
  /** Batch to tensors, forward and loss (data, forward and backward are summed over the step's micro-batches). */
  forward: number;
  backward: number;
  /** Gradient clipping, the AdamW update and zeroing the gradients; with data parallel, the gradient all-reduce first (and waiting for the slowest rank). */
  optimizer: number;
  /** The whole step; what the phases leave is bookkeeping (per-row losses, freeing, metrics). */
  total: number;
  /** Positions the blocks ran over (padded image patches + source + target, all rows). */
  positions: number;
  /**
   * Data parallel: gradient buckets whose all-reduce backward's hooks issued, of how many (the rest left
   * after backward), and the seconds after backward spent until every bucket was averaged (part of
   * `optimizer`: the communication backward did not hide, and waiting for the slowest rank).
   */
  buckets?: { inBackward: number; total: number; wait: number };
}

export interface EvalMetric {
  kind: 'eval';
  step: number;
  /** Mean held-out loss per task. */
  taskLoss: Record<string, number>;
  /** Which examples were evaluated: validation rows, every held-out row where the data has no validation split, or training rows when it has no split. */
  on: 'val' | 'held-out' | 'train';
}

export interface EventMetric {
  kind: 'event';
  step: number;
  event: 'start' | 'resume' | 'checkpoint' | 'non-finite' | 'interrupted' | 'stopped' | 'done' | 'bad-rows' | 'tasks-joined';
  detail?: string;
}

export type Metric = TrainMetric | EvalMetric | EventMetric;

export class MetricsLog {
  /** `file` null: a log that writes nothing (the ranks of a data-parallel run but rank 0). */
  constructor(readonly file: string | null) {}

  write(m: Metric): void {
    if (this.file === null) return;
    appendFileSync(this.file, JSON.stringify({ ...m, time: new Date().toISOString() }) + '\n');
  }
}

/** Reads a metrics.jsonl (lines that do not parse, e.g. one cut by a crash, are skipped). */
export function readMetrics(file: string): Metric[] {
  if (!existsSync(file)) return [];
  const out: Metric[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line) as Metric); } catch { /* a torn last line */ }
  }
  return out;
}
