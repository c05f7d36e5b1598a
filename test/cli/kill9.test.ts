// kill -9 at any moment of a training run never corrupts a checkpoint: a tiny run that saves every
// step is SIGKILLed again and again at seeded random moments (while it starts, resumes, steps and
// writes checkpoints); after every kill the newest checkpoint listed loads whole, and the next
// `--resume` goes on from it. Writes are atomic (atomicFile.ts, saveCheckpoint): what a kill cuts
// short lives under a hidden temp name, which the next save clears away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/data/random.js';
import { checkCheckpoint, listCheckpoints } from '../../src/train/checkpoint.js';
import { loadRun } from '../../src/pipelines/runFolder.js';
import { repoRoot } from '../helpers.js';
import { m6, writeTinyConfig } from '../data/fixtures.js';

const KILLS = 20;
/** Past this, no new kill starts (the run's figures are reported either way). */
const BUDGET_MS = 75_000;

let dir = '';
let common: string[] = [];
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-kill9-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '12', '--seed', '5', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  common = ['train', '--data', join(dir, 'catalog', 'dataset.json'), '--config', writeTinyConfig(join(dir, 'tiny.json')), '--batch-size', '2', '--vocab', '300',
    '--workers', '0', '--tasks', 'describe', '--save-every', '1', '--keep', '2', '--progress-every', '0', '--out', join(dir, 'run')];
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `m6 …` and SIGKILLs it after `delayMs`; resolves with its stderr, whether the kill (not the process) ended it, and when it printed its first step. */
function runAndKill(args: string[], delayMs: number): Promise<{ stderr: string; killed: boolean; status: number | null; firstStepMs?: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [join(repoRoot, 'bin/m6.js'), ...args], { cwd: repoRoot });
    let stderr = '';
    let firstStepMs: number | undefined;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (firstStepMs === undefined && /step \d+\//.test(stderr)) firstStepMs = Date.now() - t0;
    });
    child.stdout.resume();
    let killed = false;
    const timer = setTimeout(() => { killed = child.kill('SIGKILL'); }, delayMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ stderr, killed, status, ...(firstStepMs !== undefined ? { firstStepMs } : {}) });
    });
  });
}

/** Hidden folders a cut-short write left in checkpoints/ (temp, replaced or pruned ones). */
function leftovers(): string[] {
  try { return readdirSync(join(dir, 'run', 'checkpoints')).filter((n) => n.startsWith('.')); } catch { return []; }
}

test(`kill -9 at ${KILLS} random moments: the newest checkpoint always loads, and --resume goes on from it`, async (t) => {
  const rng = new Rng(20);
  const started = Date.now();
  let kills = 0, midWrite = 0, resumes = 0, resumedAndStepped = 0, loads = 0, newestStep = 0;
  let startupMs = 3000;  // time to the first step, re-measured by every run that gets there
  for (let i = 0; i < KILLS && Date.now() - started < BUDGET_MS; i++) {
    const resuming = listCheckpoints(join(dir, 'run')).length > 0;
    // From early in the start (reading the checkpoint, writing the split) to well into the steps, each of which saves.
    const delay = rng.uniform(0.3 * startupMs, startupMs + 2500);
    const before = new Set(leftovers());
    const r = await runAndKill(resuming ? [...common, '--resume'] : [...common, '--steps', '100000'], delay);
    assert.ok(r.killed, `run ${i} ended by itself (status ${r.status}) before the kill at ${delay.toFixed(0)} ms:\n${r.stderr}`);
    kills++;
    if (r.firstStepMs !== undefined) startupMs = r.firstStepMs;
    if (leftovers().some((n) => !before.has(n))) midWrite++;
    if (resuming) {
      resumes++;
      const from = /resuming from .*step-(\d+) \(step (\d+)\)/.exec(r.stderr);
      if (from !== null && new RegExp(`step ${Number(from[2]) + 1}/`).test(r.stderr)) resumedAndStepped++;
    }
    const newest = listCheckpoints(join(dir, 'run')).at(-1);
    if (newest === undefined) continue;  // killed before its first checkpoint: the next run starts afresh
    assert.ok(newest.step >= newestStep, `the newest checkpoint went back from step ${newestStep} to ${newest.step}`);
    newestStep = newest.step;
    await checkCheckpoint(newest.dir);
    const run = await loadRun(join(dir, 'run'));
    assert.equal(run.trainer.step, newest.step);
    run.model.dispose();
    loads++;
  }
  const final = await m6([...common, '--resume', '--stop-at', String(newestStep + 2)]);
  assert.equal(final.status, 0, final.stderr);
  assert.match(final.stderr, new RegExp(`resuming from .*step-0*${newestStep} \\(step ${newestStep}\\)`));
  assert.match(final.stdout, new RegExp(`done: step ${newestStep + 2}; saved`));
  assert.deepEqual(leftovers(), [], 'the next save clears what the kills cut short');
  t.diagnostic(`${kills} kills (${midWrite} left a cut-short checkpoint write behind), ${resumes} resumes (${resumedAndStepped} got to train a step before their kill), ${loads} loads of the newest checkpoint, all whole; the last resume ran from step ${newestStep} to ${newestStep + 2} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  assert.ok(kills >= 10 && resumes >= 5 && resumedAndStepped >= 2, `too few kills (${kills}), resumes (${resumes}) or resumes that stepped (${resumedAndStepped}) to show anything`);
});
