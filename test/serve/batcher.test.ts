// The batcher at its own level (TGI's queue tests): nothing runs for an empty queue; a full batch
// starts at once; a partial one after maxWait; the queue bound sheds with a Retry-After; an aborted
// or timed-out entry leaves the queue and never runs; a running batch that no entry waits for any
// more is told to stop; a failing batch errors only its entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError, Batcher, ClosedError, DeadlineError, Lane, QueueFullError } from '../../src/serve/batcher.js';

function recorder(o: { maxBatchSize?: number; maxWaitMs?: number; maxQueue?: number; delayMs?: number; fail?: (xs: number[]) => boolean; lane?: Lane } = {}) {
  const batches: number[][] = [];
  const b = new Batcher<number, number>({
    name: 'test', maxBatchSize: o.maxBatchSize ?? 4, maxWaitMs: o.maxWaitMs ?? 5, maxQueue: o.maxQueue ?? 100,
    ...(o.lane !== undefined ? { lane: o.lane } : {}),
    run: async (xs) => {
      batches.push(xs);
      if (o.delayMs) await sleep(o.delayMs);
      if (o.fail?.(xs)) throw new Error(`batch ${xs.join(',')} failed`);
      return xs.map((x) => x * 10);
    },
  });
  return { b, batches };
}

test('an empty queue runs nothing; close on it returns at once', async () => {
  const { b, batches } = recorder();
  await sleep(20);
  assert.equal(b.depth, 0);
  await b.close();
  assert.deepEqual(batches, []);
  await assert.rejects(b.submit(1), ClosedError);
});

test('requests arriving together run as one batch, at most maxBatchSize, in order', async () => {
  const { b, batches } = recorder({ maxBatchSize: 4, maxWaitMs: 20 });
  const out = await Promise.all([1, 2, 3, 4, 5, 6].map((x) => b.submit(x)));
  assert.deepEqual(out, [10, 20, 30, 40, 50, 60]);
  assert.deepEqual(batches, [[1, 2, 3, 4], [5, 6]]);
});

test('a full batch starts without waiting; a partial one waits maxWait for company', async () => {
  const { b, batches } = recorder({ maxBatchSize: 2, maxWaitMs: 300 });
  let t = performance.now();
  await Promise.all([b.submit(1), b.submit(2)]);
  assert.ok(performance.now() - t < 250, `full batch ran after ${performance.now() - t} ms`);
  t = performance.now();
  const lone = b.submit(3);
  await sleep(30);
  assert.equal(batches.length, 1, 'a lone entry waits for others to join');
  const late = b.submit(4);   // joins within the wait
  assert.deepEqual(await Promise.all([lone, late]), [30, 40]);
  assert.deepEqual(batches, [[1, 2], [3, 4]]);
});

test('past maxQueue a submit is shed at once with a Retry-After; the queued ones still run', async () => {
  const { b } = recorder({ maxBatchSize: 1, maxWaitMs: 0, maxQueue: 2, delayMs: 30 });
  const first = b.submit(1);
  await sleep(5);                     // its batch has started: it no longer counts as queued
  const queued = [b.submit(2), b.submit(3)];
  await assert.rejects(b.submit(4), (e: Error) => e instanceof QueueFullError && e.retryAfterS >= 1 && /queue is full/.test(e.message));
  assert.deepEqual(await Promise.all([first, ...queued]), [10, 20, 30]);
});

test('an aborted entry leaves the queue and its work never runs', async () => {
  const lane = new Lane();
  const { b, batches } = recorder({ maxBatchSize: 1, maxWaitMs: 0, delayMs: 40, lane });
  const running = b.submit(1);
  const ac = new AbortController();
  const dropped = b.submit(2, { signal: ac.signal });
  const kept = b.submit(3);
  await sleep(5);
  ac.abort();
  await assert.rejects(dropped, AbortedError);
  assert.deepEqual(await Promise.all([running, kept]), [10, 30]);
  assert.deepEqual(batches, [[1], [3]], 'the aborted input was never run');
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(b.submit(9, { signal: pre.signal }), AbortedError);
});

test('a running batch is told to stop once none of its entries wants an output, not before', async () => {
  const seen: Array<{ xs: number[]; stoppedAt: number | undefined }> = [];
  const b = new Batcher<number, number>({
    name: 'test', maxBatchSize: 2, maxWaitMs: 5, maxQueue: 10,
    // A run of ten steps that checks its signal between them, as a generation does.
    run: async (xs, signal) => {
      const record: { xs: number[]; stoppedAt: number | undefined } = { xs, stoppedAt: undefined };
      seen.push(record);
      for (let step = 0; step < 10; step++) {
        if (signal.aborted) { record.stoppedAt = step; throw signal.reason as Error; }
        await sleep(10);
      }
      return xs.map((x) => x * 10);
    },
  });
  const one = new AbortController(), two = new AbortController();
  const a = b.submit(1, { signal: one.signal });
  const kept = b.submit(2, { signal: two.signal });
  await sleep(30);
  one.abort();   // its batch-mate still wants an answer: the batch goes on
  await assert.rejects(a, AbortedError);
  assert.equal(await kept, 20);
  assert.equal(seen[0]!.stoppedAt, undefined);
  const gone = new AbortController();
  const c = b.submit(3, { signal: gone.signal }), late = b.submit(4, { timeoutMs: 40 });
  await sleep(30);
  gone.abort();   // the other entry's deadline passes next: then no one waits for the batch
  await assert.rejects(c, AbortedError);
  await assert.rejects(late, (e: Error) => e instanceof DeadlineError && e.stage === 'running');
  await sleep(25);
  assert.ok(seen[1]!.stoppedAt !== undefined && seen[1]!.stoppedAt < 10, `the abandoned batch stopped at step ${seen[1]!.stoppedAt}`);
});

test('deadlines: queued too long is 503-kind (queued), running too long 504-kind (running)', async () => {
  const { b, batches } = recorder({ maxBatchSize: 1, maxWaitMs: 0, delayMs: 80 });
  const slow = b.submit(1, { timeoutMs: 30 });
  const waiting = b.submit(2, { timeoutMs: 30 });
  await assert.rejects(slow, (e: Error) => e instanceof DeadlineError && e.stage === 'running');
  await assert.rejects(waiting, (e: Error) => e instanceof DeadlineError && e.stage === 'queued');
  await sleep(100);
  assert.deepEqual(batches, [[1]], 'the entry that timed out in the queue never ran');
});

test('a failing batch errors only its own entries; the next batch runs', async () => {
  const { b } = recorder({ maxBatchSize: 2, maxWaitMs: 5, fail: (xs) => xs.includes(2) });
  const results = await Promise.allSettled([b.submit(1), b.submit(2), b.submit(3), b.submit(4)]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'fulfilled', 'fulfilled']);
  assert.match(String((results[0] as PromiseRejectedResult).reason), /batch 1,2 failed/);
  assert.equal(await b.submit(5), 50);
});

test('batchers sharing a lane never run two batches at once; close drains what is queued', async () => {
  const lane = new Lane();
  let running = 0, most = 0;
  const mk = (name: string) => new Batcher<number, number>({
    name, maxBatchSize: 2, maxWaitMs: 1, maxQueue: 10, lane,
    run: async (xs) => { running++; most = Math.max(most, running); await sleep(10); running--; return xs; },
  });
  const a = mk('a'), c = mk('c');
  const all = Promise.all([1, 2, 3].flatMap((x) => [a.submit(x), c.submit(x)]));
  await Promise.all([a.close(), c.close()]);
  assert.equal((await all).length, 6);
  assert.equal(most, 1);
});

test('a batch queued behind another waits longer for requests expect()ed (still reading their inputs), and no longer once they are in', async () => {
  for (const announced of [true, false]) {
    const { b, batches } = recorder({ maxBatchSize: 4, maxWaitMs: 1, delayMs: 200 });
    await b.submit(0);                     // the batcher learns a batch takes ~200 ms: short wait ~20 ms, long ~100 ms
    const a = b.submit(1);                 // runs 200 ms
    await sleep(10);
    const queued = b.submit(2);            // behind it
    const arrived = announced ? b.expect() : () => undefined;
    await a;
    await sleep(50);                       // past the short wait, within the long one
    arrived();
    const late = b.submit(3);
    assert.deepEqual(await Promise.all([queued, late]), [20, 30]);
    assert.deepEqual(batches.slice(1), announced ? [[1], [2, 3]] : [[1], [2], [3]], announced ? 'the expected request joined' : 'unannounced, the queued one ran alone');
    await b.close();
  }
});

/**
 * A continuous runner over numbers: each row needs `x % 10` steps of 5 ms (at least one) and
 * answers x·10; rows whose caller is gone are dropped between steps; x = 99 fails its join.
 */
function continuousRecorder(o: { maxBatchSize?: number; lane?: Lane; throwAtStep?: number } = {}) {
  const joins: number[][] = [];
  let sessions = 0, steps = 0;
  const b = new Batcher<number, number>({
    name: 'rows', maxBatchSize: o.maxBatchSize ?? 4, maxWaitMs: 1, maxQueue: 100, ...(o.lane !== undefined ? { lane: o.lane } : {}),
    continuous: async (session) => {
      sessions++;
      const rows: Array<{ e: ReturnType<typeof session.take>[number]; left: number }> = [];
      for (;;) {
        for (const r of [...rows]) if (r.e.gone) rows.splice(rows.indexOf(r), 1);
        const joining = session.take((o.maxBatchSize ?? 4) - rows.length);
        if (joining.length > 0) joins.push(joining.map((e) => e.input));
        for (const e of joining) {
          if (e.input === 99) e.fail(new Error('row 99 cannot join'));
          else rows.push({ e, left: Math.max(1, e.input % 10) });
        }
        if (rows.length === 0) return;
        await sleep(5);
        if (++steps === o.throwAtStep) throw new Error('the step failed');
        for (const r of [...rows]) if (--r.left === 0) { r.e.answer(r.e.input * 10); rows.splice(rows.indexOf(r), 1); }
      }
    },
  });
  return { b, joins, sessions: () => sessions };
}

test('continuous: entries that queue while a session runs join it between steps and are answered as each finishes', async () => {
  const { b, joins, sessions } = continuousRecorder({ maxBatchSize: 4 });
  const order: number[] = [];
  const long = b.submit(8).then((v) => { order.push(8); return v; });
  await sleep(12);                                  // the session runs the long row
  const short = [b.submit(1), b.submit(2)].map((p, i) => p.then((v) => { order.push(i + 1); return v; }));
  assert.deepEqual(await Promise.all([long, ...short]), [80, 10, 20]);
  assert.equal(sessions(), 1, 'one session served all three');
  assert.deepEqual(joins, [[8], [1, 2]]);
  assert.deepEqual(order, [1, 2, 8], 'the short rows are answered before the long one that started first');
  // A join that fails fails only its own entry; the others in the session go on.
  const [bad, good] = [b.submit(99), b.submit(3)];
  await assert.rejects(bad, /row 99 cannot join/);
  assert.equal(await good, 30);
  // At most maxBatchSize rows run at once; the rest join as rows leave.
  await Promise.all([1, 2, 3, 4, 5, 6].map((x) => b.submit(x)));
  assert.ok(joins.slice(-3).every((j) => j.length <= 4), JSON.stringify(joins));
  await b.close();
});

test('continuous: a session stops taking rows once another task waits for the lane, and a throwing session fails its rows', async () => {
  const lane = new Lane();
  const { b, joins } = continuousRecorder({ maxBatchSize: 8, lane });
  const other = new Batcher<number, number>({ name: 'other', maxBatchSize: 4, maxWaitMs: 0, maxQueue: 10, lane, run: async (xs) => xs });
  const first = b.submit(9);
  await sleep(8);
  const otherDone = other.submit(1).then(() => performance.now());
  await sleep(8);
  const late = b.submit(1);                         // queued after the other task: not taken by this session
  const firstDone = await first.then(() => performance.now());
  assert.ok(await otherDone >= firstDone, 'the other task ran after the session drained');
  assert.equal(await late, 10);
  assert.deepEqual(joins, [[9], [1]], 'the late row ran in a session of its own, after the other task');
  await other.close();
  await b.close();

  const { b: failing } = continuousRecorder({ throwAtStep: 2 });
  const rows = [failing.submit(5), failing.submit(6)];
  for (const r of rows) await assert.rejects(r, /the step failed/);
  assert.equal(await failing.submit(1), 10, 'the next session runs');
  await failing.close();
});

test('continuous: an aborted entry leaves its session at the next step', async () => {
  const { b } = continuousRecorder();
  const gone = new AbortController();
  const abandoned = b.submit(9, { signal: gone.signal });
  await sleep(8);
  gone.abort();
  await assert.rejects(abandoned, AbortedError);
  assert.equal(await b.submit(2), 20);
  await b.close();
});
