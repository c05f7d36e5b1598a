// The progress line of a training run: step, per-task loss, tokens/s and ETA. On a terminal it is
// one line redrawn in place; into a pipe or file (CI, tests, `| tee`) it prints a plain line every
// few seconds instead, so logs stay readable.

export interface ProgressSnapshot {
  step: number;
  /** Steps the run will make, when known (--steps, or estimated from --minutes). */
  totalSteps: number | null;
  loss: number;
  taskLoss: Record<string, number>;
  lr: number;
  tokensPerSecond: number;
  /** Seconds left, when known. */
  etaSeconds: number | null;
  nonFiniteSteps: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function bar(fraction: number, width = 20): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

export function formatProgress(p: ProgressSnapshot): string {
  const steps = p.totalSteps !== null ? `step ${p.step}/${p.totalSteps} ${bar(p.step / p.totalSteps)} ${Math.floor((100 * p.step) / p.totalSteps)}%` : `step ${p.step}`;
  const tasks = Object.entries(p.taskLoss).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ');
  const parts = [
    steps,
    `loss ${p.loss.toFixed(3)}${tasks ? ` (${tasks})` : ''}`,
    `${Math.round(p.tokensPerSecond).toLocaleString('en-US')} tok/s`,
    `lr ${p.lr.toExponential(1)}`,
    `ETA ${p.etaSeconds === null ? '?' : formatDuration(p.etaSeconds)}`,
  ];
  if (p.nonFiniteSteps > 0) parts.push(`${p.nonFiniteSteps} NaN/Inf skipped`);
  return parts.join(' | ');
}

export class ProgressLine {
  private lastPrint = 0;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly intervalMs = 10_000, private readonly enabled = true) {}

  private get tty(): boolean { return this.stream.isTTY === true; }

  update(p: ProgressSnapshot, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    const line = formatProgress(p);
    if (this.tty) {
      const width = this.stream.columns ?? 120;
      this.stream.write(`\r\x1b[K${line.length > width - 1 ? line.slice(0, width - 1) : line}`);
      this.drawn = true;
    } else if (force || now - this.lastPrint >= this.intervalMs) {
      this.stream.write(line + '\n');
      this.lastPrint = now;
    }
  }

  /** Prints a message on its own line (the progress line, if drawn, is redrawn by the next update). */
  log(message: string): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
    this.stream.write(message + '\n');
  }

  done(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
