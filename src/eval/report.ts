// report.html of a demo run: the metrics, the loss curves (inline SVG from metrics.jsonl), and
// held-out product photos beside what the model wrote about them. One self-contained file; images
// are linked by relative path, so the run folder can be opened or copied as it is.
import { writeFileSync } from 'node:fs';
import { relative, dirname } from 'node:path';
import type { Metric } from '../train/metrics.js';
import { lossChartSvg } from '../train/plots.js';
import type { SyntheticEvalResult } from './syntheticEval.js';
import type { EmbedEvalResult } from './embedEval.js';
import type { DesignEvaluation } from './designEval.js';
import type { TaskEvaluation } from './evaluation.js';

export interface ReportInput {
  file: string;
  /** Folder of the catalog (item.image is relative to it). */
  catalogDir: string;
  title: string;
  facts: Array<[string, string]>;
  metrics: Metric[];
  evaluation: SyntheticEvalResult;
  /** Text→image and image→text search over the held-out items (the embed task). */
  retrieval?: EmbedEvalResult;
  /** Held-out titles searched in a catalog index of the held-out images (searchEval.ts). */
  search?: TaskEvaluation;
  /** Designs for held-out titles, judged by the attribute classifier. */
  design?: DesignEvaluation;
  /** Items shown with their pictures. */
  show?: number;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** The search evaluation's rows of the headline table: recall and nDCG beside a random ranking, and the ANN index against exact. */
function searchHeadline(s: TaskEvaluation): Array<[string, string]> {
  const m = s.metrics, b = s.baselines;
  const recalls = (x: Record<string, number>) => [1, 5, 10].map((k) => pct(x[`textToImageRecall${k}`] ?? 0)).join(' / ');
  return [
    ['search (catalog index): title→image recall@1/5/10', `${recalls(m)} over ${s.evaluated} items (random ranking ${recalls(b)}; relevant: the item and same-titled items)`],
    ['search: nDCG@10', `${(m.ndcg10 ?? 0).toFixed(3)} (random ranking ${(b.ndcg10 ?? 0).toFixed(3)})`],
    ...(m.annRecallAt10 !== undefined ? [['search: ANN recall@10 against the exact store', pct(m.annRecallAt10)] as [string, string]] : []),
  ];
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
  const rt = r.retrieval;
  if (rt !== undefined) {
    const recalls = (x: Record<string, number>) => ['recall@1', 'recall@5', 'recall@10'].map((k) => pct(x[k] ?? 0)).join(' / ');
    headline.push(
      ['embed: text→image recall@1/5/10', `${recalls(rt.textToImage)} over ${rt.items} items (chance ${recalls(rt.chanceTextToImage)})`],
      ['embed: image→text recall@1/5/10', `${recalls(rt.imageToText)} over ${rt.captions} distinct captions (chance ${recalls(rt.chanceImageToText)})`],
    );
  }
  if (r.search !== undefined) headline.push(...searchHeadline(r.search));
  const dz = r.design;
  if (dz !== undefined) {
    const m = dz.metrics, b = dz.baselines;
    headline.push(
      ['design: category / colour read by the classifier', `${pct(m.categoryAccuracy ?? 0)} / ${pct(m.colourAccuracy ?? 0)} of ${dz.evaluated} designs (majority class ${pct(b.categoryAccuracy ?? 0)} / ${pct(b.colourAccuracy ?? 0)})`],
      ['design: the classifier on real held-out images', `${pct(m.classifierCategoryAccuracy ?? 0)} / ${pct(m.classifierColourAccuracy ?? 0)}`],
      ['design: the classifier on VQ reconstructions of them (the ceiling)', `${pct(m.vqCeilingCategoryAccuracy ?? 0)} / ${pct(m.vqCeilingColourAccuracy ?? 0)}`],
      ['design: Fréchet distance (classifier features)', `${(m.frechetDistance ?? NaN).toFixed(2)} (real images vs real: ${(b.frechetDistance ?? NaN).toFixed(2)})`],
    );
  }
  // A path in the report: relative for catalog images (image fields are relative to the catalog), kept for absolute ones.
  const anySrc = (image: string) => esc(relative(dirname(r.file), image.startsWith('/') ? image : `${r.catalogDir}/${image}`));
  const searches = (rt?.examples ?? []).map((e) => `<tr><td>${esc(e.query)}</td><td>${e.top.map((t) =>
    `<img src="${anySrc(t.image)}" width="56" height="56" alt="${esc(t.text)}" title="${esc(t.text)}" class="${t.relevant ? 'hit' : 'miss'}">`).join(' ')}</td></tr>`).join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: middle; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure { min-width: 250px; margin: 0; display: flex; gap: 8px; align-items: flex-start; border: 1px solid #eee; padding: 6px; border-radius: 6px; }
img.hit { outline: 3px solid #2e7d32; } img.miss { outline: 3px solid #ddd; }
figcaption { font-size: 12px; } .ok { color: #2e7d32; } .bad { color: #c62828; }
</style></head><body>
<h1>${esc(r.title)}</h1>
<h2>Held-out results</h2>
<table>${headline.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Training</h2>
<table>${r.facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>
<h3>Loss per task: training (smoothed line) and held out (circles)</h3>
${lossChartSvg(r.metrics) ?? '<p>(not enough steps for a curve)</p>'}
<h2>Describe: held-out photos and what the model wrote</h2>
<div class="grid">
${cards}
</div>
${ev.answer ? `<h2>Answer: held-out questions</h2>
<table><tr><th></th><th>question</th><th>model</th><th>truth</th><th></th></tr>
${answers}
</table>` : ''}
${dz ? `<h2>Design: held-out titles as prompts, the model's image beside the real product</h2>
<div class="grid">
${dz.samples.map((x) => `<figure><img src="${anySrc(x.generated)}" width="96" height="96" alt="design"><img src="${anySrc(x.real)}" width="96" height="96" alt="real"><figcaption>${esc(x.prompt)}</figcaption></figure>`).join('\n')}
</div>` : ''}
${rt ? `<h2>Search: held-out titles as queries, the top 5 held-out images</h2>
<p><small>Green frame: an item with the query's attributes (category, colour, pattern).</small></p>
<table>${searches}</table>` : ''}
<p><small>Category and colour are judged by the first garment and colour words in the generated text; answers by exact match after lower-casing.</small></p>
</body></html>
`;
  writeFileSync(r.file, html);
}
