// The event loop stays free while a design runs: a server on loopback, over a run whose images are
// 16×16 codes (256 decode steps each), answers /healthz throughout a batch of designs, each answer
// within a small part of the batch's time (the generation yields between decode steps); and a
// design whose client goes away stops at its next step, so the model is free for the next request
// long before the design would have ended. Times are compared with each other, never with a
// constant: the machine may be slow or shared.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { loadPipeline, type Pipeline } from '../../src/pipelines/index.js';
import { build } from '../../src/serve/app.js';
import { trainTinyRun, type TinyRun } from './fixtures.js';

let tiny: TinyRun;
let pipeline: Pipeline;
let app: FastifyInstance;
let url = '';
const GRID = 16;   // imageSize 64 / patchSize 4: a design is GRID² decode steps (maxTextLen 260 holds them)

before(async () => {
  tiny = await trainTinyRun('m6-serve-loop-', { config: { imageSize: 64, patchSize: 4, maxTextLen: 260 }, tasks: 'design,embed' });
  pipeline = await loadPipeline(tiny.run);
  app = await build({ pipeline, limits: { maxDesignImages: 4 }, closePipeline: false });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await app?.close();
  pipeline?.close();
  rmSync(tiny.dir, { recursive: true, force: true });
});

const design = (seed: number, signal?: AbortSignal) => fetch(`${url}/v1/design`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'red dress', n: 4, seed }), ...(signal !== undefined ? { signal } : {}),
});

/** Milliseconds `fn` takes. */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** One design of n 4, answered: its milliseconds (after a first one that warms the model up). */
async function oneDesignMs(): Promise<number> {
  assert.equal((await design(100)).status, 200);
  return timed(async () => { const r = await design(101); assert.equal(r.status, 200, await r.text()); });
}

test('/healthz answers throughout a batch of designs, each within a small part of the batch', async (t) => {
  const one = await oneDesignMs();
  // Three designs of different seeds: one batch, three calls of GRID² steps each, one after another.
  let running = true;
  const started = performance.now();
  const designs = Promise.all([1, 2, 3].map(async (seed) => { const r = await design(seed); await r.arrayBuffer(); return r.status; })).finally(() => { running = false; });
  const pings: number[] = [], statuses: number[] = [];
  while (running) {
    pings.push(await timed(async () => { const r = await fetch(`${url}/healthz`); statuses.push(r.status); await r.text(); }));
  }
  assert.deepEqual(await designs, [200, 200, 200]);
  const batchMs = performance.now() - started;
  const stepMs = batchMs / (3 * GRID * GRID);
  const worst = Math.max(...pings);
  t.diagnostic(`one design (n 4, ${GRID * GRID} steps): ${one.toFixed(0)} ms; the batch of 3: ${batchMs.toFixed(0)} ms, ${stepMs.toFixed(2)} ms a decode step (at most); ` +
    `${pings.length} /healthz answered during it, median ${[...pings].sort((a, b) => a - b)[pings.length >> 1]!.toFixed(2)} ms, worst ${worst.toFixed(2)} ms (${(worst / stepMs).toFixed(1)} steps, ${(100 * worst / batchMs).toFixed(1)}% of the batch)`);
  assert.ok(statuses.every((s) => s === 200), `every /healthz answers 200: ${statuses.join(',')}`);
  // Held for the whole batch, the loop would answer one or two pings, the worst of them ≈ the batch.
  assert.ok(pings.length >= 20, `${pings.length} /healthz answered during a ${batchMs.toFixed(0)} ms batch`);
  assert.ok(worst < batchMs / 10, `worst /healthz ${worst.toFixed(1)} ms, the batch ${batchMs.toFixed(0)} ms`);
});

test('a design whose client goes away stops at its next step: the next request does not wait for it', async (t) => {
  const one = await oneDesignMs();
  const embed = async () => {
    const r = await fetch(`${url}/v1/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'red dress' }) });
    assert.equal(r.status, 200, await r.text());
  };
  await embed();                       // warms the embed path up
  const alone = await timed(embed);    // an embed with the model free
  const gone = new AbortController();
  const abandoned = design(7, gone.signal).then(() => 'answered', (err: unknown) => (err instanceof Error ? err.name : String(err)));
  await new Promise((r) => setTimeout(r, one / 8));
  gone.abort();
  // The embed queues behind the design on the model lane: it waits only for the design's current step.
  const embedMs = await timed(embed);
  assert.equal(await abandoned, 'AbortError');
  t.diagnostic(`one design ${one.toFixed(0)} ms, one embed alone ${alone.toFixed(1)} ms; aborted after ${(one / 8).toFixed(0)} ms, an embed right after took ${embedMs.toFixed(1)} ms`);
  // Had the design run to its end, the embed would wait ≈ 7/8 of a design on top of its own time;
  // half a design of slack leaves room for a slow, shared machine and still tells the two apart.
  assert.ok(embedMs < alone + one / 2, `embed after the abort ${embedMs.toFixed(1)} ms, alone ${alone.toFixed(1)} ms, a whole design ${one.toFixed(0)} ms`);
});
