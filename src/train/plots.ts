// The run folder's charts: training loss per task (smoothed) with held-out losses as circles, and
// the held-out losses alone, as SVG (for report.html) and PNG files (loss.png, eval.png; rendered
// by sharp's librsvg) that the trainer rewrites at every eval and at the end of the run.
import { join } from 'node:path';
import { renameSync } from 'node:fs';
import sharp from 'sharp';
import type { EvalMetric, Metric, TrainMetric } from './metrics.js';

const COLOURS = ['#1e88e5', '#d32f2f', '#388e3c', '#7b1fa2', '#f57c00', '#00897b', '#6d4c41'];

export interface ChartSeries {
  name: string;
  /** (step, value) drawn as a line. */
  line?: Array<[number, number]>;
  /** (step, value) drawn as circles. */
  dots?: Array<[number, number]>;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A line chart against step with a log value axis (losses fall by orders of magnitude; the late, small changes matter). */
export function lineChartSvg(title: string, series: readonly ChartSeries[], width = 640, height = 280): string | null {
  const all = series.flatMap((s) => [...(s.line ?? []), ...(s.dots ?? [])]).filter(([, v]) => Number.isFinite(v));
  if (all.length < 2) return null;
  const maxStep = Math.max(...all.map((p) => p[0])), minStep = Math.min(...all.map((p) => p[0]));
  const maxValue = Math.max(...all.map((p) => p[1])), minValue = Math.max(1e-4, Math.min(...all.map((p) => p[1])));
  const left = 48, right = 16, top = 28, bottom = 32;
  const lo = Math.log(minValue), hi = Math.log(Math.max(maxValue, minValue * 1.01));
  const x = (s: number) => left + ((s - minStep) / Math.max(1, maxStep - minStep)) * (width - left - right);
  const y = (v: number) => height - bottom - ((Math.log(Math.max(v, minValue)) - lo) / (hi - lo)) * (height - top - bottom);
  const drawn = series.map((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const pts = (s.line ?? []).filter(([, v]) => Number.isFinite(v));
    const every = Math.max(1, Math.floor(pts.length / 500));   // at most ~500 vertices per line
    const d = pts.filter((_, k) => k % every === 0 || k === pts.length - 1).map(([a, b], k) => `${k ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join('');
    const path = d ? `<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.5"/>` : '';
    const dots = (s.dots ?? []).filter(([, v]) => Number.isFinite(v)).map(([a, b]) => `<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="3" fill="none" stroke="${colour}" stroke-width="1.5"/>`).join('');
    const legend = `<text x="${width - right - 170}" y="${top + 4 + 14 * i}" fill="${colour}" font-size="12">${esc(s.name)}</text>`;
    return path + dots + legend;
  }).join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = Math.exp(lo + f * (hi - lo));
    return `<text x="4" y="${(y(v) + 4).toFixed(1)}" font-size="11">${v < 0.1 ? v.toPrecision(2) : v.toFixed(2)}</text><line x1="${left}" x2="${width - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${esc(title)}" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/><text x="${left}" y="16" font-size="13" font-weight="bold">${esc(title)}</text>${ticks}${drawn}` +
    `<text x="${left}" y="${height - 8}" font-size="11">step ${minStep}</text><text x="${width - right - 70}" y="${height - 8}" font-size="11">step ${maxStep}</text></svg>`;
}

function trainTasks(metrics: readonly Metric[]): { train: TrainMetric[]; evals: EvalMetric[]; tasks: string[] } {
  const train = metrics.filter((m): m is TrainMetric => m.kind === 'train');
  const evals = metrics.filter((m): m is EvalMetric => m.kind === 'eval');
  const tasks = [...new Set([...train, ...evals].flatMap((m) => Object.keys(m.taskLoss)))].sort();
  return { train, evals, tasks };
}

function heldOut(evals: readonly EvalMetric[], task: string): Array<[number, number]> {
  return evals.filter((m) => Number.isFinite(m.taskLoss[task])).map((m): [number, number] => [m.step, m.taskLoss[task]!]);
}

/** Per-task training loss (EMA 0.9: a task's loss is noisy step to step) with held-out losses as circles. */
export function lossChartSvg(metrics: readonly Metric[]): string | null {
  const { train, evals, tasks } = trainTasks(metrics);
  return lineChartSvg('training loss per task (○ held out)', tasks.map((task) => {
    let ema: number | undefined;
    const line: Array<[number, number]> = [];
    for (const m of train) {
      const v = m.taskLoss[task];
      if (v === undefined || !Number.isFinite(v)) continue;
      ema = ema === undefined ? v : 0.9 * ema + 0.1 * v;
      line.push([m.step, ema]);
    }
    return { name: task, line, dots: heldOut(evals, task) };
  }));
}

/** Held-out loss per task at each eval. */
export function evalChartSvg(metrics: readonly Metric[]): string | null {
  const { evals, tasks } = trainTasks(metrics);
  return lineChartSvg('held-out loss per task', tasks.map((task) => ({ name: task, line: heldOut(evals, task), dots: heldOut(evals, task) })));
}

/** Writes loss.png and eval.png into the run folder (each once it has something to draw); returns the files written. */
export async function writePlots(runDir: string, metrics: readonly Metric[]): Promise<string[]> {
  const written: string[] = [];
  for (const [name, svg] of [['loss.png', lossChartSvg(metrics)], ['eval.png', evalChartSvg(metrics)]] as const) {
    if (svg === null) continue;
    const file = join(runDir, name), tmp = `${file}.tmp`;
    await sharp(Buffer.from(svg)).png().toFile(tmp);
    renameSync(tmp, file);   // a viewer never sees half a file
    written.push(file);
  }
  return written;
}
