// The progress line of a training run: step, per-task loss, tokens/s and ETA. On a terminal it is a
// bar redrawn in place by cli-progress, with messages printed above it; into a pipe or file (CI,
// tests, `| tee`) it prints a plain line every few seconds instead, so logs stay readable.
import cliProgress from 'cli-progress';

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
  /** MoE models: fraction of routing assignments capacity dropped, averaged over the MoE layers (smoothed). */
  moeDropped?: number;
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

/** The line's text; `drawBar` renders the step fraction (ASCII `[###---]` by default, for logs). */
export function formatProgress(p: ProgressSnapshot, drawBar: (fraction: number) => string = bar): string {
  const steps = p.totalSteps !== null ? `step ${p.step}/${p.totalSteps} ${drawBar(p.step / p.totalSteps)} ${Math.floor((100 * p.step) / p.totalSteps)}%` : `step ${p.step}`;
  const tasks = Object.entries(p.taskLoss).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ');
  const parts = [
    steps,
    `loss ${p.loss.toFixed(3)}${tasks ? ` (${tasks})` : ''}`,
    `${Math.round(p.tokensPerSecond).toLocaleString('en-US')} tok/s`,
    `lr ${p.lr.toExponential(1)}`,
    `ETA ${p.etaSeconds === null ? '?' : formatDuration(p.etaSeconds)}`,
  ];
  if (p.moeDropped !== undefined) parts.push(`MoE dropped ${(100 * p.moeDropped).toFixed(1)}%`);
  if (p.nonFiniteSteps > 0) parts.push(`${p.nonFiniteSteps} NaN/Inf skipped`);
  return parts.join(' | ');
}

/** cli-progress formatter: our line, with its bar drawn by cli-progress, cut to the terminal's width. */
const terminalLine: cliProgress.GenericFormatter = (options, params, payload: { snapshot: ProgressSnapshot }) => {
  const line = formatProgress(payload.snapshot, (fraction) => cliProgress.Format.BarFormat(fraction, options));
  return line.length > params.maxWidth - 1 ? line.slice(0, params.maxWidth - 1) : line;
};

/** Redraws of the terminal bar per second, at most (a forced update always draws). */
const REDRAWS_PER_SECOND = 4;

/**
 * The public surface is update/log/done. On a terminal, update() starts a cli-progress bar that stays
 * until done(): call done() when the run ends (train() does, in a finally), as it also stops the bar's
 * redraw timer, which would otherwise keep the process alive.
 */
export class ProgressLine {
  private lastPrint = 0;
  private lastDraw = 0;
  private bars: cliProgress.MultiBar | null = null;
  private bar: cliProgress.SingleBar | null = null;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly intervalMs = 10_000, private readonly enabled = true) {}

  private get tty(): boolean { return this.stream.isTTY === true; }

  update(p: ProgressSnapshot, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (this.tty) {
      this.draw(p, force, now);
    } else if (force || now - this.lastPrint >= this.intervalMs) {
      this.stream.write(formatProgress(p) + '\n');
      this.lastPrint = now;
    }
  }

  private draw(p: ProgressSnapshot, force: boolean, now: number): void {
    const payload = { snapshot: p };
    if (this.bars === null || this.bar === null) {
      // MultiBar (with one bar) rather than SingleBar: it prints log() messages above the bar, and it
      // does not save/restore the cursor position (which would put the final bar back over them).
      this.bars = new cliProgress.MultiBar({
        stream: this.stream, format: terminalLine, barsize: 20, barCompleteChar: '\u2588', barIncompleteChar: '\u2591',
        fps: REDRAWS_PER_SECOND, forceRedraw: true, emptyOnZero: true,
        // Leave the terminal as it is (autowrap on, cursor visible), so a crash cannot leave it changed.
        linewrap: true, hideCursor: false, gracefulExit: false,
      });
      this.bar = this.bars.create(p.totalSteps ?? 0, p.step, payload);
      force = true;
    } else {
      if (p.totalSteps !== null) this.bar.setTotal(p.totalSteps);
      this.bar.update(p.step, payload);
    }
    // cli-progress redraws on a timer, but a training step keeps the event loop busy and an await on a
    // prefetched batch never reaches the timers: redraw here, a few times a second at most.
    if (force || now - this.lastDraw >= 1000 / REDRAWS_PER_SECOND) {
      this.bars.update();
      this.lastDraw = now;
    }
  }

  /** Prints a message on its own line (above the bar, when one is drawn). */
  log(message: string): void {
    if (this.bars !== null) {
      // cli-progress prints buffered messages at its next redraw: redraw now, so messages keep their order.
      this.bars.log(message + '\n');
      this.bars.update();
      return;
    }
    this.stream.write(message + '\n');
  }

  /** Ends the bar (its last state stays on screen) and stops its redraw timer. */
  done(): void {
    if (this.bars === null) return;
    this.bars.update();
    this.bars.stop();
    this.bars = null;
    this.bar = null;
  }
}
