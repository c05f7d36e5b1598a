// `m6 index …` and `m6 search` as a user runs them, on a tiny run trained with embed: build (an
// unreadable image skipped and named, the rest indexed), a second build resumes (nothing embedded
// again), info, search by text / image / item with a filter, add and remove, and an index made by
// one run refused to another.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { m6, writeTinyConfig } from '../data/fixtures.js';

let dir = '';
let run = '';
let other = '';
let data: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-search-cli-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '30', '--seed', '8', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'));
  // Every row trains (the catalog's own split would hold some out): the index is of a run that saw them all.
  data = ['--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:1'];
  const common = [...data, '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300', '--workers', '0', '--steps', '2', '--tasks', 'describe,embed'];
  run = join(dir, 'run');
  other = join(dir, 'other');
  const [a, b] = await Promise.all([m6(['train', ...common, '--out', run]), m6(['train', ...common, '--seed', '9', '--out', other])]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Hit { id: string; score: number; title: string; imagePath: string; label: string; price: number | null; attributes: Record<string, string> }

for (const store of ['exact', 'lance'] as const) {
  test(`m6 index build / info / search / add / remove (${store} store)`, async () => {
    const index = join(dir, `index-${store}`);
    // One row's image goes missing: it is skipped, named by file and row, and the rest are indexed.
    const manifest = readFileSync(join(dir, 'catalog', 'catalog.jsonl'), 'utf8').trim().split('\n');
    const broken = join(dir, `broken-${store}.jsonl`);
    writeFileSync(broken, manifest.map((l, i) => (i === 4 ? l.replace(/"image":"[^"]+"/, '"image":"images/missing.png"') : l)).join('\n') + '\n');
    const spec = JSON.parse(readFileSync(join(dir, 'catalog', 'dataset.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, `broken-${store}.json`), JSON.stringify({ ...spec, manifest: broken, imageRoot: join(dir, 'catalog') }));
    const built = await m6(['index', 'build', '--run', run, '--data', join(dir, `broken-${store}.json`), '--out', index, '--store', store, '--batch-size', '8']);
    assert.equal(built.status, 0, built.stderr);
    assert.match(built.stderr, /broken-\w+\.jsonl:5 \(id 'p000005'\): skipped: missing file/);
    assert.match(built.stdout, /: 29 rows \(29 new, 0 updated, 1 skipped\); ANN none \(exact search below \d+ rows\)/);
    assert.match(built.stderr, /indexed 30\/30 rows \(100%\)/);
    // Run again: a finished (or interrupted) build picks up where it stopped; nothing is embedded twice.
    const again = await m6(['index', 'build', '--run', run, '--data', join(dir, `broken-${store}.json`), '--out', index, '--store', store]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /: 29 rows \(0 new, 0 updated, 29 already indexed, 1 skipped\)/);

    const info = await m6(['index', 'info', '--index', index, '--json']);
    assert.equal(info.status, 0, info.stderr);
    const i = JSON.parse(info.stdout) as { rows: number; dims: number; run: string; store: string; weightsDigest: string };
    assert.deepEqual([i.rows, i.dims, i.run, i.store], [29, 32, run, store]);
    assert.match(i.weightsDigest, /^sha256:[0-9a-f]{64}$/);

    const byText = await m6(['search', '--index', index, '--text', 'red dress', '--k', '5', '--json']);
    assert.equal(byText.status, 0, byText.stderr);
    const hits = JSON.parse(byText.stdout) as Hit[];
    assert.equal(hits.length, 5);
    assert.ok(hits.every((h, k) => k === 0 || h.score <= hits[k - 1]!.score), 'best first');
    assert.ok(hits.every((h) => h.title.length > 0 && h.imagePath.endsWith('.png') && h.label.length > 0));
    const label = hits[0]!.label;
    const filtered = await m6(['search', '--index', index, '--text', 'red dress', '--k', '3', '--where', `label = '${label}'`, '--json']);
    assert.equal(filtered.status, 0, filtered.stderr);
    assert.ok((JSON.parse(filtered.stdout) as Hit[]).every((h) => h.label === label));
    // The catalog's price column is a number column of the index: a filter on it through the CLI keeps
    // exactly the rows of catalog.jsonl that pass (the cheaper half of the commonest category).
    const products = manifest.map((l) => JSON.parse(l) as { id: string; category: string; colour: string; price: number }).filter((p) => p.id !== 'p000005');
    const counts = new Map<string, number>();
    for (const p of products) counts.set(p.category, (counts.get(p.category) ?? 0) + 1);
    const common = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    const prices = products.filter((p) => p.category === common).map((p) => p.price).sort((a, b) => a - b);
    const below = prices[Math.floor(prices.length / 2)]!;
    const cheap = products.filter((p) => p.category === common && p.price < below);
    assert.ok(cheap.length > 0 && cheap.length < prices.length, `the filter keeps some ${common} rows, not all`);
    const priced = await m6(['search', '--index', index, '--text', 'red dress', '--k', '30', '--where', `label = '${common}' AND price < ${below}`, '--json']);
    assert.equal(priced.status, 0, priced.stderr);
    const pricedHits = JSON.parse(priced.stdout) as Hit[];
    assert.deepEqual(pricedHits.map((h) => h.id).sort(), cheap.map((p) => p.id).sort());
    for (const h of pricedHits) {
      const p = cheap.find((c) => c.id === h.id)!;
      assert.deepEqual([h.label, h.price, h.attributes.colour], [common, p.price, p.colour], h.id);
    }
    const like = await m6(['search', '--index', index, '--item', hits[0]!.id, '--k', '4', '--json']);
    assert.equal(like.status, 0, like.stderr);
    const likeHits = JSON.parse(like.stdout) as Hit[];
    assert.equal(likeHits.length, 4);
    assert.ok(likeHits.every((h) => h.id !== hits[0]!.id), 'an item is not its own neighbour');
    const image = join(dir, 'query.png');
    copyFileSync(join(dir, 'catalog', 'images', 'p000002.png'), image);
    // Against the image vectors an item's own photo is its own vector (score 1): first, whatever the
    // weights. The default column for an image query, fused (image + text), returns k hits too; which
    // one comes first there is up to a 2-step model's text half.
    const byImage = await m6(['search', '--index', index, '--image', image, '--column', 'image', '--k', '1', '--json']);
    const own = (JSON.parse(byImage.stdout) as Hit[])[0]!;
    assert.equal(own.id, 'p000002', 'an item\'s own photo finds it first');
    assert.ok(Math.abs(own.score - 1) < 1e-4, `its own vector: score ${own.score}`);
    const fused = await m6(['search', '--index', index, '--image', image, '--k', '3', '--json']);
    assert.equal(fused.status, 0, fused.stderr);
    assert.equal((JSON.parse(fused.stdout) as Hit[]).length, 3);

    const badWhere = await m6(['search', '--index', index, '--text', 'x', '--where', 'colour = 1']);
    assert.equal(badWhere.status, 2);
    assert.match(badWhere.stderr, /^m6: .*colour/);
    const stale = await m6(['search', '--index', index, '--run', other, '--text', 'red dress']);
    assert.equal(stale.status, 2, stale.stderr);
    assert.match(stale.stderr, /^m6: .*(other|weights)/);

    const added = await m6(['index', 'add', '--index', index, ...data]);
    assert.equal(added.status, 0, added.stderr);
    assert.match(added.stdout, /: 30 rows \(1 new, 29 updated\)/);
    const removed = await m6(['index', 'remove', '--index', index, 'p000001', 'p000002', 'nope']);
    assert.equal(removed.status, 0, removed.stderr);
    assert.match(removed.stdout, /removed 2 of 3 ids; 28 rows left/);
  });
}

test('m6 search / index: usage errors are one line', async () => {
  const none = await m6(['search', '--index', join(dir, 'nothing'), '--text', 'x']);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^m6: .*nothing: no catalog index here; build one with m6 index build/);
  const two = await m6(['search', '--index', join(dir, 'nothing'), '--text', 'x', '--item', 'p1']);
  assert.equal(two.status, 2);
  assert.match(two.stderr, /give exactly one of --text TEXT, --image FILE or --item ID/);
});
