// Two hosts, made by the test: two network namespaces joined by a veth pair (10.203.0.1 and .2), so
// the ranks reach each other only over that link, as two machines on one network would. Rank 0
// runs `m6 train --nnodes 2 --node-rank 0` in the first, rank 1 `--node-rank 1` in the second, each
// with its own run folder, MASTER_ADDR the first one's address and GLOO_SOCKET_IFNAME its veth end
// (what a user sets on a multi-homed host). The job's losses must be the one-process run's.
// Skipped, with the reason, where namespaces cannot be made (not root, no iproute2, a sandbox that forbids them).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableBackends } from '../../src/distributed/index.js';
import { readMetrics, type TrainMetric } from '../../src/train/metrics.js';
import { m6, writeTinyConfig } from '../data/fixtures.js';

const tag = String(process.pid % 100000);
const hosts = [{ ns: `m6h0-${tag}`, dev: `m6v0-${tag}`, addr: '10.203.0.1' }, { ns: `m6h1-${tag}`, dev: `m6v1-${tag}`, addr: '10.203.0.2' }] as const;

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.error?.message ?? r.stderr ?? '').trim() };
}

/** Makes the two namespaces and their link; returns why not where it cannot. */
function makeHosts(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns)';
  const steps: string[][] = [
    ['netns', 'add', hosts[0].ns], ['netns', 'add', hosts[1].ns],
    ['link', 'add', hosts[0].dev, 'type', 'veth', 'peer', 'name', hosts[1].dev],
    ...hosts.flatMap((h) => [
      ['link', 'set', h.dev, 'netns', h.ns], ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.dev],
      ['-n', h.ns, 'link', 'set', h.dev, 'up'], ['-n', h.ns, 'link', 'set', 'lo', 'up'],
    ]),
  ];
  for (const s of steps) {
    const r = ip(...s);
    if (!r.ok) return `could not make network namespaces (ip ${s.join(' ')}: ${r.err})`;
  }
  return undefined;
}

function removeHosts(): void {
  for (const h of hosts) ip('netns', 'del', h.ns);  // the veth pair goes with its namespaces
}

const backends = availableBackends();
let skip: string | false = backends.gloo ? false : `c10d Gloo backend not built: ${backends.reason}`;
let dir = '';
let common: string[] = [];

before(async () => {
  if (skip) return;
  const why = makeHosts();
  if (why !== undefined) { removeHosts(); skip = why; return; }
  dir = mkdtempSync(join(tmpdir(), 'm6-hosts-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '40', '--seed', '2', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'), { maxTextLen: 64 });
  common = ['train', '--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.8,test:0.2', '--config', join(dir, 'tiny.json'),
    '--batch-size', '6', '--vocab', '400', '--workers', '0', '--seed', '3', '--tasks', 'describe,answer', '--steps', '4'];
});

after(() => {
  removeHosts();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const losses = (runDir: string): Map<number, number> =>
  new Map(readMetrics(join(runDir, 'metrics.jsonl')).filter((m): m is TrainMetric => m.kind === 'train').map((m) => [m.step, m.loss]));

test('two hosts (network namespaces joined by a veth pair): m6 train --nnodes 2 trains as one process does', { timeout: 400_000 }, async (t) => {
  if (skip) { t.skip(skip); return; }
  const job = (r: 0 | 1) => m6([...common, '--out', join(dir, `host${r}`), '--nnodes', '2', '--node-rank', String(r), '--nproc', '1', '--master-addr', hosts[0].addr,
    '--master-port', '29533'], { env: { OMP_NUM_THREADS: '1', GLOO_SOCKET_IFNAME: hosts[r].dev }, via: ['ip', 'netns', 'exec', hosts[r].ns], timeoutMs: 150_000 });
  const [h0, h1] = await Promise.all([job(0), job(1)]);
  assert.equal(h0.status, 0, `host 0: ${h0.stderr.slice(-3000)}`);
  assert.equal(h1.status, 0, `host 1: ${h1.stderr.slice(-3000)}`);
  assert.match(h0.stdout, /done: step 4/);
  const start = readMetrics(join(dir, 'host0', 'metrics.jsonl')).find((m) => m.kind === 'event' && m.event === 'start');
  assert.match(JSON.stringify(start), /; 2 ranks/, 'one job of two ranks, not two runs');
  const alone = await m6([...common, '--out', join(dir, 'alone')], { env: { OMP_NUM_THREADS: '1' }, timeoutMs: 150_000 });
  assert.equal(alone.status, 0, alone.stderr.slice(-3000));
  const two = losses(join(dir, 'host0')), one = losses(join(dir, 'alone'));
  assert.deepEqual([...two.keys()], [1, 2, 3, 4], 'host 0 (rank 0) wrote the metrics');
  for (const [step, l] of one) assert.ok(Math.abs(l - two.get(step)!) <= 1e-5 * l, `step ${step}: one process ${l}, two hosts ${two.get(step)}`);
});
