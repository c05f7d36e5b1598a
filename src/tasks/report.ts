// report.html of a demo run: the metrics, the loss curves (inline SVG from metrics.jsonl), and
// held-out product photos beside what the model wrote about them. One self-contained file; images
// are linked by relative path, so the run folder can be opened or copied as it is.
import { writeFileSync } from 'node:fs';
import { relative, dirname } from 'node:path';
import type { EvalMetric, Metric, TrainMetric } from '../train/metrics.js';
import type { SyntheticEvalResult } from './syntheticEval.js';

export interface ReportInput {
  file: string;
  /** Folder of the catalog (item.image is relative to it). */
  catalogDir: string;
  title: string;
  facts: Array<[string, string]>;
  metrics: Metric[];
  evaluation: SyntheticEvalResult;
  /** Items shown with their pictures. */
  show?: number;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

const COLOURS = ['#1e88e5', '#d32f2f', '#388e3c', '#7b1fa2', '#f57c00'];

/** Per-task training loss against step, smoothed (EMA 0.9), with held-out eval losses as circles; an SVG chart with a log loss axis. */
export function lossCurveSvg(metrics: readonly Metric[], width = 640, height = 260): string {
  const train = metrics.filter((m): m is TrainMetric => m.kind === 'train');
  if (train.length < 2) return '<p>(not enough steps for a curve)</p>';
  const tasks = [...new Set(train.flatMap((m) => Object.keys(m.taskLoss)))].sort();
  const series = tasks.map((task) => {
    let ema: number | undefined;
    const pts: Array<[number, number]> = [];
    for (const m of train) {
      const v = m.taskLoss[task];
      if (v === undefined || !Number.isFinite(v)) continue;
      ema = ema === undefined ? v : 0.9 * ema + 0.1 * v;
      pts.push([m.step, ema]);
    }
    return { task, pts };
  });
  const evals = metrics.filter((m): m is EvalMetric => m.kind === 'eval');
  const heldOut = tasks.map((task) => evals.filter((m) => Number.isFinite(m.taskLoss[task])).map((m): [number, number] => [m.step, m.taskLoss[task]!]));
  const all = [...series.flatMap((s) => s.pts), ...heldOut.flat()];
  const maxStep = Math.max(...all.map((p) => p[0])), minStep = Math.min(...all.map((p) => p[0]));
  // A log scale: the loss falls by orders of magnitude, and the late, small changes are the interesting ones.
  const maxLoss = Math.max(...all.map((p) => p[1])), minLoss = Math.max(1e-4, Math.min(...all.map((p) => p[1])));
  const pad = 40;
  const lo = Math.log(minLoss), hi = Math.log(Math.max(maxLoss, minLoss * 1.01));
  const x = (s: number) => pad + ((s - minStep) / Math.max(1, maxStep - minStep)) * (width - 2 * pad);
  const y = (l: number) => height - pad - ((Math.log(Math.max(l, minLoss)) - lo) / (hi - lo)) * (height - 2 * pad);
  const lines = series.map((s, i) => {
    const step = Math.max(1, Math.floor(s.pts.length / 400));
    const d = s.pts.filter((_, k) => k % step === 0 || k === s.pts.length - 1).map(([a, b], k) => `${k ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join('');
    const colour = COLOURS[i % COLOURS.length]!;
    const dots = heldOut[i]!.map(([a, b]) => `<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="3" fill="none" stroke="${colour}"/>`).join('');
    return `<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.5"/>${dots}<text x="${width - pad - 150}" y="${pad + 14 * i}" fill="${colour}" font-size="12">${esc(s.task)}${dots ? ' (○ held out)' : ''}</text>`;
  }).join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const l = Math.exp(lo + f * (hi - lo));
    return `<text x="4" y="${y(l) + 4}" font-size="11">${l < 0.1 ? l.toPrecision(2) : l.toFixed(2)}</text><line x1="${pad}" x2="${width - pad}" y1="${y(l)}" y2="${y(l)}" stroke="#ddd"/>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="training loss">${ticks}${lines}` +
    `<text x="${pad}" y="${height - 10}" font-size="11">step ${minStep}</text><text x="${width - pad - 60}" y="${height - 10}" font-size="11">step ${maxStep}</text></svg>`;
}

export function writeReport(r: ReportInput): void {
  const ev = r.evaluation;
  const imgSrc = (image: string) => esc(relative(dirname(r.file), `${r.catalogDir}/${image}`));
  const mark = (ok: boolean) => (ok ? '<span class="ok">✓</span>' : '<span class="bad">✗</span>');
  const shown = ev.describe.items.slice(0, r.show ?? 48);
  const cards = shown.map((d) => `<figure><img src="${imgSrc(d.image)}" alt="${esc(d.id)}" width="96" height="96">` +
    `<figcaption><b>${esc(d.generated || '(empty)')}</b><br><small>truth: ${esc(d.truth)}</small><br>` +
    `category ${mark(d.categoryOk)} colour ${mark(d.colourOk)}</figcaption></figure>`).join('\n');
  const answers = (ev.answer?.items ?? []).slice(0, 40).map((a) => `<tr><td><img src="${imgSrc(a.image)}" width="40" height="40" alt=""></td>` +
    `<td>${esc(a.question)}</td><td>${esc(a.generated)}</td><td>${esc(a.truth)}</td><td>${mark(a.ok)}</td></tr>`).join('\n');
  const headline: Array<[string, string]> = [
    ['describe: category accuracy', `${pct(ev.describe.categoryAccuracy)} (majority class ${pct(ev.describe.categoryBaseline)})`],
    ['describe: colour accuracy', `${pct(ev.describe.colourAccuracy)} (majority class ${pct(ev.describe.colourBaseline)})`],
    ...(ev.answer ? [['answer: exact match', `${pct(ev.answer.exactMatch)} of ${ev.answer.items.length} questions`] as [string, string]] : []),
    ['describe: BLEU-4 / ROUGE-L / CIDEr-D', `${ev.describe.bleu4.toFixed(3)} / ${ev.describe.rougeL.toFixed(3)} / ${ev.describe.ciderD.toFixed(3)} (against the title and description)`],
    ['held-out items described', String(ev.describe.items.length)],
  ];
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: middle; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure { width: 250px; margin: 0; display: flex; gap: 8px; align-items: flex-start; border: 1px solid #eee; padding: 6px; border-radius: 6px; }
figcaption { font-size: 12px; } .ok { color: #2e7d32; } .bad { color: #c62828; }
</style></head><body>
<h1>${esc(r.title)}</h1>
<h2>Held-out results</h2>
<table>${headline.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Training</h2>
<table>${r.facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<h3>Loss per task: training (smoothed line) and held out (circles)</h3>
${lossCurveSvg(r.metrics)}
<h2>Describe: held-out photos and what the model wrote</h2>
<div class="grid">
${cards}
</div>
${ev.answer ? `<h2>Answer: held-out questions</h2>
<table><tr><th></th><th>question</th><th>model</th><th>truth</th><th></th></tr>
${answers}
</table>` : ''}
<p><small>Category and colour are judged by the first garment and colour words in the generated text; answers by exact match after lower-casing.</small></p>
</body></html>
`;
  writeFileSync(r.file, html);
}
