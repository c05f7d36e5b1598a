import { test } from 'node:test';
import assert from 'node:assert/strict';
import { denoisingPair, maskSpans, MASK_TOKEN } from '../../src/tasks/denoising.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { DataLoader } from '../../src/data/loader.js';

const text = 'a relaxed navy cotton shirt with long sleeves and a small pocket on the chest for everyday wear in the city';

test('maskSpans hides about 30% of the words in spans, one <mask> per span, seeded', () => {
  const words = text.split(' ');
  let hiddenTotal = 0;
  for (let seed = 0; seed < 50; seed++) {
    const masked = maskSpans(text, seed);
    assert.equal(masked, maskSpans(text, seed), 'same seed, same masking');
    const parts = masked.split(' ');
    assert.ok(!masked.includes(`${MASK_TOKEN} ${MASK_TOKEN}`), 'adjacent hidden words share one mask');
    const kept = parts.filter((p) => p !== MASK_TOKEN);
    // The kept words are the text's words in order (a subsequence).
    let at = 0;
    for (const w of kept) {
      at = words.indexOf(w, at);
      assert.ok(at >= 0, `'${w}' out of order in '${masked}'`);
      at++;
    }
    assert.ok(parts.includes(MASK_TOKEN));
    hiddenTotal += words.length - kept.length;
  }
  const share = hiddenTotal / (50 * words.length);
  assert.ok(share > 0.25 && share < 0.35, `hidden share ${share}`);
  assert.notEqual(maskSpans(text, 1), maskSpans(text, 2));
  assert.equal(maskSpans('one', 0), MASK_TOKEN);
});

test('denoisingPair: the instruction around the masked text; the loader reads <mask> as the special token', async () => {
  const pair = denoisingPair(text, 7);
  assert.match(pair.source, /^ what is the complete text of ".*<mask>.*"\?$/);
  assert.equal(pair.target, text);
  const tokenizer = Tokenizer.train([text, pair.source], { vocabSize: 400, imageCodes: 4 });
  const mask = tokenizer.tokenToId(MASK_TOKEN);
  assert.ok(mask !== undefined);
  const loader = new DataLoader([{ name: 'denoise', examples: [{ id: 'a', ...pair, specialTokensInSource: true }, { id: 'b', source: 'user says <mask>', target: 'x' }] }], { tokenizer, batchSize: 2, seed: 0, workers: 0 });
  const [batch] = await (async () => { const out = []; for await (const b of loader.batches({ steps: 1 })) out.push(b); return out; })();
  await loader.close();
  const rowOf = (id: string) => {
    const i = batch!.ids.indexOf(id), L = batch!.sourceIds.shape[1]!;
    return [...batch!.sourceIds.data.subarray(i * L, (i + 1) * L)];
  };
  assert.ok(rowOf('a').includes(mask!), 'the pipeline\'s <mask> is the special token');
  assert.ok(!rowOf('b').includes(mask!), 'user text "<mask>" stays text');
});
