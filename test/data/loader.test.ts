import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataLoader, MixtureSampler, padBatch, examplesFromRows, type Batch, type Example, type LoaderOptions, type TaskSource } from '../../src/data/loader.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { tempDir, writeSolidImage } from './fixtures.js';

const tokenizer = Tokenizer.train(['a red dress', 'a blue shirt with short sleeves', 'what colour is it?'], { vocabSize: 300, imageCodes: 16 });

function digest(batches: Batch[]): string {
  const h = createHash('sha256');
  for (const b of batches) {
    h.update(b.ids.join('|') + b.tasks.join('|'));
    for (const t of [b.images, b.imageMask, b.sourceIds, b.sourceMask, b.targetIds, b.targetMask]) {
      if (t === null) continue;
      h.update(t.shape.join('x'));
      h.update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
  }
  return h.digest('hex');
}

async function collect(tasks: TaskSource[], opts: Partial<LoaderOptions>, steps: number): Promise<Batch[]> {
  const loader = new DataLoader(tasks, { tokenizer, batchSize: 4, seed: 1, ...opts });
  const out: Batch[] = [];
  try {
    for await (const b of loader.batches({ steps })) out.push(b);
  } finally {
    await loader.close();
  }
  return out;
}

async function imageExamples(dir: string, n: number): Promise<Example[]> {
  const out: Example[] = [];
  for (let i = 0; i < n; i++) {
    const file = join(dir, `${i}.png`);
    await writeSolidImage(file, { width: 20 + i, height: 30, rgb: [i * 20, 100, 200 - i * 10], format: 'png' });
    out.push({ id: `img${i}`, imagePath: file, source: 'describe', target: i % 2 ? 'a red dress' : 'a blue shirt with short sleeves' });
  }
  return out;
}

test('padding and masks: right-padded ids, 1 for tokens, 0 for padding', () => {
  const { ids, mask } = padBatch([[5, 6, 7], [8], []], 0);
  assert.deepEqual(ids.shape, [3, 3]);
  assert.deepEqual(Array.from(ids.data), [5, 6, 7, 8, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(mask.data), [1, 1, 1, 1, 0, 0, 0, 0, 0]);
  assert.ok(ids.data instanceof Int32Array && mask.data instanceof Float32Array);
});

test('a text batch: <eos> after the source, <bos> … <eos> around the target, truncation keeps <eos>', async () => {
  const examples: Example[] = [
    { id: 'a', source: 'what colour is it?', target: 'a red dress' },
    { id: 'b', source: 'what colour is it? what colour is it? what colour is it?', target: 'a blue shirt with short sleeves' },
  ];
  const [batch] = await collect([{ name: 'qa', examples }], { batchSize: 2, maxSourceLength: 6, maxTargetLength: 5 }, 1);
  assert.ok(batch);
  assert.equal(batch.images, null);
  const [B, Ls] = batch.sourceIds.shape as [number, number];
  assert.equal(B, 2);
  assert.ok(Ls <= 6);
  const [, Lt] = batch.targetIds.shape as [number, number];
  assert.ok(Lt <= 5);
  for (let b = 0; b < B; b++) {
    const src = Array.from(batch.sourceIds.data.subarray(b * Ls, (b + 1) * Ls));
    const tgt = Array.from(batch.targetIds.data.subarray(b * Lt, (b + 1) * Lt));
    const srcLen = batch.sourceMask.data.subarray(b * Ls, (b + 1) * Ls).reduce((x, y) => x + y, 0);
    const tgtLen = batch.targetMask.data.subarray(b * Lt, (b + 1) * Lt).reduce((x, y) => x + y, 0);
    assert.equal(src[srcLen - 1], tokenizer.eosId);
    assert.equal(tgt[0], tokenizer.bosId);
    assert.equal(tgt[tgtLen - 1], tokenizer.eosId);
    const id = batch.ids[b];
    const full = examples.find((e) => e.id === id)!;
    if (tokenizer.encode(full.target!).length + 2 <= 5) assert.equal(tokenizer.decode(tgt.slice(1, tgtLen - 1)), full.target);
  }
});

test('deterministic: same seed same batches (with workers or without), other seed other batches', async (t) => {
  const dir = tempDir(t);
  const examples = await imageExamples(dir, 10);
  const tasks = [{ name: 'describe', examples }];
  const image = { size: 16, augment: true } as const;
  const a = digest(await collect(tasks, { image, workers: 0 }, 5));
  const b = digest(await collect(tasks, { image, workers: 2, prefetch: 3 }, 5));
  const c = digest(await collect(tasks, { image, workers: 0, seed: 2 }, 5));
  assert.equal(a, b, 'worker threads must not change the batches');
  assert.notEqual(a, c);
});

test('image batches: [B,3,S,S] floats, image mask, text-only examples get zeros', async (t) => {
  const dir = tempDir(t);
  const withImages = await imageExamples(dir, 3);
  const textOnly: Example[] = [{ id: 't', source: 'what colour is it?', target: 'a red dress' }];
  const batches = await collect([{ name: 'describe', examples: withImages }, { name: 'qa', examples: textOnly }], { image: { size: 8 }, workers: 1, batchSize: 6 }, 3);
  let sawMixed = false;
  for (const b of batches) {
    assert.ok(b.images);
    assert.deepEqual(b.images.shape, [b.ids.length, 3, 8, 8]);
    b.tasks.forEach((task, i) => {
      const plane = b.images!.data.subarray(i * 192, (i + 1) * 192);
      if (task === 'qa') {
        assert.equal(b.imageMask.data[i], 0);
        assert.ok(plane.every((v) => v === 0));
      } else {
        assert.equal(b.imageMask.data[i], 1);
        assert.ok(plane.some((v) => v !== 0));
      }
    });
    if (b.tasks.includes('qa') && b.tasks.includes('describe')) sawMixed = true;
  }
  assert.ok(sawMixed, 'tasks mix within a batch');
});

test('multitask mixture follows the weights; each task cycles through all its examples', () => {
  const sampler = new MixtureSampler([10, 50], [3, 1], 4);
  const counts = [0, 0];
  const seen = [new Set<number>(), new Set<number>()];
  for (let i = 0; i < 8000; i++) {
    const p = sampler.next();
    counts[p.task]!++;
    seen[p.task]!.add(p.example);
  }
  assert.ok(Math.abs(counts[0]! / 8000 - 0.75) < 0.03, `counts ${counts}`);
  assert.equal(seen[0]!.size, 10);
  assert.equal(seen[1]!.size, 50);
  // One pass over a single task visits each example exactly once.
  const single = new MixtureSampler([7], [1], 0);
  const pass = Array.from({ length: 7 }, () => single.next().example).sort();
  assert.deepEqual(pass, [0, 1, 2, 3, 4, 5, 6]);
  assert.throws(() => new MixtureSampler([0, 5], [1, 0], 0), /nothing to sample/);
});

test('groupTasks: every batch has batchSize mixed slots of the other tasks plus one group task\'s batchSize rows; the plan is seeded', () => {
  const a: Example[] = Array.from({ length: 12 }, (_v, i) => ({ id: `a${i}`, source: 'x', target: 'y' }));
  const b: Example[] = Array.from({ length: 30 }, (_v, i) => ({ id: `b${i}`, source: 'x', target: 'y' }));
  const c: Example[] = Array.from({ length: 9 }, (_v, i) => ({ id: `c${i}`, source: 'x', target: 'y' }));
  const g: Example[] = Array.from({ length: 20 }, (_v, i) => ({ id: `g${i}`, source: 'x', target: 'y' }));
  const tasks: TaskSource[] = [{ name: 'a', examples: a, weight: 1 }, { name: 'b', examples: b, weight: 3 }, { name: 'c', examples: c, weight: 1 }, { name: 'g', examples: g, weight: 1 }];
  const groupTasks = new Set(['c', 'g']);
  const loader = new DataLoader(tasks, { tokenizer, batchSize: 5, seed: 3, groupTasks });
  const plans = loader.plan(400);
  let bSlots = 0, mixed = 0, cGroups = 0;
  for (const p of plans) {
    assert.equal(p.picks.length, 10);
    const slotTasks = p.picks.slice(0, 5).map((x) => x.task), group = p.picks.slice(5).map((x) => x.task);
    assert.ok(slotTasks.every((t) => t === 0 || t === 1), `batch ${p.step}: a group task took a slot`);
    assert.equal(new Set(group).size, 1, `batch ${p.step}: its group mixes tasks`);
    assert.ok(group[0] === 2 || group[0] === 3);
    bSlots += slotTasks.filter((t) => t === 1).length;
    if (new Set(slotTasks).size > 1) mixed++;
    if (group[0] === 2) cGroups++;
  }
  assert.ok(Math.abs(bSlots / 2000 - 0.75) < 0.04, `${bSlots} of 2000 slots from b`);
  assert.ok(mixed > 250, `slots mix tasks (${mixed} of 400 batches mixed; 76% expected)`);
  assert.ok(Math.abs(cGroups / 400 - 0.5) < 0.08, `${cGroups} of 400 groups from c`);
  // Each group task's rows are a shuffled pass: the first 20 rows of g (4 groups) are every row once.
  const gRows = plans.flatMap((p) => p.picks.slice(5)).filter((x) => x.task === 3).slice(0, 20).map((x) => x.example).sort((x, y) => x - y);
  assert.deepEqual(gRows, Array.from({ length: 20 }, (_v, i) => i));
  assert.deepEqual(new DataLoader(tasks, { tokenizer, batchSize: 5, seed: 3, groupTasks }).plan(10, 390), plans.slice(390));
  // Only group tasks: the batch is the group.
  const only = new DataLoader([tasks[3]!], { tokenizer, batchSize: 5, seed: 3, groupTasks }).plan(3);
  assert.ok(only.every((p) => p.picks.length === 5 && p.picks.every((x) => x.task === 0)));
  assert.throws(() => new DataLoader([{ name: 'g', examples: [], weight: 1 }], { tokenizer, batchSize: 5, seed: 3, groupTasks }).plan(1), /nothing to sample/);
});

test('resuming at a step gives the same batches as running through', async () => {
  const examples: Example[] = Array.from({ length: 9 }, (_v, i) => ({ id: `e${i}`, source: 'what colour is it?', target: i % 2 ? 'a red dress' : 'a blue shirt' }));
  const loader = new DataLoader([{ name: 'qa', examples }], { tokenizer, batchSize: 4, seed: 8 });
  const all: Batch[] = [];
  for await (const b of loader.batches({ steps: 6 })) all.push(b);
  const tail: Batch[] = [];
  for await (const b of loader.batches({ steps: 2, startStep: 4 })) tail.push(b);
  assert.equal(digest(all.slice(4)), digest(tail));
  assert.equal(loader.stepsPerEpoch(), 3);
  await loader.close();
});

test('an example whose image is bad is dropped from its batch and reported', async (t) => {
  const dir = tempDir(t);
  const examples = await imageExamples(dir, 3);
  writeFileSync(join(dir, 'broken.jpg'), 'not a jpeg');
  examples.push({ id: 'broken', imagePath: join(dir, 'broken.jpg'), target: 'x' });
  const [batch] = await collect([{ name: 'describe', examples }], { image: { size: 8 }, workers: 1, batchSize: 4 }, 1);
  assert.ok(batch);
  assert.equal(batch.ids.length, 3);
  assert.ok(!batch.ids.includes('broken'));
  assert.equal(batch.bad.length, 1);
  assert.equal(batch.bad[0]!.reason, 'not an image');
  assert.equal(batch.images!.shape[0], 3);
});

test('examplesFromRows maps dataset rows to examples', () => {
  const ex = examplesFromRows([{ id: 'r1', source: 'm.csv', row: 2, imagePath: '/x.jpg', text: 'Red dress', label: 'dress' }], { source: 'what is this?', target: 'label' });
  assert.deepEqual(ex, [{ id: 'r1', imagePath: '/x.jpg', source: 'what is this?', target: 'dress' }]);
});

test('the worker pool returns the same pixels as the main thread, many jobs at once', async (t) => {
  const { ImageWorkerPool, MainThreadImagePreparer } = await import('../../src/data/imagePool.js');
  const dir = tempDir(t);
  const examples = await imageExamples(dir, 6);
  const pool = new ImageWorkerPool(2);
  const main = new MainThreadImagePreparer();
  try {
    const jobs = examples.flatMap((e, i) => [1, 2, 3].map((seed) => ({ file: e.imagePath!, options: { size: 12, augment: { seed: seed * 100 + i } } })));
    const fromPool = await Promise.all(jobs.map((j) => pool.load(j.file, j.options)));
    const fromMain = await Promise.all(jobs.map((j) => main.load(j.file, j.options)));
    fromPool.forEach((img, i) => assert.deepEqual(img.data, fromMain[i]!.data));
    await assert.rejects(pool.load(join(dir, 'missing.png'), { size: 12 }), /missing file/);
    // Bytes (a server's uploads): the same pixels as on the main thread; not an image names its label.
    const bytes = examples.map((e) => readFileSync(e.imagePath!));
    const viaPool = await Promise.all(bytes.map((b, i) => pool.loadBytes(b, { size: 12 }, `upload ${i}`)));
    const viaMain = await Promise.all(bytes.map((b) => main.loadBytes(b, { size: 12 })));
    viaPool.forEach((img, i) => assert.deepEqual(img.data, viaMain[i]!.data));
    await assert.rejects(pool.loadBytes(Buffer.from('not an image at all'), { size: 12 }, 'upload x'), (err: Error) => err.name === 'ImageDecodeError' && /upload x/.test(err.message));
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.load(examples[0]!.imagePath!, { size: 12 }), /closed/);
});

test('shard: the ranks\' shares of every batch are the one-process batch (slots and group split apart), each image augmented as in one process', async (t) => {
  const dir = tempDir(t);
  const images = await imageExamples(dir, 6);
  const tasks: TaskSource[] = [{ name: 'describe', examples: images }, { name: 'embed', examples: images.map((e) => ({ ...e, id: `g${e.id}` })) }];
  const opts: Partial<LoaderOptions> = { batchSize: 5, groupTasks: new Set(['embed']), workers: 0, image: { size: 8, augment: true } };
  const whole = await collect(tasks, opts, 3);
  const parts = await Promise.all([0, 1, 2].map((rank) => collect(tasks, { ...opts, shard: { rank, worldSize: 3 } }, 3)));
  const plane = 3 * 8 * 8;
  whole.forEach((b, k) => {
    // 5 slots split 1/2/2 (floor(5r/3)), the group of 5 likewise; each rank holds its slots, then its group rows.
    const shares = parts.map((p) => p[k]!);
    assert.deepEqual(shares.map((p) => p.ids.length), [2, 4, 4]);
    const rows = (p: Batch, from: number, to: number) => Array.from({ length: to - from }, (_, j) => ({ id: p.ids[from + j], pixels: Array.from(p.images!.data.subarray((from + j) * plane, (from + j + 1) * plane)) }));
    // All ranks' slot rows, then all their group rows: the one-process batch, row for row (ids and augmented pixels).
    const slots = shares.flatMap((p) => rows(p, 0, p.ids.length / 2));
    const group = shares.flatMap((p) => rows(p, p.ids.length / 2, p.ids.length));
    assert.deepEqual([...slots, ...group], rows(b, 0, b.ids.length), `batch ${k}`);
  });
});

test('promptDropout: that share of rows with an unconditionalSource read it instead, the same on a resume and over ranks', async () => {
  const prompted = Array.from({ length: 10 }, (_v, i): Example => ({ id: `d${i}`, source: 'a red dress', unconditionalSource: 'what colour is it?', target: 'a blue shirt' }));
  const plain = Array.from({ length: 10 }, (_v, i): Example => ({ id: `q${i}`, source: 'a red dress', target: 'a blue shirt' }));
  const tasks: TaskSource[] = [{ name: 'design', examples: prompted }, { name: 'answer', examples: plain }];
  const ids = (text: string) => [...tokenizer.encode(text), tokenizer.eosId];
  const sourcesOf = (b: Batch) => b.ids.map((_id, r) => {
    const row = Array.from(b.sourceIds.data.subarray(r * b.sourceIds.shape[1]!, (r + 1) * b.sourceIds.shape[1]!));
    return row.slice(0, row.reduce((n, _t, j) => (b.sourceMask.data[r * b.sourceIds.shape[1]! + j] ? j + 1 : n), 0));
  });
  const dropped = (batches: Batch[]) => batches.flatMap((b) => sourcesOf(b).map((s, r) => ({ task: b.tasks[r], dropped: s.join() === ids('what colour is it?').join() })));
  const batches = await collect(tasks, { batchSize: 8, promptDropout: 0.25, workers: 0 }, 100);
  const rows = dropped(batches);
  const design = rows.filter((r) => r.task === 'design');
  const share = design.filter((r) => r.dropped).length / design.length;
  assert.ok(share > 0.17 && share < 0.33, `design rows reading the bare instruction: ${share}`);
  assert.ok(rows.filter((r) => r.task === 'answer').every((r) => !r.dropped), 'rows without an unconditionalSource keep their source');
  // Off by default; the same batches on a resume and over two ranks.
  assert.ok(dropped(await collect(tasks, { batchSize: 8, workers: 0 }, 20)).every((r) => !r.dropped));
  const loader = new DataLoader(tasks, { tokenizer, batchSize: 8, seed: 1, promptDropout: 0.25, workers: 0 });
  const tail: Batch[] = [];
  for await (const b of loader.batches({ steps: 3, startStep: 40 })) tail.push(b);
  await loader.close();
  assert.equal(digest(tail), digest(batches.slice(40, 43)));
  const ranks = await Promise.all([0, 1].map((rank) => collect(tasks, { batchSize: 8, promptDropout: 0.25, workers: 0, shard: { rank, worldSize: 2 } }, 5)));
  ranks[0]!.forEach((b, k) => assert.deepEqual([...sourcesOf(b), ...sourcesOf(ranks[1]![k]!)], sourcesOf(batches[k]!), `batch ${k}`));
});
