// `m6 train --nproc 2` end to end (2 Gloo ranks on loopback, one thread each) on a tiny synthetic
// catalog: one run folder, written once, whose losses are the one-process run's; a 2-rank checkpoint
// resumed in 1 process goes on as 2 ranks would; a rank killed with SIGKILL fails the job (non-zero,
// that rank named, the last checkpoint intact), and --max-restarts 1 finishes the run from it; ranks
// started by hand (torchrun's environment, no launcher) join, and are refused when their flags differ.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableBackends } from '../../src/distributed/index.js';
import { listCheckpoints } from '../../src/train/checkpoint.js';
import { readMetrics, type TrainMetric } from '../../src/train/metrics.js';
import { loadSafetensors } from '../../src/io/index.js';
import { rankArgs } from '../../src/cli/trainLaunch.js';
import { repoRoot } from '../helpers.js';
import { m6, writeTinyConfig } from '../data/fixtures.js';

const backends = availableBackends();
const skip = backends.gloo ? false : `c10d Gloo backend not built: ${backends.reason}`;
let dir = '';
let common: string[] = [];
// One thread per rank: the test machine has two cores.
const env = { ...process.env, OMP_NUM_THREADS: '1' };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-ddp-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '40', '--seed', '2', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'), { maxTextLen: 64 });
  common = ['--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.8,test:0.2', '--config', join(dir, 'tiny.json'),
    '--batch-size', '6', '--vocab', '400', '--workers', '0', '--seed', '3', '--tasks', 'describe,answer'];
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Run { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** `node bin/m6.js train …`; `onStderr` sees the stderr so far and the child (to signal it). */
function train(args: string[], onStderr?: (stderr: string, pid: number) => void, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/m6.js'), 'train', ...common, ...args], { cwd: repoRoot, env });
    let stdout = '', stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); onStderr?.(stderr, child.pid!); });
    child.on('error', reject);
    child.on('close', (status, signal) => { clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
  });
}

const losses = (run: string): Map<number, number> =>
  new Map(readMetrics(join(run, 'metrics.jsonl')).filter((m): m is TrainMetric => m.kind === 'train').map((m) => [m.step, m.loss]));

/** The launcher's rank processes (children of `pid`) and their RANK, from /proc. */
function ranksOf(pid: number): Array<{ pid: number; rank: number }> {
  const out: Array<{ pid: number; rank: number }> = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      const rank = readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').find((kv) => kv.startsWith('RANK='));
      if (rank !== undefined) out.push({ pid: Number(p), rank: Number(rank.slice(5)) });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

test('rankArgs: the launcher flags are left out; a restart resumes from the newest checkpoint', () => {
  const argv = ['train', '--out', join(dir, 'none'), '--nproc', '2', '--max-restarts=1', '--resume', 'x/step-1', '--steps', '4', '--master-port', '1234'];
  assert.deepEqual(rankArgs(argv, 0, join(dir, 'none')), ['train', '--out', join(dir, 'none'), '--resume', 'x/step-1', '--steps', '4']);
  // No checkpoint yet: a restart starts over as given.
  assert.deepEqual(rankArgs(argv, 1, join(dir, 'none')), ['train', '--out', join(dir, 'none'), '--resume', 'x/step-1', '--steps', '4']);
  // With a checkpoint: the given --resume (with or without its folder) gives way to a plain --resume (the newest).
  const has = join(dir, 'has');
  mkdirSync(join(has, 'checkpoints', 'step-00000003'), { recursive: true });
  writeFileSync(join(has, 'checkpoints', 'step-00000003', 'trainer.json'), '{}');
  assert.deepEqual(rankArgs(['train', '--resume', 'x/step-1', '--nproc=2', '--steps', '4'], 1, has), ['train', '--steps', '4', '--resume']);
  assert.deepEqual(rankArgs(['train', '--resume', '--steps', '4'], 2, has), ['train', '--steps', '4', '--resume']);
  assert.deepEqual(rankArgs(['train', '--steps', '4'], 0, has), ['train', '--steps', '4'], 'the first start runs as given');
});

test('m6 train --nproc 2 writes one run whose losses are the one-process run\'s; its checkpoint resumes in 1 process as in 2', { skip, timeout: 300_000 }, async () => {
  const two = join(dir, 'two'), one = join(dir, 'one');
  const a = await train(['--steps', '8', '--stop-at', '4', '--save-every', '2', '--out', two, '--nproc', '2']);
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stdout, /interrupted|done: step 4|step 4/);
  assert.equal((a.stdout.match(/saved .*step-00000004/g) ?? []).length, 1, `one summary line (rank 0's): ${a.stdout}`);
  assert.deepEqual(listCheckpoints(two).map((c) => c.step), [2, 4]);
  for (const f of ['config.json', 'tokenizer.json', 'metrics.jsonl', 'split.json', 'loss.png']) assert.ok(existsSync(join(two, f)), f);
  const events = readMetrics(join(two, 'metrics.jsonl')).filter((m) => m.kind === 'event').map((m) => m.kind === 'event' && m.event);
  assert.deepEqual(events.filter((e) => e === 'start'), ['start'], 'metrics.jsonl is written once (by rank 0)');
  assert.deepEqual([...losses(two).keys()], [1, 2, 3, 4]);

  const b = await train(['--steps', '8', '--stop-at', '4', '--out', one]);
  assert.equal(b.status, 0, b.stderr);
  for (const [step, l] of losses(one)) assert.ok(Math.abs(l - losses(two).get(step)!) <= 1e-5 * l, `step ${step}: 1 process ${l}, 2 ranks ${losses(two).get(step)}`);

  // Continue the 2-rank run in 2 ranks and (a copy of it) in 1 process: the same losses, within fp.
  const copy = join(dir, 'two-then-one');
  cpSync(two, copy, { recursive: true });
  const c2 = await train(['--out', two, '--resume', '--stop-at', '6', '--nproc', '2']);
  assert.equal(c2.status, 0, c2.stderr);
  const c1 = await train(['--out', copy, '--resume', '--stop-at', '6']);
  assert.equal(c1.status, 0, c1.stderr);
  assert.match(c1.stderr, /resuming from .*step-00000004 \(step 4\)/);
  for (const step of [5, 6]) {
    const l2 = losses(two).get(step)!, l1 = losses(copy).get(step)!;
    assert.ok(Math.abs(l1 - l2) <= 1e-5 * l2, `step ${step}: resumed in 1 process ${l1}, in 2 ranks ${l2}`);
  }
  const trainer = JSON.parse(readFileSync(join(copy, 'checkpoints', 'step-00000006', 'trainer.json'), 'utf8'));
  assert.equal(trainer.dataPosition, 6);
  assert.equal(trainer.batchSize, 6, 'the checkpoint records the global batch');
});

/** Starts a 2-rank run and SIGKILLs rank 1 once step 6's checkpoint exists. */
function killedRun(out: string, extra: string[]): Promise<Run & { killed: boolean }> {
  let killed = false;
  // --progress-every 0: a line per step, so the check below runs every step.
  return train(['--steps', '400', '--save-every', '3', '--progress-every', '0', '--out', out, '--nproc', '2', ...extra], (_stderr, pid) => {
    if (killed || !listCheckpoints(out).some((c) => c.step >= 6)) return;
    const r1 = ranksOf(pid).find((r) => r.rank === 1);
    if (r1 === undefined) return;
    killed = true;
    process.kill(r1.pid, 'SIGKILL');
  }).then((r) => ({ ...r, killed }));
}

test('a rank killed with SIGKILL fails m6 train --nproc 2 (non-zero, the rank named, the last checkpoint intact); --max-restarts 1 finishes the run', { skip: skip || (!existsSync('/proc/self/environ') && 'needs /proc'), timeout: 300_000 }, async () => {
  const out = join(dir, 'killed');
  const t0 = Date.now();
  const r = await killedRun(out, []);
  assert.ok(r.killed, `rank 1 was never killed: ${r.stderr.slice(-2000)}`);
  assert.notEqual(r.status, 0, r.stderr);
  assert.match(r.stderr, /training failed: rank 1 \(local rank 1, pid \d+\) was killed by SIGKILL/);
  assert.match(r.stderr, /the newest checkpoint is .*step-\d+ \(continue with --resume\)/);
  assert.ok(Date.now() - t0 < 120_000);
  const last = listCheckpoints(out).at(-1)!;
  assert.ok(last.step >= 6 && last.step < 400, `last checkpoint at step ${last.step}`);
  const weights = loadSafetensors(join(last.dir, 'model.safetensors')).tensors;
  assert.ok(weights.size > 0, 'the last checkpoint loads');
  for (const t of weights.values()) t.dispose();

  const again = join(dir, 'restarted');
  const s = await killedRun(again, ['--max-restarts', '1', '--steps', '30']);
  assert.ok(s.killed);
  assert.equal(s.status, 0, s.stderr.slice(-3000));
  assert.match(s.stderr, /m6 launch: rank 1 .* was killed by SIGKILL/);
  assert.match(s.stderr, /restarting all 2 ranks \(restart 1 of 1\)/);
  assert.match(s.stderr, /resuming from .*step-\d+/);
  assert.match(s.stdout, /done: step 30/);
  assert.equal(listCheckpoints(again).at(-1)!.step, 30);
});

test('plain m6 train with torchrun\'s environment set by hand joins the job; ranks started with other flags are refused, naming the setting', { skip, timeout: 120_000 }, async () => {
  const { freePort } = await import('../../src/distributed/launch.js');
  const port = await freePort();
  const out = join(dir, 'by-hand');
  const rank = (r: number, batch: string) => new Promise<Run>((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/m6.js'), 'train', ...common, '--batch-size', batch, '--steps', '2', '--out', out], {
      cwd: repoRoot, env: { ...env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(r), LOCAL_RANK: String(r) },
    });
    let stdout = '', stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status, signal) => { clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
  });
  const [r0, r1] = await Promise.all([rank(0, '6'), rank(1, '4')]);
  for (const r of [r0, r1]) {
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /m6: data parallel: the ranks must train with the same settings, but rank 1's batchSize differs from rank 0's/);
  }
  assert.deepEqual(listCheckpoints(out), []);
});
