// loadPipeline on tiny runs trained in `before` (seconds): the tasks a run serves and the clear
// error for one it does not, batched calls with per-input failures, named outputs, the stream
// matching the batch call, designs as PNGs (seeded), and the pipeline owning (and freeing) its tensors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as torch from '../../src/torch/index.js';
import { loadPipeline, PipelineError, type TextResult } from '../../src/pipelines/index.js';
import { InputError } from '../../src/torch/inputError.js';
import { m6, writeTinyConfig } from '../data/fixtures.js';

let dir = '';
let textRun = '';
let designRun = '';
let image = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-pipeline-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '30', '--seed', '5', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'), { imageCodes: 64 });
  const common = ['--data', join(dir, 'catalog', 'dataset.json'), '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300', '--workers', '0', '--steps', '2'];
  textRun = join(dir, 'text');
  designRun = join(dir, 'design');
  const [a, b] = await Promise.all([
    m6(['train', ...common, '--tasks', 'describe,answer,embed', '--out', textRun]),
    m6(['train', ...common, '--tasks', 'describe,design', '--vq-steps', '2', '--out', designRun]),
  ]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  image = join(dir, 'catalog', 'images', 'p000001.png');
});

after(() => rmSync(dir, { recursive: true, force: true }));

const texts = (rs: TextResult[]) => rs.map((r) => (r.ok ? r.text : `error: ${r.error}`));

test('a run serves the tasks it was trained on; another task is a clear error naming them', async () => {
  const live = torch.liveTensors();
  const p = await loadPipeline(textRun);
  try {
    assert.deepEqual([...p.tasks], ['describe', 'answer', 'embed']);
    assert.deepEqual(p.trainedOn, ['describe', 'answer', 'embed']);
    assert.equal(p.step, 2);
    assert.ok(p.supports('embed') && !p.supports('design'));
    await assert.rejects(p.design(['red dress']), (err: Error) => err instanceof PipelineError && err instanceof InputError
      && /the run has no VQ image tokenizer \(vq\.safetensors\)/.test(err.message));
    assert.match(p.whyNot('design')!, /train it with design/);
  } finally {
    p.close();
  }
  p.close();   // idempotent
  assert.equal(torch.liveTensors(), live, 'close() frees every tensor the pipeline held');
  await assert.rejects(p.describe([image]), /the pipeline of .* is closed/);
  await assert.rejects(loadPipeline(join(dir, 'nope')), (err: Error) => err instanceof InputError && /no such folder/.test(err.message));
});

test('describe, answer, embed: batched, one result per input in order, a bad input fails alone', async () => {
  using p = await loadPipeline(textRun);
  const described = await p.describe([image, join(dir, 'missing.png'), image], { maxNewTokens: 6 });
  assert.equal(described.length, 3);
  assert.ok(described[0]!.ok && described[2]!.ok);
  assert.ok(!described[1]!.ok && /missing file/.test(described[1]!.error));
  const first = described[0]!;
  assert.ok(first.ok);
  assert.equal(first.text, (described[2] as typeof first).text, 'greedy: the same image, the same text');
  assert.ok(first.tokenIds.length >= 1 && first.tokenIds.length <= 6);
  assert.equal(first.text, p.tokenizer.decode(first.tokenIds, { skipSpecialTokens: true }).trim());
  assert.ok(first.logProb <= 0 && Number.isFinite(first.logProb));
  assert.ok(first.finishReason === 'stop' || first.finishReason === 'length');

  const answered = await p.answer(['what colour is it?', { question: 'is it red?', image: join(dir, 'nope.jpg') }, { question: 'what is it?' }], { image, maxNewTokens: 4 });
  assert.equal(answered.length, 3);
  assert.ok(answered[0]!.ok && answered[2]!.ok);
  assert.ok(!answered[1]!.ok, 'the question with its own missing photo fails alone');
  // A question without its own image takes o.image: the same as asking about it directly.
  assert.deepEqual(texts([answered[2]!]), texts(await p.answer([{ question: 'what is it?', image }], { maxNewTokens: 4 })));

  const v = await p.embed({ texts: ['red dress', '', 'blue shirt'] });
  assert.ok(v[0]!.ok && !v[1]!.ok && v[2]!.ok);
  const norm = (x: Float32Array) => Math.sqrt(x.reduce((s, y) => s + y * y, 0));
  assert.ok(v[0]!.ok && Math.abs(norm(v[0]!.vector) - 1) < 1e-4 && v[0]!.vector.length === 32);
  const iv = await p.embed({ images: [image, join(dir, 'missing.png')] });
  assert.ok(iv[0]!.ok && Math.abs(norm(iv[0]!.vector) - 1) < 1e-4);
  assert.ok(!iv[1]!.ok && /missing file/.test(iv[1]!.error));
});

test('generateStream yields the text as it is written; its pieces and its result are the batch call\'s text', async () => {
  using p = await loadPipeline(textRun);
  const [batch] = await p.describe([image], { maxNewTokens: 8 });
  const stream = p.generateStream({ task: 'describe', image }, { maxNewTokens: 8 });
  let pieces = '', yielded = 0, timerFired = false;
  const timer = setTimeout(() => { timerFired = true; }, 0);
  let next = await stream.next();
  for (; !next.done; next = await stream.next()) { pieces += next.value.text; yielded++; }
  clearTimeout(timer);
  assert.ok(batch!.ok && next.value.ok);
  assert.equal(next.value.text, batch!.text);
  assert.deepEqual(next.value.tokenIds, batch!.tokenIds);
  assert.equal(pieces.trim(), batch!.text);
  assert.ok(yielded >= 1);
  assert.ok(timerFired || yielded === 1, 'the event loop ran between tokens');
  // An unreadable image: no tokens, and the error as the stream's result (a stream has one input).
  const bad = await p.generateStream({ task: 'describe', image: join(dir, 'missing.png') }).next();
  assert.equal(bad.done, true);
  assert.ok(!bad.value.ok && /missing file/.test((bad.value as { error: string }).error));
});

test('design: n PNGs per prompt of the model\'s size, seeded; a bad prompt fails alone; designEach one per prompt', async () => {
  using p = await loadPipeline(designRun);
  assert.ok(p.supports('design'));
  const out = await p.design(['red dress', '', 'blue shirt'], { n: 2, seed: 7 });
  assert.ok(out[0]!.ok && !out[1]!.ok && out[2]!.ok);
  assert.match((out[1] as { error: string }).error, /empty prompt/);
  for (const r of [out[0]!, out[2]!]) {
    assert.ok(r.ok);
    assert.equal(r.images.length, 2);
    for (const im of r.images) {
      const meta = await sharp(im.png).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['png', 32, 32]);
      assert.equal(im.codes.length, 16);
      assert.equal(im.rgb.length, 32 * 32 * 3);
    }
  }
  const again = await p.design(['red dress'], { n: 2, seed: 7 });
  assert.ok(again[0]!.ok && out[0]!.ok);
  assert.deepEqual(again[0]!.images.map((i) => [...i.codes]), out[0]!.images.map((i) => [...i.codes]), 'same seed, prompt and n: same images');
  await assert.rejects(p.design(['x'], { temperature: 0 }), /temperature must be > 0/);
  const each = await p.designEach(['red dress', 'blue shirt', ''], { seed: 1 });
  assert.deepEqual(each.map((r) => (r.ok ? r.images.length : 0)), [1, 1, 0]);
});
