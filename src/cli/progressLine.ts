// The progress line of long row-by-row commands (`m6 index build`, `m6 data pack`): rows, rate,
// ETA and failures every few seconds, in place on a terminal, one line per report in a log.
import { formatDuration } from '../train/progress.js';

/** A progress line every few seconds (in place on a terminal): rows, rate, ETA, failures. */
export function progressPrinter(label: string): (p: { done: number; total: number; skipped: number; failed: number }) => void {
  const started = Date.now();
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (p.done < p.total && now - last < 5000) return;
    last = now;
    const rate = p.done / Math.max((now - started) / 1000, 1e-3);
    const line = `${label} ${p.done}/${p.total} rows (${Math.floor((100 * p.done) / Math.max(p.total, 1))}%), ${Math.round(rate)} rows/s, ETA ${formatDuration((p.total - p.done) / Math.max(rate, 1e-9))}${p.skipped ? `, ${p.skipped} already indexed` : ''}${p.failed ? `, ${p.failed} failed` : ''}`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}${p.done === p.total ? '\n' : ''}` : `${line}\n`);
  };
}
