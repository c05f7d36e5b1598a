// Figures by part (the synthetic catalog's seen and novel compositions): shares per part, and
// text→image recall of each part's queries against the whole gallery, on hand-made inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharesByPart } from '../../src/eval/syntheticEval.js';
import { evaluateEmbed } from '../../src/eval/embedEval.js';
import type { EmbedItem } from '../../src/eval/retrievalMetrics.js';
import type { Pipeline } from '../../src/pipelines/index.js';

test('sharesByPart: each part its own share and count; items of no part are left out', () => {
  const items = [
    { id: 'a', part: 'seen', ok: true }, { id: 'b', part: 'seen', ok: false }, { id: 'c', part: 'seen', ok: true },
    { id: 'd', part: 'novel', ok: false }, { id: 'e', part: undefined, ok: true },
  ];
  assert.deepEqual(sharesByPart(items, (x) => x.part, (x) => x.ok), { novel: { share: 0, items: 1 }, seen: { share: 2 / 3, items: 3 } });
  assert.deepEqual(sharesByPart([], (x: { p: string }) => x.p, () => true), {});
});

test('evaluateEmbed byPart: each part\'s queries ranked over every image, with their own chance level', async () => {
  // Four items on the unit circle's axes; each text points at its own image except d's, which points at a's.
  const vec = (x: number, y: number, z: number, w: number) => Float32Array.from([x, y, z, w]);
  const images: Record<string, Float32Array> = { a: vec(1, 0, 0, 0), b: vec(0, 1, 0, 0), c: vec(0, 0, 1, 0), d: vec(0, 0, 0, 1) };
  const texts: Record<string, Float32Array> = { 'text a': vec(1, 0, 0, 0), 'text b': vec(0, 1, 0, 0), 'text c': vec(0, 0, 1, 0), 'text d': vec(1, 0, 0, 0.1) };
  const stub = {
    config: { dim: 4 },
    embed: async (q: { images?: readonly string[]; texts?: readonly string[] }) => (q.images ?? q.texts ?? []).map((k) => ({ ok: true, vector: images[k] ?? texts[k]! })),
  } as unknown as Pipeline;
  const items: EmbedItem[] = ['a', 'b', 'c', 'd'].map((id) => ({ id, image: id, text: `text ${id}`, group: id, part: id === 'a' || id === 'b' ? 'seen' : 'novel' }));
  const r = await evaluateEmbed(stub, items, { ks: [1, 2] });
  assert.deepEqual(r.textToImage, { 'recall@1': 3 / 4, 'recall@2': 1 });
  assert.deepEqual(r.byPart?.seen?.textToImage, { 'recall@1': 1, 'recall@2': 1 });
  assert.deepEqual(r.byPart?.novel?.textToImage, { 'recall@1': 1 / 2, 'recall@2': 1 });
  assert.equal(r.byPart?.novel?.queries, 2);
  assert.deepEqual(r.byPart?.seen?.chanceTextToImage, { 'recall@1': 1 / 4, 'recall@2': 1 / 2 });
  const noParts = await evaluateEmbed(stub, items.map(({ part: _p, ...it }) => it), { ks: [1] });
  assert.equal(noParts.byPart, undefined);
});
