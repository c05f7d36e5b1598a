// `m6 demo` end to end on a very short budget: catalog, training, held-out evaluation, report.html.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { m6, tempDir } from '../data/fixtures.js';

test('m6 demo: synthesise, train briefly, evaluate held-out items, write report.html', async (t) => {
  const dir = tempDir(t, 'm6-demo-');
  const r = await m6(['demo', '--out', dir, '--minutes', '0.25', '--n', '60', '--eval-items', '4', '--no-bf16', '--vq-steps', '20', '--tasks', 'describe,answer:0.5,embed,design,recommend:0.5']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /VQ stage: training a \d+-code image tokenizer .* for 20 steps of/);
  assert.match(r.stdout, /describe category accuracy [\d.]+% \(majority [\d.]+%\); colour [\d.]+% \(majority [\d.]+%\); BLEU-4 [\d.]+, ROUGE-L [\d.]+, CIDEr-D [\d.]+; answer exact match [\d.]+%/);
  assert.match(r.stdout, /report: .*run\/report\.html/);
  assert.match(r.stdout, /serve it: m6 serve --run \S*run --index \S*run\/index .*http:\/\/127\.0\.0\.1:8080\//, 'the demo ends with the command that serves its run and its index');
  // The catalog is indexed (exact store in RUN/index) and one held-out title searched, with the command for more.
  assert.match(r.stdout, /^search "[^"]+": .+ \([\d.-]+\); .+ \([\d.-]+\); .+ \([\d.-]+\)\nsearch more: m6 search --index .*run\/index --text "/m);
  assert.match(r.stderr, /indexed 60 catalog products into .*run\/index/);
  // A shopper's recommendations (their history left out), the full-ranking figure beside its baselines, and the command for more.
  assert.match(r.stdout, /^recommend for shopper u\d+ \(who saw .+\): .+ \([\d.-]+\); .+\nrecommend more: m6 recommend --index \S*run\/index --data \S*catalog\/dataset\.json --user u\d+/m);
  assert.match(r.stdout, /recommend NDCG@10 \d\.\d{4} over all items \(popularity \d\.\d{4}, co-occurrence \d\.\d{4}\)/);
  const html = readFileSync(join(dir, 'run', 'report.html'), 'utf8');
  assert.match(html, /<img src="\.\.\/catalog\/images\/p\d{6}\.png"/, 'real images linked relative to the report');
  assert.match(html, /<svg[^>]*aria-label="training loss per task|not enough steps for a curve/);
  assert.match(html, /describe: category accuracy/);
  const results = JSON.parse(readFileSync(join(dir, 'run', 'demo-results.json'), 'utf8'));
  assert.equal(results.describe.items, 4);
  // The pixel baselines beside the model's figures: describe by the nearest training thumbnail, search by a title's mean thumbnail.
  assert.match(r.stdout, /nearest-thumbnail describe: category [\d.]+%, colour [\d.]+%, CIDEr-D [\d.]+; pixel search recall@10 [\d.]+%/);
  assert.equal(results.pixelBaselines.describe.items, 4);
  assert.equal(results.pixelBaselines.search.items, results.embed.items);
  // Search judged as m6 eval --tasks search judges it: a LanceDB index of the held-out images, every held-out title a query.
  assert.match(html, /search \(catalog index\): title→image recall@1\/5\/10/);
  assert.equal(results.search.items, results.embed.items);
  assert.ok(['textToImageRecall1', 'textToImageRecall10', 'ndcg10', 'annRecallAt10'].every((k) => results.search.metrics[k] >= 0 && results.search.metrics[k] <= 1), JSON.stringify(results.search));
  assert.ok(results.steps >= 1);
  assert.ok(existsSync(join(dir, 'catalog', 'catalog.jsonl')));
});

test('m6 demo --tasks: trains and judges only the tasks named, and refuses a list without describe', async (t) => {
  const dir = tempDir(t, 'm6-demo-tasks-');
  const bad = await m6(['demo', '--out', dir, '--tasks', 'embed,design']);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--tasks: the demo needs describe/);
  const unknown = await m6(['demo', '--out', dir, '--tasks', 'describe,denoise']);
  assert.equal(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /'denoise' is not one of them/);

  const r = await m6(['demo', '--out', dir, '--minutes', '0.1', '--n', '40', '--eval-items', '3', '--no-bf16', '--tasks', 'describe']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /describe category accuracy/);
  assert.doesNotMatch(r.stdout, /answer exact match|recall@10|design category|recommend NDCG/, 'untrained tasks are not judged');
  assert.doesNotMatch(r.stdout, /^search "/m, 'no index without the embed task');
  const results = JSON.parse(readFileSync(join(dir, 'run', 'demo-results.json'), 'utf8'));
  assert.equal(results.answer, null);
  assert.equal(results.embed, null);
  assert.equal(results.pixelBaselines.search, null, 'no search baseline without the embed task');
  assert.equal(results.design, null);
  assert.equal(results.tasks, 'describe');
});
