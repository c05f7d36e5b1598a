// WebDataset-style shards: a packed catalog reads back as the same rows and image bytes; brace
// patterns and their errors; every rank's shards of an epoch are disjoint and cover the dataset;
// bad samples (not an image, no image, bad JSON, a truncated shard) are reported with their shard
// and key and skipped, the rest read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { BadRowLog, formatBadRow } from '../../src/data/badRows.js';
import { braceExpand } from '../../src/data/braceExpand.js';
import { DatasetSpecError, loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { ImageDecodeError, loadImage } from '../../src/data/image.js';
import { DataLoader, examplesFromRows, type Batch } from '../../src/data/loader.js';
import { readDataset, type DataRow } from '../../src/data/manifest.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { memberKey, shardsForRank, streamRankRows } from '../../src/data/shards.js';
import { parseShardMemberRef, readShardMember } from '../../src/data/shardMember.js';
import { packDataset, shardPattern } from '../../src/data/shardWriter.js';
import { writeSyntheticCatalog } from '../../src/data/synth/catalog.js';
import { buildTaskData } from '../../src/tasks/taskData.js';
import { tempDir } from './fixtures.js';

const sharp = (await import('sharp')).default;

async function png(rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width: 8, height: 8, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer();
}

/** Writes a tar of the given members, in order. */
async function writeTar(file: string, members: Array<[string, Buffer | string]>): Promise<void> {
  const p = tarPack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const [name, data] of members) await new Promise<void>((res, rej) => p.entry({ name }, typeof data === 'string' ? Buffer.from(data) : data, (e) => (e ? rej(e) : res())));
  p.finalize();
  await ended;
  writeFileSync(file, Buffer.concat(chunks));
}

const summary = (rows: readonly DataRow[]) => rows.map(({ id, text, caption, label, split }) => ({ id, text, caption, label, split }));

test('a packed synthetic catalog reads back as the same rows, image bytes and pixels, and the same task examples', async (t) => {
  const dir = tempDir(t);
  await writeSyntheticCatalog({ out: join(dir, 'cat'), count: 14, seed: 4, size: 64 });
  const source = resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'cat', 'dataset.json')));
  const packed = await packDataset(source, { out: join(dir, 'packed'), samplesPerShard: 5 });
  assert.equal(packed.samples, 14);
  assert.deepEqual(packed.shards.map((s) => s.slice(-10)), ['000000.tar', '000001.tar', '000002.tar']);
  const spec = resolveDatasetSpec(loadDatasetSpecFile(packed.spec));
  assert.deepEqual(spec.shards, packed.shards, 'the brace pattern names the shards written');
  const [a, b] = [await readDataset(source), await readDataset(spec)];
  assert.equal(b.totalRows, 14);
  assert.equal(b.bad.total, 0);
  assert.deepEqual(summary(b.rows), summary(a.rows));
  for (const [i, row] of b.rows.entries()) {
    const member = parseShardMemberRef(row.imagePath!);
    assert.ok(member !== undefined, row.imagePath);
    assert.ok((await readShardMember(member!)).equals(readFileSync(a.rows[i]!.imagePath!)), `image bytes of ${row.id}`);
  }
  const [pa, pb] = [await loadImage(a.rows[3]!.imagePath!, { size: 32 }), await loadImage(b.rows[3]!.imagePath!, { size: 32 })];
  assert.deepEqual(pb.data, pa.data, 'the same pixels from the shard as from the file');
  const tasks = [{ name: 'describe', weight: 1 }, { name: 'answer', weight: 1 }] as const;
  const [ta, tb] = [await buildTaskData(source, tasks), await buildTaskData(spec, tasks)];
  const strip = (d: typeof ta) => d.train.map((s) => s.examples.map(({ imagePath: _i, ...e }) => e));
  assert.ok(tb.train[1]!.examples.length > 14, 'the answer task found the qa pairs in the samples\' json');
  assert.deepEqual(strip(tb), strip(ta));
});

test('the loader\'s image workers read images from the shards: the same batches as from the files', async (t) => {
  const dir = tempDir(t);
  await writeSyntheticCatalog({ out: join(dir, 'cat'), count: 10, seed: 6, size: 64 });
  const source = resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'cat', 'dataset.json')));
  const packed = await packDataset(source, { out: join(dir, 'packed'), samplesPerShard: 4 });
  const tokenizer = Tokenizer.train((await readDataset(source)).rows.map((r) => r.text!), { vocabSize: 300, imageCodes: 16 });
  const batches = async (rows: readonly DataRow[]): Promise<Batch[]> => {
    const loader = new DataLoader([{ name: 'describe', examples: examplesFromRows(rows, { source: 'describe', target: 'text' }) }], { tokenizer, batchSize: 3, seed: 2, workers: 1, image: { size: 32, augment: true } });
    const out: Batch[] = [];
    try {
      for await (const b of loader.batches({ steps: 4 })) out.push(b);
    } finally {
      await loader.close();
    }
    return out;
  };
  const [a, b] = [await batches((await readDataset(source)).rows), await batches((await readDataset(resolveDatasetSpec(loadDatasetSpecFile(packed.spec)))).rows)];
  assert.deepEqual(b.map((x) => x.ids), a.map((x) => x.ids));
  assert.ok(b.every((x) => x.bad.length === 0 && x.images !== null));
  assert.deepEqual(b.map((x) => x.images!.data), a.map((x) => x.images!.data), 'the same augmented pixels');
});

test('a split rule by hash keeps the same rows held out after packing (ids travel in the json)', async (t) => {
  const dir = tempDir(t);
  await writeSyntheticCatalog({ out: join(dir, 'cat'), count: 20, seed: 1, size: 64 });
  const input = { ...loadDatasetSpecFile(join(dir, 'cat', 'dataset.json')), split: 'train:0.7,test:0.3', splitSeed: 5 };
  delete input.splitCol;
  const source = resolveDatasetSpec(input);
  const packed = await packDataset(source, { out: join(dir, 'packed'), samplesPerShard: 6 });
  const spec = resolveDatasetSpec(loadDatasetSpecFile(packed.spec));
  assert.deepEqual(spec.split, source.split);
  assert.equal(spec.splitSeed, 5);
  assert.deepEqual(summary((await readDataset(spec)).rows), summary((await readDataset(source)).rows));
});

test('brace patterns expand like braceexpand (padding, lists, nesting); bad ones are errors naming the pattern', () => {
  assert.deepEqual(braceExpand('plain.tar'), ['plain.tar']);
  assert.deepEqual(braceExpand('{a,b}/{0..1}.tar'), ['a/0.tar', 'a/1.tar', 'b/0.tar', 'b/1.tar']);
  assert.deepEqual(braceExpand('x/{train-{0..1},val}.tar'), ['x/train-0.tar', 'x/train-1.tar', 'x/val.tar']);
  assert.deepEqual(braceExpand('d/{8..11}.tar'), ['d/8.tar', 'd/9.tar', 'd/10.tar', 'd/11.tar']);
  assert.deepEqual(braceExpand('data/{000000..000002}.tar'), ['data/000000.tar', 'data/000001.tar', 'data/000002.tar']);
  assert.throws(() => braceExpand('d/{5..1}.tar'), /'d\/\{5\.\.1\}\.tar': range \{5\.\.1\} runs backwards: write \{1\.\.5\}/);
  assert.throws(() => braceExpand('d/{0..9.tar'), /'\{' at 3 is never closed/);
  assert.throws(() => braceExpand('d/0..9}.tar'), /'\}' at 7 has no '\{'/);
  assert.throws(() => braceExpand('d/{a..z}.tar'), /\{a\.\.z\} is not a range of integers like \{000000\.\.000127\}/);
  assert.throws(() => braceExpand('d/{abc}.tar'), /\{abc\} is neither a range \{first\.\.last\} nor a list \{a,b\}/);
  assert.throws(() => braceExpand('d/{0..9999999}.tar'), /names 10000000 shards, more than 1000000/);
  assert.equal(shardPattern(1), '000000.tar');
  assert.deepEqual(braceExpand(shardPattern(12)).at(-1), '000011.tar');
});

test('the shards key: paths relative to the spec file, lists, and what it cannot be combined with', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'dataset.json');
  writeFileSync(file, JSON.stringify({ shards: 'a/{00..01}.tar,b/{x,y}.tar', labelCol: 'cls' }));
  const spec = resolveDatasetSpec(loadDatasetSpecFile(file));
  assert.deepEqual(spec.shards, ['a/00.tar', 'a/01.tar', 'b/x.tar', 'b/y.tar'].map((p) => join(dir, p)));
  assert.equal(spec.labelCol, 'cls');
  writeFileSync(file, JSON.stringify({ shards: ['s/{0..1}.tar', 's/2.tar'] }));
  assert.equal(resolveDatasetSpec(loadDatasetSpecFile(file)).shards!.length, 3);
  const bad = (input: object, re: RegExp) => assert.throws(() => resolveDatasetSpec(input, dir), (e: Error) => e instanceof DatasetSpecError && re.test(e.message) && !e.message.includes('\n'));
  bad({ shards: 's/{0..1}.tar', manifest: 'm.csv' }, /give exactly one of --manifest FILE or --shards PATTERN, not both/);
  bad({ shards: 's/{0..1}.tar', delimiter: ';' }, /'delimiter' does not apply to shards: each sample holds its image and fields/);
  bad({ shards: 's/{0..1}.tar,s/1.tar' }, /shards: .*s\/1\.tar is named twice/);
  bad({ shards: 's/{3..1}.tar' }, /^shards 's\/\{3\.\.1\}\.tar': range \{3\.\.1\} runs backwards/);
  bad({ shards: ' , ' }, /shards: no shard named/);
  bad({ shards: 's/{0..1}.tar.gz' }, /shards: .*s\/0\.tar\.gz is not a \.tar file; shards are uncompressed tar files \(a \.tar\.gz cannot be read in place/);
});

test('rank r of W reads shards r, r+W, … of a seeded per-epoch shuffle: disjoint, covering, deterministic', () => {
  const shards = Array.from({ length: 13 }, (_v, i) => `s${i}.tar`);
  for (const worldSize of [1, 2, 3, 4]) {
    for (const epoch of [0, 1, 2]) {
      const parts = Array.from({ length: worldSize }, (_v, rank) => shardsForRank(shards, { rank, worldSize, epoch, seed: 7 }));
      const all = parts.flat();
      assert.equal(new Set(all).size, all.length, `disjoint (W=${worldSize}, epoch ${epoch})`);
      assert.deepEqual([...all].sort(), [...shards].sort(), 'together every shard');
      assert.ok(Math.max(...parts.map((p) => p.length)) - Math.min(...parts.map((p) => p.length)) <= 1, 'as even as can be');
      assert.deepEqual(shardsForRank(shards, { rank: 0, worldSize, epoch, seed: 7 }), parts[0], 'the same arguments, the same list');
    }
  }
  const order = (epoch: number, seed = 7) => shardsForRank(shards, { rank: 0, worldSize: 1, epoch, seed });
  assert.notDeepEqual(order(0), order(1), 'each epoch has its own order');
  assert.notDeepEqual(order(0), order(0, 8), 'and each seed');
  assert.throws(() => shardsForRank(shards.slice(0, 2), { rank: 0, worldSize: 3, epoch: 0, seed: 0 }), /2 shards cannot feed 3 ranks/);
  assert.throws(() => shardsForRank(shards, { rank: 3, worldSize: 3, epoch: 0, seed: 0 }), /rank must be an integer in \[0, 3\)/);
});

test('streamed per rank, the ranks\' rows are the dataset\'s, and a resumed stream continues where it stopped', async (t) => {
  const dir = tempDir(t);
  await writeSyntheticCatalog({ out: join(dir, 'cat'), count: 17, seed: 3, size: 64 });
  const packed = await packDataset(resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'cat', 'dataset.json'))), { out: join(dir, 'packed'), samplesPerShard: 3 });
  const spec = resolveDatasetSpec(loadDatasetSpecFile(packed.spec));
  const ids = async (o: { rank: number; worldSize: number; epoch: number; skip?: number }) => {
    const out: string[] = [];
    for await (const r of streamRankRows(spec, { ...o, seed: 1 })) out.push(r.id);
    return out;
  };
  const ranks = [await ids({ rank: 0, worldSize: 2, epoch: 4 }), await ids({ rank: 1, worldSize: 2, epoch: 4 })];
  assert.deepEqual(ranks.flat().sort(), (await readDataset(spec)).rows.map((r) => r.id).sort());
  assert.deepEqual(await ids({ rank: 1, worldSize: 2, epoch: 4, skip: 4 }), ranks[1]!.slice(4));
});

test('WebDataset keys: the path up to the first dot of the basename', () => {
  assert.deepEqual(memberKey('a/b/p01.seg.png'), { key: 'a/b/p01', ext: 'seg.png' });
  assert.deepEqual(memberKey('x.JPG'), { key: 'x', ext: 'jpg' });
  assert.equal(memberKey('dir.v2/README'), undefined);
  assert.equal(memberKey('.hidden'), undefined);
});

test('bad samples are reported with shard and key and skipped; a truncated shard keeps the samples before the cut', async (t) => {
  const dir = tempDir(t);
  const red = await png([200, 0, 0]), blue = await png([0, 0, 200]);
  const long = `${'deep/'.repeat(30)}p9`;  // a 150-character name: tar-stream writes a pax header before it
  const shard = join(dir, '000000.tar');
  await writeTar(shard, [
    ['a.png', red], ['a.txt', 'a red square'], ['a.json', '{"label": "red"}'],
    ['b.jpg', 'this is not a JPEG'], ['b.txt', 'not a picture'],
    ['c.txt', 'no image at all'], ['c.json', '{"label": "none"}'],
    ['d.png', blue], ['d.json', '{"label": '],
    [`${long}.png`, blue], [`${long}.txt`, 'a blue square'], [`${long}.cls`, 'blue'],
    ['e.png', red.subarray(0, 40)], ['e.txt', 'a red square, cut off'],
  ]);
  const spec = resolveDatasetSpec({ shards: [shard, join(dir, 'missing.tar')] }, dir);
  const bad = new BadRowLog();
  const data = await readDataset(spec, { bad });
  assert.deepEqual(data.rows.map((r) => [r.id, r.text]), [['a', 'a red square'], [long, 'a blue square'], ['e', 'a red square, cut off']]);
  assert.equal(data.totalRows, 6);
  const lines = bad.summary().flatMap((s) => s.examples.map(formatBadRow)).sort();
  assert.equal(lines.length, 4);
  assert.match(lines.find((l) => l.includes("sample 'b'"))!, new RegExp(`^${shard} sample 'b': not an image, field 'jpg', file ${shard}#b\\.jpg@\\d+\\+18, expected jpg bytes, got bytes 7468`));
  assert.match(lines.find((l) => l.includes("sample 'c'"))!, /sample 'c': missing value, field 'jpg\/jpeg\/png.*', expected an image member c\.jpg, got no image member/);
  assert.match(lines.find((l) => l.includes("sample 'd'"))!, /sample 'd': invalid JSON, field 'json', expected a JSON object/);
  assert.match(lines.find((l) => l.includes('missing.tar'))!, /missing\.tar: missing file/);
  const pax = parseShardMemberRef(data.rows[1]!.imagePath!)!;
  assert.ok((await readShardMember(pax)).equals(blue), 'the offset of a member behind a pax header');
  // A cut-off image inside a whole shard is found when it is decoded, as a cut-off file is.
  await assert.rejects(loadImage(data.rows[2]!.imagePath!, { size: 8 }), (e: unknown) => e instanceof ImageDecodeError && e.reason === 'truncated image' && e.file === data.rows[2]!.imagePath);

  // Cut the shard inside the long-named sample's image: a and the samples before it are kept.
  const cut = join(dir, 'cut.tar');
  writeFileSync(cut, readFileSync(shard));
  truncateSync(cut, pax.offset + 20);
  const cutBad = new BadRowLog();
  const cutRows = await readDataset(resolveDatasetSpec({ shards: cut }, dir), { bad: cutBad });
  assert.deepEqual(cutRows.rows.map((r) => r.id), ['a']);
  const truncated = cutBad.summary().find((s) => s.reason === 'truncated shard')!;
  assert.equal(truncated.count, 1);
  assert.match(formatBadRow(truncated.examples[0]!), new RegExp(`^${cut} sample '${long}': truncated shard, expected a complete tar archive, got .*; the samples before '${long}' were read`));

  // A damaged header mid-shard (e.png's): the samples before the damage are kept, the rest reported with it.
  const damaged = join(dir, 'damaged.tar');
  const bytes = readFileSync(shard);
  bytes.fill(0x41, parseShardMemberRef(data.rows[2]!.imagePath!)!.offset - 512, parseShardMemberRef(data.rows[2]!.imagePath!)!.offset - 400);
  writeFileSync(damaged, bytes);
  const damagedBad = new BadRowLog();
  assert.deepEqual((await readDataset(resolveDatasetSpec({ shards: damaged }, dir), { bad: damagedBad })).rows.map((r) => r.id), ['a']);
  assert.match(damagedBad.summary().flatMap((x) => x.examples.map(formatBadRow)).join('\n'), new RegExp(`${damaged} sample '${long}': unreadable file, expected a complete tar archive, got Invalid tar header`));
});

test('a spec whose shards are all missing is an error, not an empty dataset; a compressed shard is named as one', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'gz.tar'), gzipSync(Buffer.alloc(2048)));
  writeFileSync(join(dir, 'empty.tar'), Buffer.alloc(1024));
  const bad = new BadRowLog();
  const some = await readDataset(resolveDatasetSpec({ shards: 'gz.tar,empty.tar' }, dir), { bad });
  assert.equal(some.rows.length, 0);
  assert.match(formatBadRow(bad.summary()[0]!.examples[0]!), /gz\.tar: unreadable file, expected an uncompressed tar file \(images are read in place\), got gzip\/zstd\/bzip2\/xz-compressed bytes/);
  const spec = resolveDatasetSpec({ shards: 'none/{0..2}.tar' }, dir);
  await assert.rejects(readDataset(spec), (e: Error) => e instanceof DatasetSpecError && /shards: none of the 3 shards can be read, e\.g\. .*none\/0\.tar: does not exist/.test(e.message));
});

const python = spawnSync('python3', ['-c', 'import tarfile'], { encoding: 'utf8' });

test('shards written by Python\'s tarfile (as webdataset\'s TarWriter writes them: PAX, streamed) read, long and non-ASCII keys included', { skip: python.status === 0 ? false : 'python3 not found' }, async (t) => {
  const dir = tempDir(t);
  const image = join(dir, 'red.png');
  writeFileSync(image, await png([200, 0, 0]));
  const script = `
import io, json, sys, tarfile
img = open(sys.argv[1], 'rb').read()
with tarfile.open(sys.argv[2], 'w|') as tf:
    for key, text in [('sample_0001', 'a red square'), ('dir/' + 'x' * 120 + '_\u00e9', 'long unicode key')]:
        for ext, data in [('png', img), ('txt', text.encode()), ('json', json.dumps({'label': 'red'}).encode())]:
            ti = tarfile.TarInfo(key + '.' + ext); ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
`;
  const shard = join(dir, 'py-000000.tar');
  const r = spawnSync('python3', ['-c', script, image, shard], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const data = await readDataset(resolveDatasetSpec({ shards: shard, labelCol: 'label' }, dir));
  assert.equal(data.bad.total, 0, JSON.stringify(data.bad.summary()));
  assert.deepEqual(data.rows.map((row) => [row.id, row.text, row.label]), [['sample_0001', 'a red square', 'red'], [`dir/${'x'.repeat(120)}_é`, 'long unicode key', 'red']]);
  for (const row of data.rows) assert.ok((await readShardMember(parseShardMemberRef(row.imagePath!)!)).equals(readFileSync(image)));
});
