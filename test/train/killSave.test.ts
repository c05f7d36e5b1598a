// kill -9 in the middle of checkpoint writes, many times: a child process does nothing but save
// checkpoints (each step twice, so replacing a step is under fire too) and is SIGKILLed at seeded
// random moments once it is saving; after each kill the newest checkpoint listed passes every
// check (JSON, headers, the sha256 of its tensor files) and loads. test/cli/kill9.test.ts does the
// same to a whole training run and its resumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Rng } from '../../src/data/random.js';
import { checkCheckpoint, listCheckpoints } from '../../src/train/checkpoint.js';
import { loadRun } from '../../src/pipelines/runFolder.js';
import { tempDir } from '../data/fixtures.js';

const KILLS = 15;
const loop = fileURLToPath(new URL('./saveLoop.js', import.meta.url));

/** Starts the save loop and kills it `delayMs` after its first save; resolves once it is gone. */
function killWhileSaving(runDir: string, delayMs: number): Promise<{ killed: boolean; saves: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [loop], { env: { ...process.env, M6_SAVE_LOOP_RUN: runDir } });
    let saves = 0, stderr = '', killed = false, armed = false;
    child.stdout.on('data', (d: Buffer) => {
      saves += d.toString().split('\n').filter((l) => l.startsWith('saved ')).length;
      if (!armed && saves > 0) { armed = true; setTimeout(() => { killed = child.kill('SIGKILL'); }, delayMs); }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve({ killed, saves, stderr }));
  });
}

test(`kill -9 during checkpoint writes, ${KILLS} times: the newest checkpoint listed is always whole`, async (t) => {
  const dir = tempDir(t, 'm6-killsave-');
  const rng = new Rng(7);
  let midWrite = 0, saves = 0, newestStep = 0;
  for (let i = 0; i < KILLS; i++) {
    const r = await killWhileSaving(dir, rng.uniform(0, 250));
    assert.ok(r.killed, `the save loop ended by itself:\n${r.stderr}`);
    saves += r.saves;
    if (readdirSync(join(dir, 'checkpoints')).some((n) => n.startsWith('.'))) midWrite++;
    const newest = listCheckpoints(dir).at(-1)!;
    assert.ok(newest.step >= newestStep, `the newest checkpoint went back from step ${newestStep} to ${newest.step}`);
    newestStep = newest.step;
    await checkCheckpoint(newest.dir);
    const run = await loadRun(dir);
    assert.equal(run.trainer.step, newest.step);
    run.model.dispose();
  }
  t.diagnostic(`${KILLS} kills during ${saves} checkpoint saves; ${midWrite} left a cut-short write (a hidden temp, replaced or pruned folder) behind; every newest checkpoint whole (sha256 checked) and loaded, up to step ${newestStep}`);
  assert.ok(midWrite > 0, 'no kill landed inside a save: the test shows nothing');
});
