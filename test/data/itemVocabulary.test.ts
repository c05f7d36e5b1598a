import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../src/torch/inputError.js';
import { ItemVocabulary } from '../../src/data/itemVocabulary.js';

test('ids get dense indices in first-appearance order: catalog first, then interaction items', () => {
  const catalog = ['p3', 'p1', 'p2'];
  const interactions = ['p1', 'x9', 'p3', 'x7', 'x9'];
  const vocab = ItemVocabulary.from([...catalog, ...interactions]);
  assert.deepEqual(vocab.ids, ['p3', 'p1', 'p2', 'x9', 'x7']);
  assert.equal(vocab.size, 5);
  assert.equal(vocab.index('p2'), 2);
  assert.equal(vocab.index('x7'), 4);
  assert.equal(vocab.index('nope'), undefined);
});

test('JSON round trip; bad JSON names the source and what was wrong', () => {
  const vocab = ItemVocabulary.from(['a', 'b', 'c']);
  const back = ItemVocabulary.fromJSON(JSON.parse(JSON.stringify(vocab)), 'items.json');
  assert.deepEqual(back.ids, ['a', 'b', 'c']);
  assert.equal(back.index('c'), 2);
  assert.throws(() => ItemVocabulary.fromJSON({ ids: ['a', 'a'] }, 'run/items.json'), (e: Error) => e instanceof InputError && /run\/items\.json: item id 'a' appears twice/.test(e.message));
  assert.throws(() => ItemVocabulary.fromJSON({ ids: ['a', 3] }, 'f'), /ids\[1\] must be a string/);
  assert.throws(() => ItemVocabulary.fromJSON(['a'], 'f'), /got an array/);
  assert.throws(() => ItemVocabulary.fromJSON(null, 'f'), /got null/);
});
