// `m6 train --profile-ops N`: where N training steps' time goes, op by op, inside libtorch and out.
// After a short warm-up (the first steps build oneDNN kernels and grow the allocator), the steps are
// timed under the op profiler (torch/profiler.ts); the table is written to op-profile.json in the
// run folder and printed: self time per op family and pass, the top ops, and the wall time that
// no op accounts for (JavaScript, the loader, the allocator's page faults).
import * as torch from '../torch/index.js';
import type { FamilyTiming, OpTiming } from '../torch/index.js';

export interface OpProfileOptions {
  /** Steps profiled. */
  steps: number;
  /** Steps of this run before the profile starts (default 3). */
  warmup?: number;
  /** Key ops by input shapes too. */
  shapes?: boolean;
}

export interface OpProfileReport {
  /** First and last profiled step (1-based, as the progress line counts). */
  fromStep: number;
  toStep: number;
  steps: number;
  wallMs: number;
  /** Σ of the ops called from outside libtorch: the wall time spent inside it. */
  insideMs: number;
  families: FamilyTiming[];
  ops: OpTiming[];
}

/** Starts the profile before step `warmup + 1` and stops it after `warmup + steps`. */
export class StepOpProfiler {
  private readonly warmup: number;
  private started: number | undefined;
  private fromStep = 0;

  /** `onReport` gets the table once the last profiled step is done (or the run ends inside the profile). */
  constructor(private readonly o: OpProfileOptions, private readonly onReport: (report: OpProfileReport) => void) {
    if (!Number.isInteger(o.steps) || o.steps < 1) throw new RangeError(`profile: steps must be a positive integer, got ${o.steps}`);
    this.warmup = o.warmup ?? 3;
  }

  /** Before a step (`done` steps of this invocation done so far). */
  beforeStep(done: number, step: number): void {
    if (done !== this.warmup || this.started !== undefined) return;
    torch.startOpProfile({ shapes: this.o.shapes === true });
    this.started = performance.now();
    this.fromStep = step + 1;
  }

  /** After a step: reports once the last profiled step is done. */
  afterStep(done: number, step: number): void {
    if (this.started !== undefined && done === this.warmup + this.o.steps) this.onReport(this.finish(step));
  }

  /** At the run's end: reports a profile the run ended inside of (fewer steps than asked). */
  stop(step: number): void {
    if (this.started !== undefined) this.onReport(this.finish(step));
  }

  private finish(step: number): OpProfileReport {
    const wallMs = performance.now() - this.started!;
    this.started = undefined;
    const ops = torch.stopOpProfile();
    const insideMs = ops.reduce((s, o) => s + o.topLevelMs, 0);
    return { fromStep: this.fromStep, toStep: step, steps: step - this.fromStep + 1, wallMs, insideMs, families: torch.byFamily(ops), ops };
  }
}

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

/** The report as text: families (forward, backward, share of the wall time), then the top ops by self time. */
export function formatOpProfile(r: OpProfileReport, topOps = 15): string {
  const per = (x: number) => x / r.steps;
  const families = new Map<string, { forward: number; backward: number }>();
  for (const f of r.families) {
    const e = families.get(f.family) ?? { forward: 0, backward: 0 };
    e[f.pass] += f.selfMs;
    families.set(f.family, e);
  }
  const rows = [...families.entries()].sort((a, b) => (b[1].forward + b[1].backward) - (a[1].forward + a[1].backward));
  const pad = (s: string, n: number) => s.padEnd(n);
  const num = (x: number, n = 9) => ms(x).padStart(n);
  const share = (x: number) => `${((100 * x) / r.wallMs).toFixed(1)}%`.padStart(7);
  const lines = [
    `op profile of steps ${r.fromStep}–${r.toStep}: ${ms(per(r.wallMs))} ms a step; inside libtorch ${ms(per(r.insideMs))} ms (${share(r.insideMs).trim()}), outside (JavaScript, the loader) ${ms(per(r.wallMs - r.insideMs))} ms`,
    `${pad('self ms a step', 24)}${'forward'.padStart(9)}${'backward'.padStart(9)}${'total'.padStart(9)}  share`,
    ...rows.map(([family, t]) => `${pad(family, 24)}${num(per(t.forward))}${num(per(t.backward))}${num(per(t.forward + t.backward))}${share(t.forward + t.backward)}`),
    `top ops by self time (ms a step, calls a step):`,
    ...r.ops.slice(0, topOps).map((o) => `  ${num(per(o.selfMs), 7)}  ${String(Math.round(per(o.calls))).padStart(5)}×  ${o.pass === 'backward' ? '[bwd] ' : ''}${o.name}`),
  ];
  return lines.join('\n');
}
