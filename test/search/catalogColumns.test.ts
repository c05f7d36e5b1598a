// The catalog's own columns in the index: the synthetic catalog's dataset.json names a price and
// attribute columns; its rows, read as `m6 index build` reads them, go into both stores with their
// title, label, price and attributes, and `label = 'dress' AND price < 40` keeps exactly the rows of
// catalog.jsonl that pass it, best first, each hit carrying its columns.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { readDataset } from '../../src/data/manifest.js';
import { writeSyntheticCatalog } from '../../src/data/synth/catalog.js';
import { PRICE_BANDS } from '../../src/data/synth/price.js';
import { catalogColumns, openCatalogIndex, type CatalogRow, type IndexProvenance } from '../../src/search/index.js';

const DIMS = 8;
const WEIGHTS: IndexProvenance = { run: 'run-a', weightsDigest: 'sha256:aaaa', model: 'm6-nano', dims: DIMS };

/** A seeded unit vector per row (the columns are under test here, not the model). */
function unit(seed: number): Float32Array {
  let s = seed >>> 0;
  const v = Float32Array.from({ length: DIMS }, () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; });
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

interface Product { id: string; category: string; colour: string; pattern: string; sleeve: string | null; title: string; price: number }

test('the synthetic catalog\'s price and attributes go into both stores and filter: label = \'dress\' AND price < 40', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'm6-columns-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await writeSyntheticCatalog({ out: dir, count: 120, seed: 3, size: 64 });
  const products = readFileSync(join(dir, 'catalog.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Product);
  for (const p of products) {
    const [lo, hi] = PRICE_BANDS[p.category]!;
    assert.ok(p.price >= lo && p.price < hi + 1 && Math.round(p.price * 100) % 100 === 99, `${p.id}: ${p.category} at ${p.price}`);
  }
  const file = join(dir, 'dataset.json');
  const { rows } = await readDataset(resolveDatasetSpec(loadDatasetSpecFile(file), dir));
  assert.equal(rows.length, products.length);
  const indexRows: CatalogRow[] = rows.map((r, i) => ({ id: r.id, image: unit(2 * i + 1), text: unit(2 * i + 2), ...catalogColumns(r) }));
  const wanted = products.filter((p) => p.category === 'dress' && p.price < 40).map((p) => p.id);
  assert.ok(wanted.length >= 2 && wanted.length < products.filter((p) => p.category === 'dress').length, `the filter keeps some dresses, not all (${wanted.length})`);
  const byId = new Map(products.map((p) => [p.id, p]));
  for (const store of ['exact', 'lance'] as const) {
    const idx = await openCatalogIndex(store === 'exact' ? ':memory:' : join(dir, 'index'), { store, weights: WEIGHTS });
    try {
      await idx.upsert(indexRows);
      const hits = await idx.search(unit(7), { k: 100, where: "label = 'dress' AND price < 40", vectorColumn: 'image' });
      assert.deepEqual(hits.map((h) => h.id).sort(), [...wanted].sort(), store);
      assert.ok(hits.every((h, k) => k === 0 || h.score <= hits[k - 1]!.score), `${store}: best first`);
      for (const h of hits) {
        const p = byId.get(h.id)!;
        const attributes: Record<string, string> = { colour: p.colour, pattern: p.pattern, ...(p.sleeve !== null ? { sleeve: p.sleeve } : {}) };
        assert.deepEqual({ title: h.title, label: h.label, price: h.price, attributes: h.attributes }, { title: p.title, label: 'dress', price: p.price, attributes }, `${store}: ${h.id}`);
      }
      const none = await idx.search(unit(7), { k: 5, where: 'price < 0' });
      assert.equal(none.length, 0, `${store}: no row costs less than 0`);
    } finally {
      await idx.close();
    }
  }
});
