// Design's targets in the loader: VQ codes become <bos> + image-code ids with no <eos> (the layout
// generate(…, { kind: 'image' }) writes), rows are flagged as image targets, a batch can mix them with
// text targets, and a target that would not fit or a code outside the vocabulary is an error naming
// the example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataLoader, type Batch, type Example, type TaskSource } from '../../src/data/loader.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { batchToTensors, IGNORE_INDEX } from '../../src/train/batchTensors.js';
import * as torch from '../../src/torch/index.js';

const tokenizer = Tokenizer.train(['a red dress', 'a blue shirt with short sleeves', 'what colour is it?'], { vocabSize: 300, imageCodes: 16 });

async function firstBatch(tasks: TaskSource[], opts: { batchSize: number; maxTargetLength?: number }): Promise<Batch> {
  const loader = new DataLoader(tasks, { tokenizer, seed: 0, workers: 0, ...opts });
  try {
    for await (const b of loader.batches({ steps: 1 })) return b;
    throw new Error('no batch');
  } finally {
    await loader.close();
  }
}

const design = (id: string, codes: number[]): Example => ({ id, source: ' what is the complete image? caption: red dress', targetCodes: Int32Array.from(codes) });

test('image-code targets: <bos> then imageCodeStart + code, no <eos>; flagged per row beside text targets', async () => {
  const tasks: TaskSource[] = [
    { name: 'design', examples: [design('d1', [0, 5, 15, 3])] },
    { name: 'describe', examples: [{ id: 't1', source: 'describe', target: 'a red dress' }] },
  ];
  // Two slots drawn by weight from two one-example tasks: ask for enough that both kinds appear.
  const b = await firstBatch(tasks, { batchSize: 8 });
  const L = b.targetIds.shape[1]!;
  const rows = Array.from({ length: b.ids.length }, (_v, i) => Array.from(b.targetIds.data.subarray(i * L, (i + 1) * L)));
  const masks = Array.from({ length: b.ids.length }, (_v, i) => Array.from(b.targetMask.data.subarray(i * L, (i + 1) * L)));
  const d = b.ids.indexOf('d1'), t = b.ids.indexOf('t1');
  assert.ok(d >= 0 && t >= 0, `both kinds in the batch: ${b.ids}`);
  const start = tokenizer.imageCodeStart;
  assert.deepEqual(rows[d]!.slice(0, 5), [tokenizer.bosId, start, start + 5, start + 15, start + 3]);
  assert.deepEqual(masks[d]!.slice(0, 5), [1, 1, 1, 1, 1]);
  assert.ok(masks[d]!.slice(5).every((m) => m === 0), 'nothing after the codes: no <eos>');
  const text = [tokenizer.bosId, ...tokenizer.encode('a red dress'), tokenizer.eosId];
  assert.deepEqual(rows[t]!.slice(0, text.length), text);
  assert.deepEqual(Array.from(b.targetIsImage!.data), b.ids.map((id) => (id === 'd1' ? 1 : 0)));

  // The training tensors carry the per-row kind, and the image row's labels are its codes only.
  torch.scope(() => {
    const tt = batchToTensors(b);
    assert.deepEqual(tt.targetIsImage!.toArray(), b.ids.map((id) => id === 'd1'));
    const labels = (tt.labels.toArray() as number[][])[d]!;
    assert.deepEqual(labels.filter((l) => l !== IGNORE_INDEX), [start, start + 5, start + 15, start + 3]);
    assert.equal(tt.imageMask, undefined, 'no images in this batch: nothing to mask');
  });
});

test('a text-only batch has no image-target flags in its tensors', async () => {
  const b = await firstBatch([{ name: 'describe', examples: [{ id: 't1', source: 'describe', target: 'a red dress' }] }], { batchSize: 2 });
  assert.deepEqual(Array.from(b.targetIsImage!.data), [0, 0]);
  torch.scope(() => assert.equal(batchToTensors(b).targetIsImage, undefined));
});

test('image-code targets are never truncated: too long, or a code outside the tokenizer, is an error naming the example', async () => {
  await assert.rejects(firstBatch([{ name: 'design', examples: [design('long', [1, 2, 3, 4, 5])] }], { batchSize: 1, maxTargetLength: 5 }),
    /example long: its target image is 5 codes, more than the 4 target positions/);
  await assert.rejects(firstBatch([{ name: 'design', examples: [design('bad', [1, 16])] }], { batchSize: 1 }),
    /example bad: image code 16 is outside the tokenizer's 16 image codes/);
});
