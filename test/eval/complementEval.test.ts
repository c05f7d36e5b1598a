// Fill in the blank on the synthetic outfits: co-occurrence learnt from the training outfits must
// beat random on held-out outfits, and the content rule the outfits were made by (a shared colour)
// shows how much a model that sees the pictures could gain over counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdOutBaskets } from '../../src/data/interactionSplit.js';
import { ItemVocabulary } from '../../src/data/itemVocabulary.js';
import { synthesiseProducts } from '../../src/data/synth/catalog.js';
import { synthesiseOutfits } from '../../src/data/synth/outfits.js';
import { coOccurrenceComplement, fillInTheBlank, randomComplement } from '../../src/eval/complementEval.js';
import { formatRanking } from '../../src/eval/rankingMetrics.js';

test('fill in the blank: the hidden item ranked among its category; seeded, history excluded', () => {
  const categories = ['top', 'top', 'top', 'bottom', 'bottom', 'shoes'];
  const baskets = new Map([['o1', [0, 3, 5]], ['o2', [1, 4]], ['solo', [2]]]);
  const calls: Array<{ rest: number[]; candidates: number[] }> = [];
  // An oracle: a candidate scores 1 when it belongs to the basket the rest came from.
  const basketOf = (item: number): readonly number[] => [...baskets.values()].find((b) => b.includes(item))!;
  const figures = fillInTheBlank(baskets, (i) => categories[i], (rest, candidates) => {
    calls.push({ rest: [...rest], candidates: [...candidates] });
    return Float32Array.from(candidates, (c) => (basketOf(rest[0]!).includes(c) ? 1 : 0));
  }, { seed: 1, ks: [1] });
  assert.equal(figures.cases, 2, 'a one-item basket has nothing to fill in');
  assert.equal(figures.hr[1], 1);
  for (const c of calls) {
    assert.equal(new Set(c.candidates.map((x) => categories[x])).size, 1, 'candidates are one category');
    assert.equal(c.candidates.length, categories.filter((k) => k === categories[c.candidates[0]!]).length, 'all of that category');
  }
  // A scorer that cannot tell candidates apart ranks the hidden item last among its category.
  const flat = fillInTheBlank(new Map([['o1', [0, 3]]]), (i) => categories[i], (_r, c) => new Float32Array(c.length), { seed: 2, ks: [1, 3] });
  assert.equal(flat.hr[1], 0);
  // The same seed hides the same items.
  const again: number[][] = [];
  fillInTheBlank(baskets, (i) => categories[i], (rest, candidates) => { again.push([...rest]); return new Float32Array(candidates.length); }, { seed: 1 });
  assert.deepEqual(again, calls.map((c) => c.rest));
  assert.throws(() => fillInTheBlank(baskets, (i) => categories[i], () => new Float32Array(1), { seed: 1 }), /gave 1 scores/);
});

test('synthetic outfits: co-occurrence from train outfits beats random on held-out ones', (t) => {
  const products = synthesiseProducts(2000, 11).map((p) => p.product);
  const vocab = ItemVocabulary.from(products.map((p) => p.id));
  const outfits = synthesiseOutfits(products, 2000, 11);
  const baskets = new Map(outfits.map((o, i) => [`o${i}`, o]));
  const { train, test: heldOut } = holdOutBaskets(baskets, 0.2, 11);
  const toIdx = (m: Map<string, string[]>): Map<string, number[]> => new Map([...m].map(([k, v]) => [k, v.map((id) => vocab.index(id)!)]));
  const trainIdx = toIdx(train);
  const testIdx = toIdx(heldOut);
  const categoryOf = (i: number): string | undefined => products[i]?.category;
  const opts = { seed: 5, ks: [1, 5, 10], items: vocab.size };
  const random = fillInTheBlank(testIdx, categoryOf, randomComplement(5), opts);
  const co = fillInTheBlank(testIdx, categoryOf, coOccurrenceComplement(trainIdx.values(), vocab.size), opts);
  const coOnly = fillInTheBlank(testIdx, categoryOf, coOccurrenceComplement(trainIdx.values(), vocab.size, { popularityTieBreak: 0 }), opts);
  // The rule itself, as a reference for what content can add: candidates showing a colour every
  // other item shows, popularity ordering those (the rule alone ties ~1 in 7 of a category).
  const counts = new Float64Array(vocab.size);
  for (const o of trainIdx.values()) for (const i of o) counts[i]!++;
  const colours = (i: number): string[] => [products[i]!.colour, products[i]!.secondaryColour ?? ''].filter((c) => c !== '');
  const rule = fillInTheBlank(testIdx, categoryOf, (rest, candidates) => {
    const shared = colours(rest[0]!).filter((c) => rest.every((r) => colours(r).includes(c)));
    return Float32Array.from(candidates, (c) => (colours(c).some((x) => shared.includes(x)) ? 1000 : 0) + counts[c]!);
  }, opts);
  const popular = fillInTheBlank(testIdx, categoryOf, (_rest, candidates) => Float32Array.from(candidates, (c) => counts[c]!), opts);
  t.diagnostic(`${testIdx.size} held-out outfits of ${baskets.size}, ~${(vocab.size / 10).toFixed(0)} candidates per category`);
  t.diagnostic(`random:                         ${formatRanking(random)}`);
  t.diagnostic(`co-occurrence (+ popularity):   ${formatRanking(co)}`);
  t.diagnostic(`co-occurrence alone:            ${formatRanking(coOnly)}`);
  t.diagnostic(`popularity in train outfits:    ${formatRanking(popular)}`);
  t.diagnostic(`the colour rule + popularity:   ${formatRanking(rule)}`);
  assert.equal(co.cases, random.cases);
  assert.ok(co.hr[10]! > 2 * random.hr[10]!, `co-occurrence HR@10 ${co.hr[10]} vs random ${random.hr[10]}`);
  assert.ok(coOnly.hr[10]! > 2 * random.hr[10]!, `co-occurrence alone HR@10 ${coOnly.hr[10]} vs random ${random.hr[10]}`);
  assert.ok(rule.hr[10]! > co.hr[10]!, 'the content rule should leave room above counts');
});
