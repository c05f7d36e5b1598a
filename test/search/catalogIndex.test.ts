// The catalog index, both stores: round trip, incremental = rebuild, selective filters, stale
// weights, resumed builds, bad rows, lifecycle. Each test builds in its own temp folder.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as torch from '../../src/torch/index.js';
import {
  openCatalogIndex, StaleIndexError, IndexClosedError, formatBadIndexRow, F,
  type CatalogIndex, type CatalogRow, type IndexProvenance, type OpenOptions, type SearchHit, type StoreKind,
} from '../../src/search/index.js';

const DIMS = 16;
const WEIGHTS: IndexProvenance = { run: 'run-a', weightsDigest: 'sha256:aaaa', model: 'm6-nano', dims: DIMS };
const OTHER: IndexProvenance = { run: 'run-b', weightsDigest: 'sha256:bbbb', model: 'm6-nano', dims: DIMS };
const LABELS = ['dress', 'shirt', 'skirt', 'coat'];

/** Deterministic (seeded) unit vectors around a few centres, like a trained embedding's clusters. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}
function unit(r: () => number, centre?: Float32Array): Float32Array {
  const v = new Float32Array(DIMS);
  let n = 0;
  for (let i = 0; i < DIMS; i++) {
    const g = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
    v[i] = (centre ? centre[i]! : 0) + (centre ? 0.3 : 1) * g;
    n += v[i]! * v[i]!;
  }
  n = Math.sqrt(n);
  return v.map((x) => x / n);
}
type TestRow = CatalogRow & { image: Float32Array; text: Float32Array };
function catalog(n: number, seed = 1, prefix = 'sku'): TestRow[] {
  const r = rng(seed);
  const centres = Array.from({ length: 8 }, () => unit(r));
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    image: unit(r, centres[i % 8]),
    text: unit(r, centres[i % 8]),
    title: `item ${i}`,
    // Every 100th row is a 'rare' one: a 1% filter.
    label: i % 100 === 7 ? 'rare' : LABELS[i % LABELS.length]!,
    price: i % 3 === 0 ? null : (i * 7) % 100,
    attributes: { colour: ['red', 'blue'][i % 2]! },
    imagePath: `images/${i}.png`,
  }));
}
const queries = (n: number, seed = 99): Float32Array[] => { const r = rng(seed); return Array.from({ length: n }, () => unit(r)); };

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'm6-search-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
async function open(uri: string, store: StoreKind, opts: OpenOptions = {}): Promise<CatalogIndex> {
  return openCatalogIndex(uri, { store, weights: WEIGHTS, ...opts });
}
const ids = (hs: SearchHit[]): string[] => hs.map((h) => h.id);
function sameHits(a: SearchHit[], b: SearchHit[], what: string): void {
  assert.deepEqual(ids(a), ids(b), `${what}: ids differ`);
  a.forEach((h, i) => assert.ok(Math.abs(h.score - b[i]!.score) < 1e-4, `${what}: score of ${h.id} ${h.score} vs ${b[i]!.score}`));
}
/** The top k by brute force in JS, as the oracle for both stores. */
function bruteForce(rows: CatalogRow[], q: Float32Array, k: number, keep: (r: CatalogRow) => boolean = () => true): { id: string; score: number }[] {
  const fused = (r: CatalogRow): number[] => { const s = Array.from(r.image, (x, i) => x + r.text[i]!); const n = Math.hypot(...s); return s.map((x) => x / n); };
  return rows.filter(keep).map((r) => ({ id: r.id, score: fused(r).reduce((a, x, i) => a + x * q[i]!, 0) }))
    .sort((a, b) => b.score - a.score).slice(0, k);
}

for (const store of ['lance', 'exact'] as const) {
  describe(`CatalogIndex (${store})`, () => {
    it('round trip: build, close, reopen: the same results, and info records the run', async (t) => {
      const dir = tmp(t);
      const rows = catalog(300);
      const qs = queries(5);
      const idx = await open(dir, store);
      const rep = await idx.upsert(rows, { batchSize: 128 });
      assert.deepEqual({ inserted: rep.inserted, updated: rep.updated, bad: rep.bad.length }, { inserted: 300, updated: 0, bad: 0 });
      const before = await Promise.all(qs.map((q) => idx.search(q, { k: 10 })));
      const filtered = await idx.search(qs[0]!, { k: 5, where: "label = 'dress' AND price < 40" });
      await idx.close();

      const again = await openCatalogIndex(dir, { weights: WEIGHTS });  // the store is found from the folder
      assert.equal(again.store, store);
      for (const [i, q] of qs.entries()) sameHits(await again.search(q, { k: 10 }), before[i]!, `query ${i}`);
      sameHits(await again.search(qs[0]!, { k: 5, where: "label = 'dress' AND price < 40" }), filtered, 'filtered');
      // The oracle: brute force over the rows given.
      const want = bruteForce(rows, qs[0]!, 10);
      assert.deepEqual(ids(before[0]!), want.map((w) => w.id));
      before[0]!.forEach((h, i) => assert.ok(Math.abs(h.score - want[i]!.score) < 1e-4, `score ${h.score} vs ${want[i]!.score}`));
      assert.deepEqual(ids(filtered), bruteForce(rows, qs[0]!, 5, (r) => r.label === 'dress' && r.price != null && r.price < 40).map((w) => w.id));
      const hit = before[0]![0]!;
      const row = rows.find((r) => r.id === hit.id)!;
      assert.deepEqual({ title: hit.title, imagePath: hit.imagePath, label: hit.label, price: hit.price }, { title: row.title, imagePath: row.imagePath, label: row.label, price: row.price ?? null });
      const info = await again.info();
      assert.equal(info.rows, 300);
      assert.deepEqual({ run: info.run, weightsDigest: info.weightsDigest, model: info.model, dims: info.dims, store: info.store, distance: info.distance },
        { run: 'run-a', weightsDigest: 'sha256:aaaa', model: 'm6-nano', dims: DIMS, store, distance: 'dot' });
      assert.equal(info.refused, undefined);
      assert.ok(info.ann.columns.every((c) => c.state === 'none'), 'below the threshold: no ANN index');
      const [got] = await again.get([row.id]);
      assert.equal(got!.attributes.colour, row.attributes!.colour);
      assert.ok(got!.image.every((x, i) => Math.abs(x - row.image[i]!) < 1e-7));
      await again.close();
    });

    it('incremental add, update and remove equal a rebuild from the final rows', async (t) => {
      const dir = tmp(t);
      const first = catalog(200, 1), extra = catalog(100, 2, 'new');
      const idx = await open(join(dir, 'inc'), store);
      await idx.upsert(first);
      await idx.upsert(extra);
      const gone = [...first.slice(0, 50).map((r) => r.id), 'new3', 'new7', 'never-there'];
      assert.equal(await idx.remove(gone), 52);
      const changed = catalog(200, 3).slice(100, 120).map((r, i) => ({ ...r, id: `sku${100 + i}`, title: `changed ${i}` }));
      const upd = await idx.upsert(changed);
      assert.deepEqual({ inserted: upd.inserted, updated: upd.updated }, { inserted: 0, updated: 20 });

      const final = [...first.slice(50).map((r) => changed.find((c) => c.id === r.id) ?? r), ...extra.filter((r) => !gone.includes(r.id))];
      const fresh = await open(join(dir, 'fresh'), store);
      await fresh.upsert(final);
      assert.equal((await idx.info()).rows, final.length);
      for (const [i, q] of queries(6).entries()) {
        sameHits(await idx.search(q, { k: 8 }), await fresh.search(q, { k: 8 }), `query ${i}`);
        sameHits(await idx.search(q, { k: 8, vectorColumn: 'image', where: "NOT label IN ('shirt', 'coat') OR price >= 90" }),
          await fresh.search(q, { k: 8, vectorColumn: 'image', where: "NOT label IN ('shirt', 'coat') OR price >= 90" }), `filtered query ${i}`);
      }
      assert.deepEqual(await idx.get(['sku0', 'new3']), [], 'removed rows are gone');
      assert.equal((await idx.get(['sku105']))[0]!.title, 'changed 5');
      await idx.close();
      await fresh.close();
    });

    it('a fresh build with an id repeated in a later batch stores it once (the later row wins)', async (t) => {
      const dir = tmp(t);
      const rows = catalog(200);
      rows[120] = { ...rows[120]!, id: 'sku5', title: 'the later one' };  // batch 3 is merged, not appended
      rows[170] = { ...rows[170]!, id: 'sku121', title: 'repeats a row of the merged batch' };
      const idx = await open(dir, store);
      const rep = await idx.upsert(rows, { batchSize: 50 });
      assert.deepEqual({ inserted: rep.inserted, updated: rep.updated }, { inserted: 198, updated: 2 });
      assert.equal((await idx.info()).rows, 198);
      assert.deepEqual((await idx.get(['sku5', 'sku121'])).map((r) => r.title), ['the later one', 'repeats a row of the merged batch']);
      await idx.close();
    });

    it('a filter keeping 1% of the rows still returns k results, past the ANN threshold too', async (t) => {
      const dir = tmp(t);
      const rows = catalog(3000);
      // 16 partitions, 10 probed (the default): k-means is seeded at random, so a test that probes
      // few of many partitions would pass or fail by the draw.
      const idx = await open(dir, store, { ann: { threshold: 2000, columns: ['fused'], partitions: 16 } });
      const rep = await idx.upsert(rows, { batchSize: 1000 });
      const info = await idx.info();
      if (store === 'lance') {
        assert.ok(rep.annBuilt, 'past the threshold the ANN index is trained');
        assert.deepEqual(info.ann.columns.map((c) => [c.column, c.state, c.type]), [['fused', 'ready', 'IVF_FLAT']], 'the default: IVF_FLAT on the columns asked for');
      }
      const rare = (r: CatalogRow) => r.label === 'rare';
      assert.equal(rows.filter(rare).length, 30);
      let recall = 0, filteredRecall = 0;
      for (const q of queries(10)) {
        const hs = await idx.search(q, { k: 10, where: F.eq('label', 'rare') });
        assert.equal(hs.length, 10);
        assert.ok(hs.every((h) => h.label === 'rare'), 'every hit passes the filter');
        const truth = bruteForce(rows, q, 10, rare).map((w) => w.id);
        assert.deepEqual(ids(await idx.search(q, { k: 10, where: "label = 'rare'", exact: true })), truth, 'exact: the filtered top 10');
        // Through the ANN index (lance) the filtered hits are approximate too, but still k of them.
        filteredRecall += hs.filter((h) => truth.includes(h.id)).length / 10;
        const ann = await idx.search(q, { k: 10 });
        const exact = new Set(ids(await idx.search(q, { k: 10, exact: true })));
        recall += ann.filter((h) => exact.has(h.id)).length / 10;
      }
      assert.ok(recall / 10 >= 0.9, `ANN recall@10 ${recall / 10} ≥ 0.9`);
      assert.ok(filteredRecall / 10 >= (store === 'exact' ? 1 : 0.8), `filtered recall@10 ${filteredRecall / 10}`);
      // Fewer matching rows than k: all of them.
      assert.equal((await idx.search(queries(1)[0]!, { k: 10, where: "id IN ('sku7', 'sku107', 'nope')" })).length, 2);
      await idx.close();
    });

    it('an index built by another run is refused at query time, naming both', async (t) => {
      const dir = tmp(t);
      const idx = await open(dir, store);
      await idx.upsert(catalog(20));
      await idx.close();
      const stale = await openCatalogIndex(dir, { weights: OTHER });
      await assert.rejects(stale.search(queries(1)[0]!), (e: Error) => {
        assert.ok(e instanceof StaleIndexError);
        for (const s of ['run-a', 'sha256:aaaa', 'run-b', 'sha256:bbbb']) assert.ok(e.message.includes(s), `message names ${s}: ${e.message}`);
        return true;
      });
      await assert.rejects(stale.upsert(catalog(1)), StaleIndexError);
      const info = await stale.info();
      assert.equal(info.rows, 20);
      assert.match(info.refused ?? '', /run-b/);
      await stale.close();
      const readOnly = await openCatalogIndex(dir);
      assert.equal((await readOnly.get(['sku3']))[0]!.id, 'sku3');
      await assert.rejects(readOnly.search(queries(1)[0]!), /read-only/);
      await readOnly.close();
      await assert.rejects(openCatalogIndex(join(dir, 'empty')), /no catalog index here/);
    });

    it('an interrupted build resumes: committed batches stay, a rerun with skip adds only the rest', async (t) => {
      const dir = tmp(t);
      const rows = catalog(250);
      const idx = await open(dir, store);
      function* dying(): Generator<CatalogRow> {
        for (const [i, r] of rows.entries()) {
          if (i === 130) throw new Error('killed');
          yield r;
        }
      }
      const batches: number[] = [];
      await assert.rejects(idx.upsert(dying(), { batchSize: 50, onBatch: (p) => batches.push(p.inserted) }), /killed/);
      assert.deepEqual(batches, [50, 100]);
      await idx.close();

      const resumed = await open(dir, store);
      assert.equal((await resumed.info()).rows, 100, 'two whole batches were committed');
      const rep = await resumed.upsert(rows, { batchSize: 50, onExisting: 'skip' });
      assert.deepEqual({ inserted: rep.inserted, updated: rep.updated, skipped: rep.skipped }, { inserted: 150, updated: 0, skipped: 100 });
      const full = await open(join(dir, 'full'), store);
      await full.upsert(rows);
      for (const q of queries(4)) sameHits(await resumed.search(q, { k: 10 }), await full.search(q, { k: 10 }), 'resumed vs full');
      await resumed.close();
      await full.close();
    });

    it('bad rows are reported with row, id, field and expected vs got; the others are kept', async (t) => {
      const dir = tmp(t);
      const good = catalog(6);
      const nan = Float32Array.from(good[2]!.text); nan[3] = NaN;
      const rows = [
        good[0]!,
        { ...good[1]!, image: good[1]!.image.slice(0, DIMS - 1) },
        { ...good[2]!, text: nan },
        { ...good[3]!, id: '' },
        { ...good[4]!, fused: good[4]!.image.map((x) => x * 2) },
        { ...good[5]!, price: 'cheap' as unknown as number },
        good[5]!,
      ];
      const idx = await open(dir, store);
      const rep = await idx.upsert(rows);
      assert.equal(rep.inserted, 2);
      assert.deepEqual(rep.bad.map((b) => [b.row, b.id, b.field, b.reason]), [
        [2, 'sku1', 'image', 'wrong vector length'],
        [3, 'sku2', 'text', 'not finite'],
        [4, undefined, 'id', 'missing id'],
        [5, 'sku4', 'fused', 'not unit length'],
        [6, 'sku5', 'price', 'wrong type'],
      ]);
      assert.equal(formatBadIndexRow(rep.bad[0]!), `row 2 (id 'sku1'): wrong vector length, field 'image', expected ${DIMS} numbers, got ${DIMS - 1}`);
      assert.match(formatBadIndexRow(rep.bad[1]!), /got NaN at \[3\]/);
      assert.match(formatBadIndexRow(rep.bad[3]!), /expected ‖v‖ = 1 ± 0.001 .*got ‖v‖ = 2/);
      assert.deepEqual((await idx.get(['sku0', 'sku1', 'sku5'])).map((r) => r.id), ['sku0', 'sku5']);
      await assert.rejects(idx.search(new Float32Array(DIMS - 2)), /has 14 numbers; this index .* holds 16/);
      await assert.rejects(idx.search(queries(1)[0]!, { where: "colour = 'red'" }), /unknown column 'colour'/);
      await idx.close();
    });

    it('close is idempotent, any use after it throws; await using closes', async (t) => {
      const dir = tmp(t);
      {
        await using idx = await open(dir, store);
        await idx.upsert(catalog(5));
      }
      const idx = await open(dir, store);
      assert.equal((await idx.info()).rows, 5, 'the disposed index wrote its rows');
      await idx.close();
      await idx.close();
      await assert.rejects(idx.search(queries(1)[0]!), IndexClosedError);
      await assert.rejects(idx.info(), /info\(\) after close\(\)/);
    });
  });
}

describe('CatalogIndex (lance): ANN index kinds and upkeep', () => {
  for (const type of ['ivf_pq'] as const) {
    it(`${type}: trained past the threshold, recall against the exact scan, kept up to date as rows arrive`, async (t) => {
      const dir = tmp(t);
      const rows = catalog(2600);
      const idx = await open(dir, 'lance', { ann: { threshold: 2000, type, columns: ['fused', 'image'], partitions: 16 } });
      assert.equal((await idx.upsert(rows.slice(0, 1900))).annBuilt, false, 'below the threshold');
      assert.equal((await idx.upsert(rows.slice(1900, 2100))).annBuilt, true);
      const want = 'IVF_PQ';
      assert.deepEqual((await idx.info()).ann.columns.map((c) => [c.column, c.state, c.type, c.indexedRows]), [['fused', 'ready', want, 2100], ['image', 'ready', want, 2100]]);
      // 500 more rows (> 10% of the indexed): upsert folds them into the index.
      assert.equal((await idx.upsert(rows.slice(2100))).annBuilt, true);
      assert.deepEqual((await idx.info()).ann.columns.map((c) => [c.state, c.indexedRows, c.unindexedRows]), [['ready', 2600, 0], ['ready', 2600, 0]]);
      let recall = 0;
      for (const q of queries(10)) {
        const exact = new Set(ids(await idx.search(q, { k: 10, exact: true, vectorColumn: 'image' })));
        recall += (await idx.search(q, { k: 10, vectorColumn: 'image' })).filter((h) => exact.has(h.id)).length / 10;
        assert.equal((await idx.search(q, { k: 10, where: "label = 'rare'" })).length, 10);
      }
      assert.ok(recall / 10 >= 0.8, `recall@10 ${recall / 10}`);
      await idx.close();
    });
  }
});

describe('CatalogIndex: the two stores agree', () => {
  it('lance and exact give the same ids and scores, filters included (null prices, NOT, IN)', async (t) => {
    const dir = tmp(t);
    const rows = catalog(400, 5);
    const lance = await open(join(dir, 'lance'), 'lance');
    const exact = await open(':memory:', 'exact');
    await lance.upsert(rows);
    await exact.upsert(rows);
    assert.ok(!existsSync(join(dir, 'exact.safetensors')));
    const wheres = [undefined, "label = 'dress' AND price < 40.5", 'price > 1e1 AND price <= 7e1', 'NOT (price > 20)', 'price IS NULL', "label IN ('coat', 'skirt') OR price >= 95", "title != 'item 3' AND NOT label = 'shirt'"];
    for (const [i, q] of queries(4).entries()) {
      for (const where of wheres) {
        for (const vectorColumn of ['fused', 'image', 'text'] as const) {
          sameHits(await lance.search(q, { k: 7, where, vectorColumn }), await exact.search(q, { k: 7, where, vectorColumn }), `query ${i} ${vectorColumn} where ${where}`);
        }
      }
    }
    await lance.close();
    await exact.close();
    assert.equal(torch.liveTensors(), 0, 'the exact store freed its matrices');
  });
});

describe('CatalogIndex: a build of many commits is compacted', () => {
  it('120 rows in 5-row commits end as one fragment, with the same answers as the exact store', async (t) => {
    const dir = tmp(t);
    const rows = catalog(120, 6);
    const lance = await open(join(dir, 'lance'), 'lance');
    const exact = await open(':memory:', 'exact');
    await lance.upsert(rows, { batchSize: 5 });
    await exact.upsert(rows);
    const lancedb = await import('@lancedb/lancedb');
    const db = await lancedb.connect(join(dir, 'lance'));
    const table = await db.openTable('items');
    assert.deepEqual([(await table.stats()).fragmentStats.numFragments, await table.countRows()], [1, 120]);
    table.close();
    db.close();
    for (const q of queries(3)) sameHits(await lance.search(q, { k: 6, where: 'price < 50' }), await exact.search(q, { k: 6, where: 'price < 50' }), 'after compaction');
    assert.deepEqual((await lance.get(['sku7', 'sku119'])).map((r) => r.id), ['sku7', 'sku119']);
    await lance.close();
    await exact.close();
  });
});
