// c10d process groups across real processes: 2 and 3 ranks on loopback, exact values for every
// collective, and the failures a cluster has (a peer that dies, one that never arrives) as bounded
// rejections that name the collective and the ranks. Each scenario lives in worker.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableBackends } from '../../src/distributed/index.js';
import { describeRank, runRanks, type RankResult } from './ranks.js';

const backends = availableBackends();
const skip = backends.gloo ? false : `c10d Gloo backend not built: ${backends.reason}`;

function ok(rs: RankResult[]): Record<string, unknown>[] {
  for (const r of rs) assert.ok(r.code === 0 && r.out, `a rank failed: ${describeRank(r)}`);
  return rs.map((r) => r.out!);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

for (const world of [2, 3]) {
  test(`${world} ranks: allReduce sum/avg/max/min, broadcast from 0 and 1, allGather, allToAll with variable splits, barrier (exact values)`,
    { skip, timeout: 60_000 }, async (t) => {
      const ac = new AbortController();
      t.after(() => ac.abort());
      const outs = ok(await runRanks('collectives', world, { killAfterMs: 50_000 }, ac.signal));
      const tri = (world * (world + 1)) / 2;
      for (const [rank, o] of outs.entries()) {
        const at = `rank ${rank} of ${world}`;
        assert.equal(o.rank, rank, at);
        assert.equal(o.worldSize, world, at);
        assert.deepEqual(o.sum, [tri, 10 * tri, -(world * (world - 1)) / 2, world], `${at}: sum`);
        assert.deepEqual(o.avg, [(world + 1) / 2, (5 * (world + 1)), -(world - 1) / 2, 2].map((x) => Math.fround(x)), `${at}: avg`);
        assert.deepEqual(o.max, [world, 10 * world, 0, 3], `${at}: max`);
        assert.deepEqual(o.min, [1, 10, -(world - 1), 4], `${at}: min`);
        assert.deepEqual(o.sumInt, [(world * (world - 1)) / 2, world * 2 ** 40 + (world * (world - 1)) / 2], `${at}: int64 sum`);
        assert.deepEqual(o.bcast0, [1, 2], `${at}: broadcast from rank 0`);
        assert.deepEqual(o.bcast1, [101, 102], `${at}: broadcast from rank 1`);
        assert.deepEqual(o.gather, range(world).map((r) => [r, r + 0.5]), `${at}: allGather`);
        assert.deepEqual(o.gatherShapes, range(world).map(() => [1, 2]), `${at}: allGather shapes`);
        assert.deepEqual(o.gatherEmpty, range(world).map(() => [0, 3]), `${at}: allGather of an empty tensor`);
        // From each source s, in source order, rows [s, rank, i] for i < s + rank + 1.
        const expected = range(world).flatMap((s) => range(s + rank + 1).map((i) => [s, rank, i]));
        assert.deepEqual(o.a2aSplits, range(world).map((s) => s + rank + 1), `${at}: allToAll output splits`);
        assert.deepEqual((o.a2a as number[][]).map((row) => row.map(Number)), expected, `${at}: allToAll (splits learnt)`);
        assert.deepEqual(o.a2b, expected, `${at}: allToAll (splits given)`);
        assert.deepEqual(o.a2bSplits, range(world).map((s) => s + rank + 1), `${at}: allToAll output splits (given)`);
        assert.deepEqual(o.a2bShape, [expected.length, 3], `${at}: allToAll shape`);
        assert.deepEqual(o.pipelined, { a2a: expected, sum: [tri], bcast: [world - 1 + 7] }, `${at}: collectives called back to back`);
        if (rank !== 0) assert.ok((o.barrierWaitedMs as number) >= 200, `${at}: left the barrier after ${o.barrierWaitedMs} ms, before rank 0 (300 ms late) arrived`);
        assert.match(o.badSplits as string, new RegExp(`allToAll inputSplits has ${world + 1} entries; it needs one per rank \\(${world}\\)`), at);
        assert.match(o.badRoot as string, new RegExp(`broadcast root must be a rank in 0\\.\\.${world - 1}, got ${world}`), at);
        assert.match(o.avgInt as string, /allReduce\(avg\) needs a floating-point tensor, got int64/, at);
        assert.deepEqual(o.after, [world, world], `${at}: the group still works after refused calls`);
      }
    });
}

for (const world of [2, 3]) {
  test(`${world} ranks: a rank killed inside an allReduce makes the others reject, naming the collective and the ranks, within the timeout`,
    { skip, timeout: 60_000 }, async (t) => {
      const ac = new AbortController();
      t.after(() => ac.abort());
      const timeoutMs = 8000;
      const rs = await runRanks('peerDies', world, { timeoutMs, killAfterMs: 40_000 }, ac.signal);
      const dead = rs[world - 1]!;
      assert.equal(dead.signal, 'SIGKILL', describeRank(dead));
      for (const r of rs.slice(0, -1)) {
        assert.ok(r.code === 0 && r.out, describeRank(r));
        const e = r.out.error as Record<string, unknown> | undefined;
        assert.ok(e, `rank ${r.rank} did not reject: ${JSON.stringify(r.out)}`);
        assert.equal(e.collective, 'allReduce');
        assert.equal(e.rank, r.rank);
        assert.equal(e.worldSize, world);
        assert.match(e.message as string, new RegExp(`allReduce\\(sum\\) of a \\[16777216\\] float32 tensor failed on rank ${r.rank} of ${world} \\(peers [0-9, ]+`), String(e.message));
        assert.ok((e.ms as number) < timeoutMs + 3000, `rejected after ${e.ms} ms (timeout ${timeoutMs})`);
        const next = r.out.next as Record<string, unknown>;
        assert.match(next.message as string, /unusable since an earlier collective failed \(allReduce\(sum\) of a \[16777216\] float32 tensor/, String(next.message));
        assert.ok((next.ms as number) < 100, `the refusal took ${next.ms} ms`);
      }
    });
}

test('a rank that calls process.exit() with a collective pending exits with its code (no abort, no hang); its peer rejects', { skip, timeout: 60_000 }, async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const timeoutMs = 5000;
  const [r0, r1] = await runRanks('exitWhilePending', 2, { timeoutMs, killAfterMs: 30_000 }, ac.signal);
  assert.equal(r1!.code, 7, describeRank(r1!));
  assert.ok(r0!.code === 0 && r0!.out, describeRank(r0!));
  const b = r0!.out.barrier as Record<string, unknown>;
  assert.equal(typeof b, 'object', `rank 0's barrier resolved: ${JSON.stringify(r0!.out)}`);
  assert.equal(b.collective, 'barrier');
  assert.match(b.message as string, /barrier failed on rank 0 of 2 \(peers 1/);
  assert.ok((b.ms as number) < timeoutMs + 3000, `rejected after ${b.ms} ms`);
});

test('a peer that never arrives: init rejects with ERR_M6_DIST_TIMEOUT after timeoutMs, naming the rank and world size', { skip, timeout: 30_000 }, async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const timeoutMs = 1500;
  const [r0] = await runRanks('initTimeout', 2, { ranks: [0], timeoutMs, killAfterMs: 20_000 }, ac.signal);
  assert.ok(r0!.code === 0 && r0!.out, describeRank(r0!));
  const e = r0!.out.init as Record<string, unknown>;
  assert.equal(typeof e, 'object', `init resolved: ${JSON.stringify(r0!.out)}`);
  assert.equal(e.code, 'ERR_M6_DIST_TIMEOUT', String(e.message));
  assert.equal(e.collective, 'init');
  assert.match(e.message as string, /init failed on rank 0 of 2 \(peers 1; gloo, rendezvous 127\.0\.0\.1:\d+\)/);
  assert.match(e.message as string, /waiting for rank\(s\) 1 \(1 of 2 arrived at the rendezvous\)/);
  assert.match(e.message as string, /not every rank arrived within timeoutMs=1500/);
  assert.ok((e.ms as number) >= timeoutMs - 100 && (e.ms as number) < timeoutMs + 3000, `rejected after ${e.ms} ms`);
});

test('a peer that joins but never calls the collective: allReduce rejects with ERR_M6_DIST_TIMEOUT within the timeout', { skip, timeout: 30_000 }, async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const timeoutMs = 1500;
  const [r0] = await runRanks('collectiveTimeout', 2, { timeoutMs, killAfterMs: 20_000 }, ac.signal);
  assert.ok(r0!.code === 0 && r0!.out, describeRank(r0!));
  const e = r0!.out.allReduce as Record<string, unknown>;
  assert.equal(typeof e, 'object', `allReduce resolved: ${JSON.stringify(r0!.out)}`);
  assert.equal(e.code, 'ERR_M6_DIST_TIMEOUT', String(e.message));
  assert.equal(e.collective, 'allReduce');
  assert.match(e.message as string, /allReduce\(sum\) of a \[8\] float32 tensor failed on rank 0 of 2 \(peers 1/);
  assert.ok((e.ms as number) >= timeoutMs - 100 && (e.ms as number) < timeoutMs + 3000, `rejected after ${e.ms} ms`);
});

test('the event loop keeps running while a collective waits for a late peer (timers fire)', { skip, timeout: 30_000 }, async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const [r0, r1] = await runRanks('responsive', 2, { killAfterMs: 20_000 }, ac.signal);
  assert.ok(r0!.code === 0 && r0!.out, describeRank(r0!));
  assert.ok(r1!.code === 0, describeRank(r1!));
  const o = r0!.out;
  assert.ok((o.ms as number) >= 400, `the allReduce took ${o.ms} ms; the peer was 600 ms late`);
  assert.ok((o.ticks as number) >= 20, `only ${o.ticks} 10-ms timer ticks fired during a ${o.ms} ms collective`);
  assert.deepEqual(o.first, [3, 3]);
});
