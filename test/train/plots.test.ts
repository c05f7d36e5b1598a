import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Metric } from '../../src/train/metrics.js';
import { evalChartSvg, lineChartSvg, lossChartSvg, writePlots } from '../../src/train/plots.js';

function metrics(steps: number, evalEvery: number): Metric[] {
  const out: Metric[] = [];
  for (let s = 1; s <= steps; s++) {
    out.push({ kind: 'train', step: s, loss: 5 / s, taskLoss: { describe: 5 / s, answer: 3 / s }, lr: 1e-3, gradNorm: 1, tokensPerSecond: 100, elapsedSeconds: s });
    if (s % evalEvery === 0) out.push({ kind: 'eval', step: s, taskLoss: { describe: 6 / s, answer: 4 / s }, on: 'held-out' });
  }
  return out;
}

test('charts: one path per task, held-out losses as circles, nothing to draw below two points', () => {
  const svg = lossChartSvg(metrics(50, 10))!;
  assert.equal(svg.match(/<path /g)?.length, 2);
  assert.equal(svg.match(/<circle /g)?.length, 10);
  assert.match(svg, />describe</);
  const evalSvg = evalChartSvg(metrics(50, 10))!;
  assert.equal(evalSvg.match(/<path /g)?.length, 2);
  assert.equal(lineChartSvg('x', [{ name: 'a', line: [[1, 2]] }]), null);
  assert.equal(evalChartSvg(metrics(5, 100)), null, 'no eval yet: no eval chart');
  // A non-finite loss (a skipped step) is left out, not drawn at NaN.
  const withNaN = lineChartSvg('x', [{ name: 'a', line: [[1, 2], [2, NaN], [3, 1]] }])!;
  assert.doesNotMatch(withNaN, /NaN/);
});

test('writePlots writes loss.png and eval.png as real PNGs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'm6-plots-'));
  try {
    const files = await writePlots(dir, metrics(30, 10));
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)), ['loss.png', 'eval.png']);
    for (const f of files) {
      const meta = await sharp(f).metadata();
      assert.equal(meta.format, 'png');
      assert.equal(meta.width, 640);
      assert.equal(meta.height, 280);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
