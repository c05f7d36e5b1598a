// End to end through the CLI, as a user runs it (node bin/m6.js …), on a tiny synthetic catalog and
// a tiny model (seconds, not minutes): train → checkpoints → exact resume → describe/answer;
// Ctrl-C mid-run leaves a loadable checkpoint; NaN/Inf steps are skipped and stop the run when
// they persist, with the last good checkpoint intact; user errors are one line, no stack.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors } from '../../src/io/index.js';
import { listCheckpoints } from '../../src/train/checkpoint.js';
import { loadRun } from '../../src/pipelines/runFolder.js';
import { readMetrics } from '../../src/train/metrics.js';
import { repoRoot } from '../helpers.js';
import { m6, writeTinyConfig } from '../data/fixtures.js';

let dir = '';
let common: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-train-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '40', '--seed', '2', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'), { maxTextLen: 64 });
  common = ['--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.8,test:0.2', '--config', join(dir, 'tiny.json'),
    '--batch-size', '4', '--vocab', '400', '--workers', '0', '--seed', '3'];
});

after(() => rmSync(dir, { recursive: true, force: true }));

function maxWeightDifference(a: string, b: string): number {
  const ta = loadSafetensors(a).tensors, tb = loadSafetensors(b).tensors;
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort());
  let max = 0;
  for (const [k, t] of ta) max = Math.max(max, t.sub(tb.get(k)!).abs().max().item());
  return max;
}

test('train 20 steps straight = 10 (--stop-at), resume, 10 more (fp32, fixed seed); then describe and answer', async () => {
  const straight = join(dir, 'straight'), split = join(dir, 'split');
  // --augment and --loss-mean too: crops and flips are part of the data stream, and the loss is part of
  // the run: the resumed run must take both from the checkpoint without being told.
  const a = await m6(['train', ...common, '--augment', '--loss-mean', 'rows', '--steps', '20', '--out', straight, '--save-every', '5', '--keep', '2', '--eval-every', '10', '--tasks', 'describe,answer']);
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stdout, /done: step 20; saved .*step-00000020/);
  assert.match(a.stderr, /step 20\/20 \[#+\] 100% \| loss [\d.]+ \((describe|answer) [\d.]+ (describe|answer) [\d.]+\) \| [\d,]+ tok\/s \| lr [\d.e+-]+ \| ETA 0s/);
  assert.deepEqual(listCheckpoints(straight).map((c) => c.step), [15, 20], 'the newest 2 kept');
  for (const f of ['config.json', 'tokenizer.json', 'metrics.jsonl']) assert.ok(existsSync(join(straight, f)), f);
  const metrics = readMetrics(join(straight, 'metrics.jsonl'));
  assert.equal(metrics.filter((m) => m.kind === 'train').length, 20);
  assert.deepEqual(metrics.filter((m) => m.kind === 'eval').map((m) => m.step), [10, 20]);

  const first = await m6(['train', ...common, '--augment', '--loss-mean', 'rows', '--steps', '20', '--stop-at', '10', '--out', split]);
  assert.equal(first.status, 0, first.stderr);
  const refuse = await m6(['train', ...common, '--steps', '20', '--out', split]);
  assert.equal(refuse.status, 2);
  assert.match(refuse.stderr, /already holds checkpoints .* pass --resume/);
  const second = await m6(['train', ...common, '--out', split, '--resume']);
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, /resuming from .*step-00000010 \(step 10\)/);
  assert.doesNotMatch(second.stderr, /warning: the tasks\/data differ/);
  const trainer = JSON.parse(readFileSync(join(split, 'checkpoints', 'step-00000020', 'trainer.json'), 'utf8'));
  assert.equal(trainer.step, 20);
  assert.equal(trainer.dataPosition, 20);
  assert.equal(trainer.optimizer.step, 20);
  assert.equal(trainer.lossMean, 'rows');
  const diff = maxWeightDifference(join(straight, 'checkpoints', 'step-00000020', 'model.safetensors'), join(split, 'checkpoints', 'step-00000020', 'model.safetensors'));
  assert.ok(diff <= 1e-5, `weights differ by ${diff}`);

  const image = join(dir, 'catalog', 'images', 'p000001.png');
  const described = await m6(['describe', '--run', straight, image, join(dir, 'missing.png'), image, '--max-tokens', '6']);
  assert.equal(described.status, 1, 'one input failed');
  const lines = described.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.startsWith(`${image}\t`)));
  assert.equal(lines[0], lines[1], 'greedy: the same image gets the same text');
  assert.match(described.stderr, /missing\.png: error: missing file/);
  assert.match(described.stderr, /1 of 3 inputs failed/);

  const answered = await m6(['answer', '--run', straight, '--image', image, 'What colour is it?', 'What pattern does it have?', '--max-tokens', '4', '--json']);
  assert.equal(answered.status, 0, answered.stderr);
  const rows = JSON.parse(answered.stdout) as Array<{ input: string; image: string; text: string }>;
  assert.deepEqual(rows.map((r) => r.input), ['What colour is it?', 'What pattern does it have?']);
  assert.ok(rows.every((r) => typeof r.text === 'string' && r.image === image));
  const textOnly = await m6(['answer', '--run', join(straight, 'checkpoints', 'step-00000015'), 'Is it red?', '--max-tokens', '3']);
  assert.equal(textOnly.status, 0, textOnly.stderr);
});

test('packAnswers: every question about a product trains in one row; a resumed run packs them the same way and continues exactly; m6 answer reads the image apart from the question', async () => {
  const config = writeTinyConfig(join(dir, 'tiny-packed.json'), { maxTextLen: 64, packAnswers: true });
  const args = [...common.map((a) => (a === join(dir, 'tiny.json') ? config : a)), '--tasks', 'describe,answer', '--steps', '8', '--save-every', '4'];
  const straight = join(dir, 'packed-straight'), split = join(dir, 'packed-split');
  const a = await m6(['train', ...args, '--out', straight]);
  assert.equal(a.status, 0, a.stderr);
  const packedLine = /answer: (\d+) training questions packed into (\d+) rows/.exec(a.stderr);
  assert.ok(packedLine, a.stderr);
  assert.ok(Number(packedLine[1]) >= 5 * Number(packedLine[2]), `the catalog asks ≥ 5 questions per product: ${packedLine[0]}`);
  assert.equal(JSON.parse(readFileSync(join(straight, 'config.json'), 'utf8')).packAnswers, true);
  assert.equal((await m6(['train', ...args, '--stop-at', '4', '--out', split])).status, 0);
  const resumed = await m6(['train', ...args, '--out', split, '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.doesNotMatch(resumed.stderr, /differ from the checkpoint/);
  assert.match(resumed.stderr, /training questions packed into/);
  const last = (run: string) => join(listCheckpoints(run).at(-1)!.dir, 'model.safetensors');
  assert.ok(maxWeightDifference(last(straight), last(split)) < 1e-6, 'resumed = straight');
  const image = join(dir, 'catalog', 'images', readdirSync(join(dir, 'catalog', 'images'))[0]!);
  const answered = await m6(['answer', '--run', straight, '--image', image, 'What colour is it?', '--max-tokens', '4', '--json']);
  assert.equal(answered.status, 0, answered.stderr);
  assert.equal((JSON.parse(answered.stdout) as unknown[]).length, 1);
});

test('Ctrl-C (SIGINT) mid-run saves a loadable checkpoint and exits 130', async () => {
  const out = join(dir, 'interrupted');
  const child = spawn(process.execPath, [join(repoRoot, 'bin/m6.js'), 'train', ...common, '--steps', '100000', '--out', out], { cwd: repoRoot });
  let stderr = '';
  const code = await new Promise<number | null>((resolve, reject) => {
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // "step 1/…" is printed after the first step: the loop is running.
      if (!sent && /step 1\/100000/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('error', reject);
    child.on('close', resolve);
  });
  assert.equal(code, 130, stderr);
  assert.match(stderr, /stopping after this step and saving a checkpoint/);
  assert.match(stderr, /interrupted at step \d+: saved .*; continue with --resume/);
  const [ckpt] = listCheckpoints(out);
  assert.ok(ckpt && ckpt.step >= 1, 'a checkpoint');
  const run = await loadRun(out);
  assert.equal(run.trainer.step, ckpt.step);
  run.model.dispose();
});

test('NaN/Inf losses: skipped and counted; many in a row stop the run with the last good checkpoint intact', async () => {
  const out = join(dir, 'nan');
  const r = await m6(['train', ...common, '--steps', '30', '--out', out, '--save-every', '5', '--debug-nonfinite-steps', '2,7,8,9', '--max-nonfinite', '3']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /m6: stopped: 3 steps in a row had a NaN\/Inf loss or gradient \(steps 7–9\); the last good checkpoint is .*step-00000005/);
  assert.match(r.stderr, /4 NaN\/Inf steps skipped/);
  assert.deepEqual(listCheckpoints(out).map((c) => c.step), [5]);
  const events = readMetrics(join(out, 'metrics.jsonl')).filter((m) => m.kind === 'event' && m.event === 'non-finite');
  assert.deepEqual(events.map((e) => e.step), [2, 7, 8, 9]);
  const run = await loadRun(out);
  assert.equal(run.trainer.step, 5);
  run.model.dispose();
});

test('user errors: one line, no stack', async () => {
  const bad = await m6(['train', ...common, '--out', join(dir, 'x'), '--steps', '5', '--tasks', 'describe,sing']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown task 'sing': expected names from describe, answer, design, embed/);
  const noLength = await m6(['train', ...common, '--out', join(dir, 'x')]);
  assert.equal(noLength.status, 2);
  assert.match(noLength.stderr, /give --steps N and\/or --minutes M/);
  const onlyDesign = await m6(['train', ...common, '--out', join(dir, 'x'), '--steps', '5', '--tasks', 'design', '--vq', join(dir, 'no-vq')]);
  assert.equal(onlyDesign.status, 2);
  assert.match(onlyDesign.stderr, /--vq .*no-vq: no VQ tokenizer there/);
  const noRun = await m6(['describe', '--run', join(dir, 'nothing'), 'a.png']);
  assert.equal(noRun.status, 2);
  assert.match(noRun.stderr, /no such folder/);
  for (const r of [bad, noLength, onlyDesign, noRun]) assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('--profile-ops N times N steps after a warm-up op by op: a table on stderr and op-profile.json in the run', async () => {
  const out = join(dir, 'profiled');
  const r = await m6(['train', ...common, '--steps', '6', '--out', out, '--tasks', 'describe,answer', '--profile-ops', '2']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /op profile of steps 4–5: [\d.]+ ms a step; inside libtorch [\d.]+ ms \([\d.]+%\), outside \(JavaScript, the loader\) -?[\d.]+ ms/);
  assert.match(r.stderr, /^matmul\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+%$/m);
  const report = JSON.parse(readFileSync(join(out, 'op-profile.json'), 'utf8')) as { fromStep: number; toStep: number; steps: number; wallMs: number; insideMs: number; ops: { name: string; pass: string }[] };
  assert.deepEqual([report.fromStep, report.toStep, report.steps], [4, 5, 2]);
  assert.ok(report.insideMs > 0 && report.insideMs <= report.wallMs);
  assert.ok(report.ops.some((o) => o.pass === 'backward' && o.name === 'aten::mm'));
  // A run shorter than warm-up + N profiles what it ran, and says so in the table's range.
  const short = await m6(['train', ...common, '--steps', '4', '--out', join(dir, 'profiled-short'), '--tasks', 'describe', '--profile-ops', '5']);
  assert.equal(short.status, 0, short.stderr);
  assert.match(short.stderr, /op profile of steps 4–4:/);
  const bad = await m6(['train', ...common, '--steps', '4', '--out', join(dir, 'profiled-bad'), '--profile-ops', '0']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--profile-ops/);
});

test('--tasks describe,answer@0.5: answer takes no rows in the first half; the join survives --resume; a time budget joins it on time', async () => {
  const straight = join(dir, 'sched-straight'), split = join(dir, 'sched-split');
  const a = await m6(['train', ...common, '--steps', '12', '--out', straight, '--tasks', 'describe,answer@0.5']);
  assert.equal(a.status, 0, a.stderr);
  const steps = readMetrics(join(straight, 'metrics.jsonl')).filter((m) => m.kind === 'train') as Array<{ step: number; taskLoss: Record<string, number> }>;
  assert.ok(steps.filter((m) => m.step <= 6).every((m) => m.taskLoss.answer === undefined), 'no answer rows before the join');
  assert.ok(steps.filter((m) => m.step > 6).some((m) => m.taskLoss.answer !== undefined), 'answer rows after it');
  const trainer = JSON.parse(readFileSync(join(straight, 'checkpoints', 'step-00000012', 'trainer.json'), 'utf8'));
  assert.deepEqual(trainer.taskStarts, { answer: 6 });

  assert.equal((await m6(['train', ...common, '--steps', '12', '--stop-at', '4', '--out', split, '--tasks', 'describe,answer@0.5'])).status, 0);
  const second = await m6(['train', ...common, '--out', split, '--resume', '--tasks', 'describe,answer@0.5']);
  assert.equal(second.status, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /warning: the tasks\/data differ/);
  const diff = maxWeightDifference(join(straight, 'checkpoints', 'step-00000012', 'model.safetensors'), join(split, 'checkpoints', 'step-00000012', 'model.safetensors'));
  assert.ok(diff <= 1e-5, `weights differ by ${diff}`);

  const timed = join(dir, 'sched-timed');
  const t = await m6(['train', ...common, '--minutes', '0.15', '--out', timed, '--tasks', 'describe,answer@0.4']);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stderr, /answer joined the mixture at step \d+, 4\d% of the time budget/);
  const metrics = readMetrics(join(timed, 'metrics.jsonl'));
  const joined = metrics.find((m) => m.kind === 'event' && m.event === 'tasks-joined') as { step: number } | undefined;
  assert.ok(joined !== undefined);
  const timedSteps = metrics.filter((m) => m.kind === 'train') as Array<{ step: number; taskLoss: Record<string, number> }>;
  assert.ok(timedSteps.filter((m) => m.step <= joined.step).every((m) => m.taskLoss.answer === undefined));
  assert.ok(timedSteps.filter((m) => m.step > joined.step).some((m) => m.taskLoss.answer !== undefined));
  const last = listCheckpoints(timed).at(-1)!;
  assert.equal(JSON.parse(readFileSync(join(last.dir, 'trainer.json'), 'utf8')).taskStarts.answer, joined.step);
});
