// The batch → tensor adapter: decoder inputs, next-token labels with -100 at padding, bool masks,
// int64 ids, and images kept as given (NCHW).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import type { Batch } from '../../src/data/loader.js';
import { batchToTensors, IGNORE_INDEX, nextTokenLabels } from '../../src/train/batchTensors.js';
import { assertClose } from '../helpers.js';

function batch(withImages: boolean): Batch {
  // <bos>=1 <eos>=2 <pad>=0: row 0 "10 11", row 1 "12"
  return {
    step: 0, ids: ['a', 'b'], tasks: ['describe', 'answer'],
    images: withImages ? { data: Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i / 10), shape: [2, 3, 2, 2] } : null,
    imageMask: { data: Uint8Array.from([1, 1]), shape: [2] },
    sourceIds: { data: Int32Array.from([5, 6, 2, 7, 2, 0]), shape: [2, 3] },
    sourceMask: { data: Float32Array.from([1, 1, 1, 1, 1, 0]), shape: [2, 3] },
    targetIds: { data: Int32Array.from([1, 10, 11, 2, 1, 12, 2, 0]), shape: [2, 4] },
    targetMask: { data: Float32Array.from([1, 1, 1, 1, 1, 1, 1, 0]), shape: [2, 4] },
    bad: [],
  };
}

test('labels are the targets shifted left, -100 where the next token is padding', () => {
  const b = batch(false);
  const { labels, counts } = nextTokenLabels(b.targetIds, b.targetMask);
  assert.deepEqual(labels.shape, [2, 3]);
  assert.deepEqual([...labels.data], [10, 11, 2, 12, 2, IGNORE_INDEX]);
  assert.deepEqual(counts, [3, 2]);
});

test('batchToTensors: int64 ids, bool masks, decoder input without the last token', () => {
  torch.scope(() => {
    const t = batchToTensors(batch(false));
    assert.equal(t.images, undefined);
    assert.equal(t.source.dtype, 'int64');
    assert.equal(t.sourceMask.dtype, 'bool');
    assert.deepEqual(t.source.toArray(), [[5, 6, 2], [7, 2, 0]]);
    assert.deepEqual(t.sourceMask.toArray(), [[true, true, true], [true, true, false]]);
    assert.deepEqual(t.target.toArray(), [[1, 10, 11], [1, 12, 2]]);
    assert.deepEqual(t.targetMask.toArray(), [[true, true, true], [true, true, true]]);
    assert.deepEqual(t.labels.toArray(), [[10, 11, 2], [12, 2, -100]]);
    assert.equal(t.labels.dtype, 'int64');
    assert.deepEqual(t.labelCounts, [3, 2]);
  });
});

test('images keep their values and NCHW layout', () => {
  torch.scope(() => {
    const b = batch(true);
    const t = batchToTensors(b);
    assert.deepEqual(t.images!.shape, [2, 3, 2, 2]);
    assert.equal(t.images!.isContiguous(), true);
    assertClose(Array.from(t.images!.toTypedArray(), Number), Array.from(b.images!.data), 1e-7);
  });
});
