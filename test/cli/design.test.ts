// design end to end through the CLI, on a tiny synthetic catalog and a tiny model (seconds): the VQ
// stage alone (`--tasks vq`), design trained on its codes, resume reusing the VQ and the cached codes,
// the VQ trained as a stage of the same command or copied with --vq, `m6 design` writing PNGs
// (seeded: same seed, same bytes), bad prompts failing alone, and the design evaluation's numbers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as torch from '../../src/torch/index.js';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { buildTaskData } from '../../src/tasks/taskData.js';
import { loadRun } from '../../src/pipelines/runFolder.js';
import { loadPipeline } from '../../src/pipelines/index.js';
import { evaluateRun } from '../../src/eval/evaluation.js';
import { evaluateDesign, type DesignEvaluation } from '../../src/eval/designEval.js';
import { DESIGN_GUIDANCE } from '../../src/tasks/instructions.js';
import { m6, specWith, writeTinyConfig } from '../data/fixtures.js';

let dir = '';
let common: string[] = [];
let run = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-design-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '40', '--seed', '4', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  // 32 px images, 8 px patches: a 4×4 grid, 16 codes per image, from a 64-code VQ.
  writeTinyConfig(join(dir, 'tiny.json'), { imageCodes: 64 });
  common = ['--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.8,test:0.2', '--config', join(dir, 'tiny.json'),
    '--batch-size', '4', '--vocab', '400', '--workers', '0', '--seed', '3'];
  run = join(dir, 'run');
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('--tasks vq trains the image tokenizer alone; design trains on its codes; --resume reuses the VQ and the cached codes', async () => {
  const vq = await m6(['train', ...common, '--tasks', 'vq', '--vq-steps', '3', '--out', run]);
  assert.equal(vq.status, 0, vq.stderr);
  assert.match(vq.stdout, /VQ image tokenizer: .*vq\.safetensors \(held-out PSNR [\d.]+ dB\)/);
  assert.match(vq.stderr, /VQ stage: training a 64-code image tokenizer \(32px, 8× downsampling\) on \d+ images for 3 steps/);
  assert.match(vq.stderr, /VQ step 3\/3: training PSNR [\d.]+ dB/);
  const info = JSON.parse(readFileSync(join(run, 'vq.json'), 'utf8'));
  assert.equal(info.steps, 3);
  assert.equal(info.psnrOn, 'held-out');
  assert.equal(info.bf16, false);
  assert.ok(info.heldOutImages > 0 && info.trainImages + info.heldOutImages === 40);
  assert.deepEqual(readdirSync(run).sort(), ['vq.json', 'vq.safetensors'], 'nothing but the VQ');

  const first = await m6(['train', ...common, '--tasks', 'describe,design', '--steps', '3', '--stop-at', '2', '--out', run]);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /tasks: describe \(\d+ train, \d+ held out, weight 1\); design \(\d+ train, \d+ held out, weight 1\)/);
  assert.match(first.stderr, /VQ stage: reusing .*vq\.safetensors/);
  assert.match(first.stderr, /design: encoded 40 images into VQ codes/);
  assert.match(first.stderr, /loss [\d.]+ \((design|describe) [\d.]+ (design|describe) [\d.]+\)/);
  assert.ok(existsSync(join(run, 'design-codes.json')));

  const resumed = await m6(['train', ...common, '--tasks', 'describe,design', '--out', run, '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /VQ stage: reusing/);
  assert.match(resumed.stderr, /design: the VQ codes of all 40 images came from .*design-codes\.json/);
  assert.match(resumed.stdout, /done: step 3/);
  const loaded = await loadRun(run);
  assert.equal(loaded.vqFile, join(run, 'vq.safetensors'));
  loaded.model.dispose();
});

test('--vq-minutes: the VQ stage stops at its time budget before --vq-steps, saying so, and saves what it learnt', async () => {
  const timed = join(dir, 'vq-timed');
  const r = await m6(['train', ...common, '--tasks', 'vq', '--vq-steps', '100000', '--vq-minutes', '0.05', '--out', timed]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /for 100000 steps of \d+ or 3s, whichever comes first/);
  const done = /VQ stage done: held-out PSNR [\d.]+ dB after (\d+) steps \(\d+ s; its 3s ran out before step 100000\)/.exec(r.stderr);
  assert.ok(done !== null, r.stderr);
  const info = JSON.parse(readFileSync(join(timed, 'vq.json'), 'utf8'));
  assert.equal(info.steps, Number(done[1]));
  assert.ok(info.steps > 0 && info.steps < 100000);
});

test('design with no VQ in the run trains one as a stage; --vq copies a given one; a missing or unfit one is a one-line error', async () => {
  const staged = join(dir, 'staged');
  const a = await m6(['train', ...common, '--tasks', 'design', '--steps', '1', '--vq-steps', '2', '--bf16', '--out', staged]);
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stderr, /VQ stage: training a 64-code image tokenizer .* for 2 steps of \d+ \(bf16 autocast\)/);
  assert.equal(JSON.parse(readFileSync(join(staged, 'vq.json'), 'utf8')).bf16, true, '--bf16 reaches the VQ stage');
  assert.match(a.stderr, /VQ stage done: held-out PSNR [\d.]+ dB after 2 steps/);
  assert.ok(existsSync(join(staged, 'vq.safetensors')) && existsSync(join(staged, 'checkpoints', 'step-00000001')));

  const copied = join(dir, 'copied');
  const b = await m6(['train', ...common, '--tasks', 'design', '--steps', '1', '--vq', staged, '--out', copied]);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stderr, /VQ stage: using .*staged\/vq\.safetensors \(copied to .*copied\/vq\.safetensors\)/);
  assert.deepEqual(readFileSync(join(copied, 'vq.safetensors')), readFileSync(join(staged, 'vq.safetensors')));

  // A VQ made for 64 image codes does not fit a model with 128.
  writeFileSync(join(dir, 'wide.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, 'tiny.json'), 'utf8')), imageCodes: 128 }));
  const unfit = await m6(['train', ...common, '--config', join(dir, 'wide.json'), '--tasks', 'design', '--steps', '1', '--vq', staged, '--out', join(dir, 'unfit')]);
  assert.equal(unfit.status, 2);
  assert.match(unfit.stderr, /the VQ tokenizer has 64 codes but the model's vocabulary has 128 image codes/);
  const weighted = await m6(['train', ...common, '--tasks', 'vq:2', '--out', join(dir, 'w')]);
  assert.equal(weighted.status, 2);
  assert.match(weighted.stderr, /vq is a training stage and takes no weight/);
  for (const r of [unfit, weighted]) assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('m6 design: n PNGs of the model\'s image size per prompt; same seed, same bytes; another seed, other images; bad prompts fail alone', async () => {
  const out1 = join(dir, 'd1'), out2 = join(dir, 'd2'), out3 = join(dir, 'd3');
  const a = await m6(['design', '--run', run, 'Red Polka-Dot Dress', '', 'word '.repeat(60), 'Blue Shirt', '--n', '3', '--seed', '5', '--out', out1]);
  assert.equal(a.status, 1, 'two prompts failed');
  const lines = a.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 6);
  assert.deepEqual(lines.map((l) => l.split('\t')[0]), [...Array(3).fill('Red Polka-Dot Dress'), ...Array(3).fill('Blue Shirt')]);
  assert.match(a.stderr, /^: error: empty prompt/m);
  assert.match(a.stderr, /error: prompt too long: \d+ tokens, at most \d+ fit/);
  assert.match(a.stderr, /2 of 4 prompts failed/);
  const files = lines.map((l) => l.split('\t')[1]!);
  assert.ok(files[0]!.endsWith('01-red-polka-dot-dress-1.png') && files[5]!.endsWith('04-blue-shirt-3.png'), files.join(' '));
  for (const f of files) {
    const meta = await sharp(f).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 32, 32, 3], f);
  }

  const b = await m6(['design', '--run', run, 'Red Polka-Dot Dress', 'Blue Shirt', '--n', '3', '--seed', '5', '--out', out2, '--json']);
  assert.equal(b.status, 0, b.stderr);
  const rows = JSON.parse(b.stdout) as Array<{ input: string; files: string[] }>;
  assert.deepEqual(rows.map((r) => r.files.length), [3, 3]);
  const same = rows.flatMap((r) => r.files);
  same.forEach((f, i) => assert.deepEqual(readFileSync(f), readFileSync(files[i]!), `seed 5 again: ${f} has the same bytes`));
  const distinct = new Set(same.map((f) => readFileSync(f).toString('base64')));
  assert.ok(distinct.size > 1, 'the n samples of a prompt are not all one image');

  const c = await m6(['design', '--run', run, 'Red Polka-Dot Dress', 'Blue Shirt', '--n', '3', '--seed', '6', '--out', out3, '--json']);
  assert.equal(c.status, 0, c.stderr);
  const other = (JSON.parse(c.stdout) as Array<{ files: string[] }>).flatMap((r) => r.files);
  assert.ok(other.some((f, i) => !readFileSync(f).equals(readFileSync(same[i]!))), 'seed 6 draws other images');

  // A run trained without design has no VQ to draw with.
  const plain = join(dir, 'plain');
  const t = await m6(['train', ...common, '--tasks', 'describe', '--steps', '1', '--out', plain]);
  assert.equal(t.status, 0, t.stderr);
  const none = await m6(['design', '--run', plain, 'Red Dress', '--out', join(dir, 'd4')]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /the run has no VQ image tokenizer \(vq\.safetensors\)/);
  const badN = await m6(['design', '--run', run, 'Red Dress', '--n', '0', '--out', join(dir, 'd5')]);
  assert.equal(badN.status, 2);
  assert.match(badN.stderr, /--n must be ≥ 1/);
});

test('m6 design --guidance: a run trained with design prompts dropped guides by default (DESIGN_GUIDANCE), 1 draws other images; a run from before refuses it', async () => {
  const files = async (runDir: string, out: string, extra: string[]) => {
    const r = await m6(['design', '--run', runDir, 'Red Polka-Dot Dress', '--n', '2', '--seed', '5', '--out', join(dir, out), '--json', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as Array<{ files: string[] }>)[0]!.files.map((f) => readFileSync(f));
  };
  const byDefault = await files(run, 'g-default', []);
  const two = await files(run, 'g2', ['--guidance', String(DESIGN_GUIDANCE)]);
  const one = await files(run, 'g1', ['--guidance', '1']);
  two.forEach((b, i) => assert.ok(b.equals(byDefault[i]!), `the default is guidance ${DESIGN_GUIDANCE}`));
  assert.ok(one.some((b, i) => !b.equals(two[i]!)), 'guidance 1 draws other images than the default');

  // The same weights with a config from before classifier-free guidance (no designPromptDropout): no guidance by default, and none may be asked for.
  const old = join(dir, 'before-guidance');
  cpSync(run, old, { recursive: true });
  for (const step of readdirSync(join(old, 'checkpoints'))) {
    const file = join(old, 'checkpoints', step, 'config.json');
    if (!existsSync(file)) continue;
    const { designPromptDropout: _dropped, ...config } = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify(config));
  }
  const plain = await files(old, 'g-old', []);
  plain.forEach((b, i) => assert.ok(b.equals(one[i]!), 'a run from before samples unguided'));
  const refused = await m6(['design', '--run', old, 'Red Dress', '--guidance', '3', '--out', join(dir, 'g-refused')]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /guidance 3: this model was trained without dropping design prompts \(designPromptDropout 0\)/);
  const negative = await m6(['design', '--run', run, 'Red Dress', '--guidance', '-1', '--out', join(dir, 'g-bad')]);
  assert.equal(negative.status, 2);
  assert.match(negative.stderr, /--guidance must be ≥ 0/);
  for (const r of [refused, negative]) assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('evaluateDesign on the tiny run: finite accuracies, baselines and Fréchet distances; sample PNGs; the classifier is cached', async () => {
  const spec = resolveDatasetSpec(specWith(join(dir, 'catalog', 'dataset.json'), { split: 'train:0.8,test:0.2' }));
  const data = await buildTaskData(spec, [{ name: 'design', weight: 1 }]);
  torch.keepLargeAllocations();
  const loaded = await loadPipeline(run);
  const evaluate = () => evaluateRun({
    pipeline: loaded, spec, data, tasks: ['design'], evaluators: { design: async () => (ctx) => evaluateDesign(ctx, { classifierSteps: 10, samples: 2 }) },
  });
  try {
    const first = await evaluate();
    assert.deepEqual(first.skipped, []);
    const d = first.tasks[0] as DesignEvaluation;
    assert.equal(d.task, 'design');
    assert.equal(d.evaluated, data.eval[0]!.examples.length);
    for (const k of ['categoryAccuracy', 'colourAccuracy', 'classifierCategoryAccuracy', 'classifierColourAccuracy']) {
      assert.ok(d.metrics[k]! >= 0 && d.metrics[k]! <= 1, `${k} ${d.metrics[k]}`);
      assert.ok(d.baselines[k]! > 0 && d.baselines[k]! <= 1, `${k} baseline ${d.baselines[k]}`);
    }
    for (const k of ['vqCeilingCategoryAccuracy', 'vqCeilingColourAccuracy']) assert.ok(d.metrics[k]! >= 0 && d.metrics[k]! <= 1, `${k} ${d.metrics[k]}`);
    assert.ok(Number.isFinite(d.metrics.frechetDistance) && d.metrics.frechetDistance! >= 0, `FD ${d.metrics.frechetDistance}`);
    assert.ok(Number.isFinite(d.baselines.frechetDistance) && d.baselines.frechetDistance! >= 0);
    assert.equal(d.samples.length, 2);
    for (const s of d.samples) assert.ok(existsSync(s.generated) && existsSync(s.real) && s.prompt.length > 0);
    assert.ok(d.items.every((i) => i.truth.category !== undefined && i.predicted.colour !== undefined));
    assert.equal(d.classifier.cached, false);
    const again = (await evaluate()).tasks[0] as DesignEvaluation;
    assert.equal(again.classifier.cached, true);
    assert.deepEqual(again.classifier.accuracy, d.classifier.accuracy);
    assert.deepEqual(again.metrics, d.metrics, 'seeded: the same designs and the same judge give the same numbers');
  } finally {
    loaded.close();
  }
});
