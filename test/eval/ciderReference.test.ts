// CIDEr-D against the COCO caption evaluation's own outputs on fixed captions (the fixture and the
// script that regenerates it from salaniz/pycocoevalcap's cider/ are in test/fixtures/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ciderD, ciderDScores, type ScoredPair } from '../../src/eval/textMetrics.js';
import { fixtures } from '../helpers.js';

interface CiderCase { name: string; pairs: ScoredPair[]; corpus: number; perImage: number[] }
const fixture = JSON.parse(readFileSync(join(fixtures, 'cider_fixture.json'), 'utf8')) as { cases: CiderCase[] };

test('CIDEr-D matches coco-caption per image and for the corpus (idf over the set, clipping, sigma = 6, ×10)', () => {
  assert.ok(fixture.cases.length >= 3);
  for (const c of fixture.cases) {
    const got = ciderDScores(c.pairs);
    assert.equal(got.length, c.perImage.length, c.name);
    got.forEach((g, i) => assert.ok(Math.abs(g - c.perImage[i]) <= 1e-9, `${c.name} image ${i}: ours ${g}, reference ${c.perImage[i]}`));
    const corpus = ciderD(c.pairs);
    assert.ok(Math.abs(corpus - c.corpus) <= 1e-9, `${c.name}: ours ${corpus}, reference ${c.corpus}`);
  }
});

test('CIDEr-D: no overlap scores 0; an empty set scores 0', () => {
  const noOverlap = fixture.cases[0].pairs.findIndex((p) => p.candidate === 'leather boots for winter');
  assert.equal(ciderDScores(fixture.cases[0].pairs)[noOverlap], 0);
  assert.equal(ciderD([]), 0);
  assert.deepEqual(ciderDScores([]), []);
});
