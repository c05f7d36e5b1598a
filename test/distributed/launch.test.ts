// The launcher alone, with small Node scripts as ranks (no libtorch): torchrun's environment, the
// first failure stops the others and is the job's (code or signal, last stderr lines), restarts with
// their count, and SIGTERM passed to every rank once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, describeFailure } from '../../src/distributed/launch.js';

const quiet = { log: () => {}, killGraceMs: 2000 };
const node = (script: string) => () => ['-e', script];

test('launch: every rank gets torchrun\'s environment and one thread share; all exit 0 → ok', async () => {
  const threads = process.env.OMP_NUM_THREADS ?? '3';  // a caller's own OMP_NUM_THREADS wins
  const r = await launch({
    ...quiet, nproc: 2, nnodes: 2, nodeRank: 1, masterAddr: 'host0', masterPort: 1234, maxRestarts: 0, threadsPerRank: 3,
    // Node rank 1 of 2, 2 ranks each: global ranks 2 and 3 of 4. A rank whose environment is wrong fails with it on stderr.
    args: node(`const e = process.env, l = Number(e.LOCAL_RANK);
      const got = [e.RANK, e.WORLD_SIZE, e.LOCAL_WORLD_SIZE, e.GROUP_RANK, e.MASTER_ADDR, e.MASTER_PORT, e.OMP_NUM_THREADS, e.TORCHELASTIC_RESTART_COUNT].join(' ');
      const want = [2 + l, 4, 2, 1, 'host0', 1234, '${threads}', 0].join(' ');
      if (got !== want) { console.error('env: ' + got + ' want ' + want); process.exit(9); }`),
  });
  assert.deepEqual(r, { status: 'ok', restarts: 0, exitCode: 0 }, r.failure ? describeFailure(r.failure) : '');
});

test('launch: the first rank to fail stops the others; its code and last stderr lines are the job\'s', async () => {
  const t0 = Date.now();
  const r = await launch({
    ...quiet, nproc: 3, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', maxRestarts: 0,
    // Rank 1 fails at once; the others would run for a minute.
    args: node(`if (process.env.RANK === '1') { console.error('loading'); console.error('boom: bad shard'); process.exit(3); } setTimeout(() => {}, 60000)`),
  });
  assert.equal(r.status, 'failed');
  assert.equal(r.exitCode, 3);
  assert.equal(r.failure?.rank, 1);
  assert.deepEqual(r.failure?.tail, ['loading', 'boom: bad shard']);
  assert.match(describeFailure(r.failure!), /^rank 1 \(local rank 1, pid \d+\) exited with code 3; its last lines:\n {2}loading\n {2}boom: bad shard$/);
  assert.ok(Date.now() - t0 < 20_000, 'the others were stopped, not waited for');
});

test('launch: a failure restarts every rank (TORCHELASTIC_RESTART_COUNT counts), up to maxRestarts', async () => {
  const lines: string[] = [];
  // Rank 0 is killed by a signal on the first start; the second start succeeds.
  const ok = await launch({
    ...quiet, nproc: 2, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', maxRestarts: 2, log: (l) => lines.push(l),
    args: (restart) => ['-e', `if (${restart} === 0 && process.env.RANK === '0') process.kill(process.pid, 'SIGKILL'); setTimeout(() => {}, 200)`],
  });
  assert.equal(ok.status, 'ok');
  assert.equal(ok.restarts, 1);
  assert.match(lines.join('\n'), /rank 0 .* was killed by SIGKILL/);
  assert.match(lines.join('\n'), /restarting all 2 ranks \(restart 1 of 2\)/);
  const failed = await launch({ ...quiet, nproc: 1, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', maxRestarts: 1, args: node('process.exit(5)') });
  assert.deepEqual([failed.status, failed.restarts, failed.exitCode], ['failed', 1, 5]);
});

test('launch: SIGTERM to the launcher reaches every rank once; the job is interrupted, not restarted', async () => {
  const job = launch({
    ...quiet, nproc: 2, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', maxRestarts: 3,
    // Each rank says it is up, then exits 130 on the first SIGTERM (as m6 train does after saving).
    args: node(`process.on('SIGTERM', () => process.exit(130)); console.error('up'); setTimeout(() => {}, 60000)`),
  });
  await new Promise((r) => setTimeout(r, 1500));
  process.kill(process.pid, 'SIGTERM');
  const r = await job;
  assert.deepEqual([r.status, r.restarts, r.exitCode], ['interrupted', 0, 130]);
});
