// The curriculum over the task mixture: a task with a start takes no rows before its join step,
// then its share; a step-bounded run fixes the join steps up front, a time-bounded one joins a task
// when its share of the budget has passed, and a resumed run given the recorded steps replays the
// same batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataLoader, type Batch, type Example, type TaskSource } from '../../src/data/loader.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { parseTaskList } from '../../src/tasks/taskData.js';
import { ScheduledBatches } from '../../src/train/taskSchedule.js';

const tokenizer = Tokenizer.train(['a red dress', 'what colour is it?'], { vocabSize: 300, imageCodes: 16 });
const rows = (prefix: string, n: number): Example[] => Array.from({ length: n }, (_v, i) => ({ id: `${prefix}${i}`, source: 'what colour is it?', target: 'a red dress' }));
const tasks = (): TaskSource[] => [
  { name: 'describe', examples: rows('d', 20), weight: 1 },
  { name: 'answer', examples: rows('a', 30), weight: 1, start: 0.3 },
  { name: 'embed', examples: rows('e', 20), weight: 1, start: 0.5 },
];
const loaderOf = (t: TaskSource[]): DataLoader => new DataLoader(t, { tokenizer, batchSize: 4, seed: 5, workers: 0, groupTasks: new Set(['embed']) });

async function take(stream: AsyncGenerator<Batch>, n: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let i = 0; i < n; i++) out.push((await stream.next()).value as Batch);
  return out;
}

test('--tasks reads @start as a share of the training, and refuses starts outside [0, 1) or on every task', () => {
  assert.deepEqual(parseTaskList('describe,answer:0.5@0.3,embed@0.25'), [{ name: 'describe', weight: 1 }, { name: 'answer', weight: 0.5, start: 0.3 }, { name: 'embed', weight: 1, start: 0.25 }]);
  assert.deepEqual(parseTaskList('describe@0'), [{ name: 'describe', weight: 1 }]);
  for (const bad of ['describe,answer@1', 'describe,answer@-0.1', 'describe,answer@', 'describe,answer@x', 'describe,answer@0.2@0.3']) {
    assert.throws(() => parseTaskList(bad), /share of the training/, bad);
  }
  assert.throws(() => parseTaskList('describe@0.1,answer@0.2'), /at least one must train from the first step/);
});

test('a scheduled task takes no rows before its join step and its share after; without joinAt, none', () => {
  const loader = loaderOf(tasks());
  const before = loader.plan(40);
  assert.ok(before.every((p) => p.picks.every((x) => x.task === 0)), 'only describe before any join');
  loader.joinAt('answer', 10);
  loader.joinAt('embed', 20);
  const plans = loader.plan(40);
  const names = (p: (typeof plans)[number]) => new Set(p.picks.map((x) => x.task));
  assert.ok(plans.slice(0, 10).every((p) => p.picks.length === 4 && [...names(p)].every((t) => t === 0)));
  assert.ok(plans.slice(10, 20).every((p) => p.picks.length === 4 && !names(p).has(2)));
  assert.ok(plans.slice(10, 20).some((p) => names(p).has(1)), 'answer takes slots from its join step');
  assert.ok(plans.slice(20).every((p) => p.picks.length === 8 && p.picks.slice(4).every((x) => x.task === 2)), 'embed\'s group in every batch from its step');
  // The phase with every task keeps the loader's own seeds: from step 20 on, the batches are those
  // of an unscheduled loader's first 20.
  const plain = loaderOf(tasks().map(({ start: _s, ...t }) => t)).plan(20);
  assert.deepEqual(plans.slice(20).map((p) => p.picks), plain.map((p) => p.picks));
  assert.throws(() => loader.joinAt('design', 3), /no task 'design'/);
  assert.throws(() => loader.joinAt('answer', -1), /non-negative integer/);
});

test('a step-bounded run fixes every join up front; a time-bounded one joins at the first step past the share, and a resume replays it', async () => {
  const fixed = new ScheduledBatches(loaderOf(tasks()), tasks(), 0, 100);
  assert.deepEqual(fixed.joined, { answer: 30, embed: 50 });
  assert.deepEqual(fixed.waiting, []);
  await fixed.close();

  const loader = loaderOf(tasks());
  const timed = new ScheduledBatches(loader, tasks(), 0, null);
  assert.deepEqual(timed.waiting, ['answer', 'embed']);
  const early = await take(timed.batches, 7);
  assert.ok(early.every((b) => b.tasks.every((t) => t === 'describe')));
  assert.deepEqual(await timed.advance(7, 0.29), []);
  assert.deepEqual(await timed.advance(7, 0.31), ['answer']);
  const mid = await take(timed.batches, 5);
  assert.equal(mid[0]!.step, 7, 'the stream goes on from the join step');
  assert.ok(mid.some((b) => b.tasks.includes('answer')) && mid.every((b) => !b.tasks.includes('embed')));
  assert.deepEqual(await timed.advance(12, 0.6), ['embed']);
  const late = await take(timed.batches, 3);
  assert.ok(late.every((b) => b.tasks.filter((t) => t === 'embed').length === 4));
  assert.deepEqual(timed.joined, { answer: 7, embed: 12 });
  await timed.close();
  await loader.close();

  // Resumed at step 9 with the recorded joins: the same batches as the run that went through.
  const again = loaderOf(tasks());
  const resumed = new ScheduledBatches(again, tasks(), 9, null, { answer: 7 });
  assert.deepEqual(resumed.waiting, ['embed']);
  const replay = await take(resumed.batches, 3);
  assert.deepEqual(replay.map((b) => b.ids), mid.slice(2).map((b) => b.ids));
  await resumed.close();
  await again.close();
});
