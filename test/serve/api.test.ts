// Every route through fastify.inject() on a tiny run: the answers, and every error status the
// server gives (400 naming the field, 401, 404, 413, 415, 422, 429, 503), each as problem+json;
// batching seen in /metrics; the token stream equal to the batch answer; auth on and off; search
// over the tiny catalog's index (text, image, item, filter; every error), its thumbnails (cached,
// never a file outside the catalog), an index of other weights refused at startup, and the run's
// held-out examples; recommendations (a shopper, a session, similar items, complements; batched on
// the model lane; every error) answered as m6 recommend answers them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import sharp from 'sharp';
import { loadPipeline, type Pipeline } from '../../src/pipelines/index.js';
import { heldOutExamples } from '../../src/eval/heldOutExamples.js';
import { openCatalogIndex, openQueryIndex, readShopperData, recommendItems, userHistory } from '../../src/search/index.js';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { build } from '../../src/serve/app.js';
import { readRunSplit } from '../../src/train/runSplit.js';
import { DESIGN_GUIDANCE } from '../../src/tasks/instructions.js';
import { buildTinyIndex, multipart, pngOf, trainTinyRun, type TinyRun } from './fixtures.js';

let tiny: TinyRun;
let pipeline: Pipeline;
let app: FastifyInstance;
let indexDir = '';
const LIMITS = { maxBodyBytes: 2 * 2 ** 20, maxPixels: 1_000_000, maxDesignImages: 2 };

before(async () => {
  tiny = await trainTinyRun();
  pipeline = await loadPipeline(tiny.run);
  // A row whose image lies outside the catalog's folder: searchable, its image never served.
  const outside = join(tiny.dir, 'outside.png');
  writeFileSync(outside, await pngOf(8, 8));
  const [v] = await pipeline.embed({ texts: ['rogue'] });
  if (v === undefined || !v.ok) throw new Error('embed failed');
  indexDir = await buildTinyIndex(tiny, pipeline, { extra: [{ id: 'rogue', image: v.vector, text: v.vector, title: 'rogue', label: 'rogue', imagePath: outside }] });
  app = await build({ pipeline, limits: LIMITS, index: indexDir, closePipeline: false });
});

after(async () => {
  await app?.close();
  pipeline?.close();
  rmSync(tiny.dir, { recursive: true, force: true });
});

const b64 = (b: Buffer) => b.toString('base64');
const post = (url: string, payload: unknown, a: FastifyInstance = app) => a.inject({ method: 'POST', url, payload: payload as object });

function problem(res: LightMyRequestResponse, status: number, pattern: RegExp, field?: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.match(res.headers['content-type'] as string, /^application\/problem\+json/);
  const p = res.json() as { status: number; detail: string; title: string; field?: string };
  assert.equal(p.status, status);
  assert.match(p.detail, pattern);
  if (field !== undefined) assert.equal(p.field, field, res.body);
}

test('health, readiness, docs', async () => {
  assert.deepEqual((await app.inject('/healthz')).json(), { status: 'ok' });
  const ready = (await app.inject('/readyz')).json() as { ready: boolean; tasks: string[] };
  assert.equal(ready.ready, true);
  assert.deepEqual([...ready.tasks].sort(), ['answer', 'describe', 'design', 'embed', 'recommend', 'search']);
  const spec = (await app.inject('/docs/json')).json() as { openapi: string; paths: Record<string, unknown> };
  assert.match(spec.openapi, /^3\./);
  for (const p of ['/v1/describe', '/v1/answer', '/v1/design', '/v1/embed', '/v1/search', '/v1/recommend', '/v1/items/{id}/image', '/v1/examples', '/v1/examples/{id}/image', '/healthz', '/readyz', '/metrics']) assert.ok(spec.paths[p], `${p} is in the OpenAPI document`);
  const ui = await app.inject('/docs/');
  assert.equal(ui.statusCode, 200);
  assert.match(ui.body, /swagger/i);
});

test('describe: base64 JSON and multipart give the same text; answer with and without a photo', async () => {
  const json = await post('/v1/describe', { image: b64(tiny.imageBytes), maxNewTokens: 6 });
  assert.equal(json.statusCode, 200, json.body);
  const d = json.json() as { text: string; tokenIds: number[]; finishReason: string; ms: number };
  assert.ok(d.tokenIds.length >= 1 && d.tokenIds.length <= 6 && typeof d.text === 'string' && d.ms >= 0);
  const form = multipart({ maxNewTokens: '6' }, { name: 'image', filename: 'p.png', type: 'image/png', bytes: tiny.imageBytes });
  const mp = await app.inject({ method: 'POST', url: '/v1/describe', ...form });
  assert.equal(mp.statusCode, 200, mp.body);
  assert.equal((mp.json() as { text: string }).text, d.text, 'the same photo, the same (greedy) text');
  const dataUrl = await post('/v1/describe', { image: `data:image/png;base64,${b64(tiny.imageBytes)}`, maxNewTokens: 6 });
  assert.equal((dataUrl.json() as { text: string }).text, d.text);

  const a = await post('/v1/answer', { question: 'what colour is it?', image: b64(tiny.imageBytes), maxNewTokens: 4 });
  assert.equal(a.statusCode, 200, a.body);
  const alone = await post('/v1/answer', { question: 'what is it?' });
  assert.equal(alone.statusCode, 200, alone.body);
});

test('describe and answer requests sent together (continuous batching, rows of different lengths and kinds) each get what the pipeline gives alone', async () => {
  const files = ['p000001.png', 'p000002.png', 'p000003.png'].map((f) => join(tiny.dir, 'catalog', 'images', f));
  const describes = files.map((file, i) => ({ file, maxNewTokens: 3 + 4 * i }));
  const questions: Array<{ question: string; file?: string; maxNewTokens: number }> = [{ question: 'what colour is it?', file: files[1]!, maxNewTokens: 5 }, { question: 'what is it?', maxNewTokens: 2 }];
  const served = await Promise.all([
    ...describes.map((d) => post('/v1/describe', { image: b64(readFileSync(d.file)), maxNewTokens: d.maxNewTokens })),
    ...questions.map((q) => post('/v1/answer', { question: q.question, maxNewTokens: q.maxNewTokens, ...(q.file !== undefined ? { image: b64(readFileSync(q.file)) } : {}) })),
  ]);
  const expected = [
    ...await Promise.all(describes.map(async (d) => (await pipeline.describe([d.file], { maxNewTokens: d.maxNewTokens }))[0]!)),
    ...await Promise.all(questions.map(async (q) => (await pipeline.answer([q.file !== undefined ? { question: q.question, image: q.file } : q.question], { maxNewTokens: q.maxNewTokens }))[0]!)),
  ];
  served.forEach((r, i) => {
    assert.equal(r.statusCode, 200, r.body);
    const want = expected[i] as { ok: true; tokenIds: number[]; text: string };
    assert.deepEqual((r.json() as { tokenIds: number[] }).tokenIds, want.tokenIds, `request ${i}`);
  });
});

test('design: n PNGs of the model\'s size, seeded; embed: unit vectors for text and image', async () => {
  const r = await post('/v1/design', { prompt: 'red dress', n: 2, seed: 3 });
  assert.equal(r.statusCode, 200, r.body);
  const out = r.json() as { images: Array<{ png: string; width: number }> };
  assert.equal(out.images.length, 2);
  const meta = await sharp(Buffer.from(out.images[0]!.png, 'base64')).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, pipeline.config.imageSize);
  const again = (await post('/v1/design', { prompt: 'red dress', n: 2, seed: 3 })).json() as typeof out;
  assert.equal(again.images[0]!.png, out.images[0]!.png, 'same seed, same image');
  // Classifier-free guidance: DESIGN_GUIDANCE by default for this run (trained with design prompts dropped), 1 = none.
  const guided = (await post('/v1/design', { prompt: 'red dress', n: 2, seed: 3, guidance: DESIGN_GUIDANCE })).json() as typeof out;
  assert.deepEqual(guided.images.map((im) => im.png), out.images.map((im) => im.png));
  // (Two training steps leave the prompted and unprompted logits close: a strong scale shows the difference.)
  const unguided = await post('/v1/design', { prompt: 'red dress', n: 2, seed: 3, guidance: 1 });
  assert.equal(unguided.statusCode, 200, unguided.body);
  const strong = (await post('/v1/design', { prompt: 'red dress', n: 2, seed: 3, guidance: 20 })).json() as typeof out;
  assert.notDeepEqual((unguided.json() as typeof out).images.map((im) => im.png), strong.images.map((im) => im.png));
  problem(await post('/v1/design', { prompt: 'red dress', guidance: -1 }), 400, /must be >= 0/, 'guidance');
  const cfg = pipeline.config as { designPromptDropout: number };
  const dropout = cfg.designPromptDropout;
  cfg.designPromptDropout = 0;   // as if the run came from before guidance
  try {
    problem(await post('/v1/design', { prompt: 'red dress', guidance: 3 }), 422, /trained without dropping design prompts/, 'guidance');
    assert.equal((await post('/v1/design', { prompt: 'red dress', guidance: 1 })).statusCode, 200);
  } finally {
    cfg.designPromptDropout = dropout;
  }

  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const t = (await post('/v1/embed', { text: 'red dress' })).json() as { vector: number[]; dim: number };
  assert.equal(t.vector.length, t.dim);
  assert.ok(Math.abs(norm(t.vector) - 1) < 1e-4);
  const form = multipart({}, { name: 'image', filename: 'p.png', type: 'image/png', bytes: tiny.imageBytes });
  const i = await app.inject({ method: 'POST', url: '/v1/embed', ...form });
  assert.equal(i.statusCode, 200, i.body);
  assert.ok(Math.abs(norm((i.json() as { vector: number[] }).vector) - 1) < 1e-4);
});

test('400: schema errors name the field; malformed JSON; no image; both or neither embed input', async () => {
  problem(await post('/v1/design', { prompt: 'x', n: 'many' }), 400, /must be integer/, 'n');
  problem(await post('/v1/design', { n: 1 }), 400, /prompt/, 'prompt');
  problem(await post('/v1/design', { prompt: 'x', temperature: 1e-9 }), 400, /must be >= 0.01/, 'temperature');
  problem(await post('/v1/describe', { image: b64(tiny.imageBytes), colour: 'red' }), 400, /additional properties/, 'colour');
  problem(await post('/v1/describe', {}), 400, /image: required/, 'image');
  problem(await post('/v1/describe', { image: '***not base64***' }), 400, /not base64/, 'image');
  problem(await app.inject({ method: 'POST', url: '/v1/embed', headers: { 'content-type': 'application/json' }, payload: '{"text": "red' }), 400, /JSON/i);
  problem(await post('/v1/embed', { text: 'a', image: b64(tiny.imageBytes) }), 400, /exactly one/);
  problem(await post('/v1/embed', {}), 400, /exactly one/);
  const wrongPart = multipart({}, { name: 'photo', filename: 'p.png', type: 'image/png', bytes: tiny.imageBytes });
  problem(await app.inject({ method: 'POST', url: '/v1/describe', ...wrongPart }), 400, /unexpected file part/, 'photo');
  const cut = multipart({}, { name: 'image', filename: 'p.png', type: 'image/png', bytes: tiny.imageBytes });
  const truncated = await app.inject({ method: 'POST', url: '/v1/describe', headers: cut.headers, payload: cut.payload.subarray(0, cut.payload.length - 40) });
  assert.ok(truncated.statusCode >= 400 && truncated.statusCode < 500, `a truncated multipart body is a client error, got ${truncated.statusCode}`);
  assert.match(truncated.headers['content-type'] as string, /problem\+json/);
});

test('404, 413, 415 and 422, each problem+json', async () => {
  problem(await app.inject('/v1/nope'), 404, /no route GET \/v1\/nope/);
  problem(await post('/v1/embed', { text: 'x'.repeat(3 * 2 ** 20) }), 413, /body/i);
  const big = multipart({}, { name: 'image', filename: 'big.png', type: 'image/png', bytes: Buffer.alloc(3 * 2 ** 20, 1) });
  problem(await app.inject({ method: 'POST', url: '/v1/describe', ...big }), 413, /.+/);
  problem(await app.inject({ method: 'POST', url: '/v1/embed', headers: { 'content-type': 'text/plain' }, payload: 'red dress' }), 415, /content-type/i);
  const text = Buffer.from('these are not the pixels you are looking for\n');
  problem(await post('/v1/describe', { image: b64(text) }), 415, /not an image/, 'image');
  const jpg = multipart({}, { name: 'image', filename: 'photo.jpg', type: 'image/jpeg', bytes: text });
  problem(await app.inject({ method: 'POST', url: '/v1/describe', ...jpg }), 415, /not an image/, 'image');
  problem(await post('/v1/describe', { image: b64(await pngOf(2000, 1000)) }), 422, /too many pixels.*2000×1000/, 'image');
  problem(await post('/v1/design', { prompt: '   ' }), 422, /prompt: empty/, 'prompt');
  problem(await post('/v1/design', { prompt: 'red dress '.repeat(40) }), 422, /prompt: too long .* at most 48 tokens/, 'prompt');
  problem(await post('/v1/design', { prompt: 'red dress', n: 3 }), 422, /at most 2 per request/, 'n');
  problem(await post('/v1/answer', { question: '' }), 422, /question: empty/, 'question');
});

test('requests arriving together run as batches: /metrics shows fewer batches than requests', async () => {
  const before = batchStats(await app.inject('/metrics').then((r) => r.body), 'embed');
  const texts = Array.from({ length: 12 }, (_, i) => `red dress ${i}`);
  const rs = await Promise.all(texts.map((text) => post('/v1/embed', { text })));
  assert.ok(rs.every((r) => r.statusCode === 200));
  const metrics = (await app.inject('/metrics')).body;
  const after = batchStats(metrics, 'embed');
  assert.equal(after.sum - before.sum, 12);
  assert.ok(after.count - before.count < 12, `12 requests ran in ${after.count - before.count} batches`);
  assert.match(metrics, /m6_http_requests_total\{route="\/v1\/embed",method="POST",status="200"\}/);
  assert.match(metrics, /m6_http_request_duration_seconds_bucket\{le="0.1",route="\/v1\/embed"\}/);
  assert.match(metrics, /m6_queue_depth\{task="describe"\} 0/);
});

function batchStats(metrics: string, task: string): { sum: number; count: number } {
  const get = (k: string) => Number(new RegExp(`m6_batch_size_${k}\\{task="${task}"\\} (\\S+)`).exec(metrics)?.[1] ?? 0);
  return { sum: get('sum'), count: get('count') };
}

test('stream: true sends the tokens as server-sent events, then the same result as the batch call', async () => {
  const whole = (await post('/v1/describe', { image: b64(tiny.imageBytes), maxNewTokens: 6 })).json() as { text: string; tokenIds: number[] };
  const res = await post('/v1/describe', { image: b64(tiny.imageBytes), maxNewTokens: 6, stream: true });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /^text\/event-stream/);
  const events = res.body.trim().split('\n\n').map((e) => ({ event: /^event: (\w+)/.exec(e)![1], data: JSON.parse(/\ndata: (.*)$/s.exec(e)![1]!) }));
  const tokens = events.filter((e) => e.event === 'token');
  const done = events.at(-1)!;
  assert.equal(done.event, 'done');
  assert.deepEqual(events.slice(0, -1).map((e) => e.event), tokens.map(() => 'token'));
  assert.deepEqual(done.data.tokenIds, whole.tokenIds);
  assert.equal(done.data.text, whole.text);
  // The stream holds back bytes of an unfinished UTF-8 character (the tiny model writes many), so
  // its pieces are the text's start; each token event names its token.
  assert.ok(whole.text.startsWith(tokens.map((e) => e.data.text).join('').trim()));
  for (const e of tokens) assert.ok(whole.tokenIds.includes(e.data.tokenId));
});

test('429 past the queue bound (with Retry-After); 503 for a request that waits past its deadline', async () => {
  const shed = await build({ pipeline, limits: LIMITS, batch: { maxQueue: 0 }, closePipeline: false });
  const deadline = await build({ pipeline, limits: { ...LIMITS, requestTimeoutMs: 5 }, batch: { maxWaitMs: 200 }, closePipeline: false });
  try {
    const r = await post('/v1/embed', { text: 'red' }, shed);
    problem(r, 429, /queue is full/);
    assert.ok(Number(r.headers['retry-after']) >= 1);
    problem(await post('/v1/embed', { text: 'red' }, deadline), 503, /waited 5 ms in the queue/);
  } finally {
    await shed.close();
    await deadline.close();
  }
  assert.doesNotThrow(() => pipeline.tokenizer, 'closePipeline: false leaves the shared pipeline open');
  assert.equal((await post('/v1/embed', { text: 'red' })).statusCode, 200);
});

test('with an API key, /v1 needs Authorization: Bearer <key>; health stays open', async () => {
  const secured = await build({ pipeline, limits: LIMITS, apiKey: 's3cret-key', closePipeline: false });
  try {
    const none = await post('/v1/embed', { text: 'red' }, secured);
    problem(none, 401, /needs an API key/);
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    problem(await secured.inject({ method: 'POST', url: '/v1/embed', payload: { text: 'red' }, headers: { authorization: 'Bearer s3cret-kez' } }), 401, /not valid/);
    problem(await secured.inject({ method: 'POST', url: '/v1/embed', payload: { text: 'red' }, headers: { authorization: 'Bearer s3' } }), 401, /not valid/);
    const ok = await secured.inject({ method: 'POST', url: '/v1/embed', payload: { text: 'red' }, headers: { authorization: 'Bearer s3cret-key' } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal((await secured.inject('/healthz')).statusCode, 200);
    assert.equal((await secured.inject('/metrics')).statusCode, 200);
  } finally {
    await secured.close();
  }
  assert.equal((await post('/v1/embed', { text: 'red' })).statusCode, 200, 'without a key, /v1 is open');
});

test('a run that does not serve a task answers 404 saying why; closing the app frees the pipeline', async () => {
  const p = await loadPipeline(tiny.run);
  (p.tasks as Set<string>).delete('design');   // as if the run had no VQ tokenizer
  (p.tasks as Set<string>).delete('recommend');   // as if it had no item vocabulary
  const a = await build({ pipeline: p, limits: LIMITS });
  problem(await post('/v1/design', { prompt: 'red dress' }, a), 404, /the run was not trained on design|no VQ image tokenizer/);
  problem(await post('/v1/recommend', { user: 'u00001' }, a), 404, /no item vocabulary/);
  assert.ok(!(await a.inject('/readyz')).json().tasks.includes('recommend'));
  await a.close();
  assert.throws(() => p.model, /closed/);
});

test('a client that disconnects while queued drops its work: the batch never runs', async () => {
  const a = await build({ pipeline, limits: LIMITS, batch: { maxWaitMs: 400 }, closePipeline: false });
  try {
    const url = await a.listen({ host: '127.0.0.1', port: 0 });
    const { request } = await import('node:http');
    const body = JSON.stringify({ text: 'red dress' });
    const req = request(`${url}/v1/embed`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } });
    req.on('error', () => undefined);
    req.end(body);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a.m6.batchers.embed!.depth, 1, 'queued, waiting for company');
    req.destroy();
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(a.m6.batchers.embed!.depth, 0, 'gone from the queue');
    const metrics = (await a.inject('/metrics')).body;
    assert.equal(batchStats(metrics, 'embed').count, 0, 'no embed batch ran');
  } finally {
    await a.close();
  }
});

interface SearchOut { results: Array<{ id: string; score: number; title: string; label: string; price: number | null; image: string | null }>; latencyMs: number; store: string; exact: boolean }

test('search: by text, by image (JSON and multipart), like an item, filtered; results link to thumbnails', async () => {
  const r = await post('/v1/search', { text: 'red dress', k: 5 });
  assert.equal(r.statusCode, 200, r.body);
  const out = r.json() as SearchOut;
  assert.equal(out.results.length, 5);
  assert.deepEqual([out.store, out.exact], ['exact', true]);
  assert.ok(out.latencyMs >= 0);
  assert.ok(out.results.every((h, i) => i === 0 || h.score <= out.results[i - 1]!.score), 'best first');
  for (const h of out.results.filter((x) => x.id !== 'rogue')) {
    assert.equal(h.image, `/v1/items/${h.id}/image`);
    assert.ok(h.title.length > 0 && h.label.length > 0);
  }
  const label = out.results.find((h) => h.id !== 'rogue')!.label;
  const filtered = (await post('/v1/search', { text: 'red dress', where: `label = '${label}'` })).json() as SearchOut;
  assert.ok(filtered.results.length > 0 && filtered.results.every((h) => h.label === label));
  assert.equal((await post('/v1/search', { text: 'red dress' })).json().results.length, 10, 'k defaults to 10');

  const byImage = (await post('/v1/search', { image: b64(tiny.imageBytes), k: 1 })).json() as SearchOut;
  assert.equal(byImage.results[0]!.id, 'p000001', 'an item\'s own photo finds it first');
  const form = multipart({ k: '2', exact: 'true' }, { name: 'image', filename: 'p.png', type: 'image/png', bytes: tiny.imageBytes });
  const mp = await app.inject({ method: 'POST', url: '/v1/search', ...form });
  assert.equal(mp.statusCode, 200, mp.body);
  assert.equal((mp.json() as SearchOut).results[0]!.id, 'p000001');
  const like = (await post('/v1/search', { item: 'p000001', k: 4 })).json() as SearchOut;
  assert.equal(like.results.length, 4);
  assert.ok(like.results.every((h) => h.id !== 'p000001'), 'an item is not its own neighbour');
  const rogue = (await post('/v1/search', { item: 'rogue', k: 30 })).json() as SearchOut;
  assert.equal(rogue.results.length, 24);
});

test('searches arriving together embed their queries in shared batches (the embed batcher)', async () => {
  const before = batchStats((await app.inject('/metrics')).body, 'embed');
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => post('/v1/search', { text: `red dress ${i}`, k: 3 })));
  assert.ok(rs.every((r) => r.statusCode === 200));
  const after = batchStats((await app.inject('/metrics')).body, 'embed');
  assert.equal(after.sum - before.sum, 8);
  assert.ok(after.count - before.count < 8, `8 searches embedded in ${after.count - before.count} batches`);
});

test('search over a LanceDB index: store lancedb, an exact scan below the ANN threshold, thumbnails', async () => {
  const lance = await build({ pipeline, limits: LIMITS, index: await buildTinyIndex(tiny, pipeline, { store: 'lance' }), closePipeline: false });
  try {
    const exact = ((await post('/v1/search', { text: 'red dress', k: 4 })).json() as SearchOut).results.filter((h) => h.id !== 'rogue').slice(0, 3);
    const r = await post('/v1/search', { text: 'red dress', k: 3 }, lance);
    assert.equal(r.statusCode, 200, r.body);
    const out = r.json() as SearchOut;
    assert.deepEqual([out.store, out.exact], ['lancedb', true]);
    assert.deepEqual(out.results.map((h) => h.id), exact.map((h) => h.id), 'the two stores agree');
    assert.equal((await lance.inject(out.results[0]!.image!)).statusCode, 200);
  } finally {
    await lance.close();
  }
});

test('search errors: 400 naming the field, 422 for a bad filter or an unknown item, 404 without an index', async () => {
  problem(await post('/v1/search', {}), 400, /exactly one of text, image and item \(got none\)/, 'text');
  problem(await post('/v1/search', { text: 'red', item: 'p000001' }), 400, /exactly one of text, image and item \(got text and item\)/, 'item');
  problem(await post('/v1/search', { text: 'red', image: b64(tiny.imageBytes) }), 400, /\(got text and image\)/, 'image');
  problem(await post('/v1/search', { text: 'red', k: 0 }), 400, /must be >= 1/, 'k');
  problem(await post('/v1/search', { text: 'red', k: 101 }), 400, /must be <= 100/, 'k');
  problem(await post('/v1/search', { text: 'red', column: 'pixels' }), 400, /.+/, 'column');
  problem(await post('/v1/search', { text: 'red', colour: 'red' }), 400, /additional properties/, 'colour');
  problem(await post('/v1/search', { text: 'red', where: 'colour = 1' }), 422, /^where: .*colour/, 'where');
  problem(await post('/v1/search', { text: 'red', where: "label = 'dress' AND" }), 422, /^where: /, 'where');
  problem(await post('/v1/search', { item: 'p999999' }), 422, /no item 'p999999' in the index/, 'item');
  problem(await post('/v1/search', { text: '  ' }), 422, /text: empty/, 'text');
  const bare = await build({ pipeline, limits: LIMITS, closePipeline: false });
  try {
    problem(await post('/v1/search', { text: 'red' }, bare), 404, /started without a catalog index: start it with m6 serve --run RUN --index INDEX/);
    problem(await bare.inject('/v1/items/p000001/image'), 404, /without a catalog index/);
    assert.equal((await bare.inject('/v1/examples')).json().search.length, 0, 'no search examples without an index');
  } finally {
    await bare.close();
  }
});

test('thumbnails: an index row\'s image with its type and caching headers; 304 when unchanged; nothing else', async () => {
  const r = await app.inject('/v1/items/p000001/image');
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.headers['content-type'], 'image/png');
  assert.match(String(r.headers['cache-control']), /max-age=\d+/);
  assert.deepEqual(r.rawPayload, tiny.imageBytes);
  const again = await app.inject({ url: '/v1/items/p000001/image', headers: { 'if-none-match': String(r.headers.etag) } });
  assert.equal(again.statusCode, 304);
  problem(await app.inject('/v1/items/p999999/image'), 404, /no image/);
  problem(await app.inject('/v1/items/..%2F..%2Fcatalog%2Fimages%2Fp000001.png/image'), 404, /no image/);
  // An index row may name any path: one outside the catalog's image folder is never served.
  problem(await app.inject('/v1/items/rogue/image'), 404, /item 'rogue': no image/);
  const hits = (await post('/v1/search', { item: 'p000001', k: 30 })).json() as SearchOut;
  assert.equal(hits.results.find((h) => h.id === 'rogue')!.image, null);
});

test('an index built by other weights is refused at startup, with the index\'s own message', async () => {
  const uri = join(tiny.dir, 'stale');
  const stale = await openCatalogIndex(uri, { store: 'exact', weights: { run: 'other-run', weightsDigest: 'sha256:0', model: pipeline.config.name, dims: pipeline.config.dim } });
  await stale.close();
  await assert.rejects(build({ pipeline, index: uri, closePipeline: false }), /built by run 'other-run'.*vectors of different weights do not compare/);
  await assert.rejects(build({ pipeline, index: join(tiny.dir, 'nothing'), closePipeline: false }), /no catalog index here/);
});

test('examples: a few held-out rows per task (never trained on), their images served', async () => {
  const r = await app.inject('/v1/examples');
  assert.equal(r.statusCode, 200, r.body);
  const ex = r.json() as Record<'describe' | 'answer' | 'design' | 'search', Array<{ id: string; image?: string | null; text?: string; question?: string; prompt?: string }>>;
  const split = readRunSplit(tiny.run)!;
  for (const task of ['describe', 'answer', 'design', 'search'] as const) {
    assert.ok(ex[task].length >= 1 && ex[task].length <= 4, `${task}: ${ex[task].length} examples`);
    for (const e of ex[task]) assert.equal(split.trainedOn(e.id), false, `${task} example ${e.id} is held out`);
  }
  assert.ok(ex.answer.every((e) => e.question!.length > 0) && ex.design.every((e) => e.prompt!.length > 0) && ex.search.every((e) => e.text!.length > 0));
  const image = await app.inject(ex.describe[0]!.image!);
  assert.equal(image.statusCode, 200);
  assert.equal(image.headers['content-type'], 'image/png');
  problem(await app.inject('/v1/examples/p000001x/image'), 404, /no image/);
  // A run recorded before split.json kept the dataset spec, or with no split at all: no examples, and why.
  const old = join(tiny.dir, 'old-run');
  mkdirSync(old);
  copyFileSync(join(tiny.run, 'train-ids.bin'), join(old, 'train-ids.bin'));
  const { spec: _spec, ...record } = JSON.parse(readFileSync(join(tiny.run, 'split.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(old, 'split.json'), JSON.stringify(record));
  assert.match((await heldOutExamples(old)).reason ?? '', /does not record the dataset spec .*retrain/);
  assert.match((await heldOutExamples(tiny.dir)).reason ?? '', /records no split/);
});

interface RecommendOut { results: Array<{ id: string; score: number; title: string; label: string; price: number | null; image: string | null }>; latencyMs: number }
const ids = (r: LightMyRequestResponse) => (r.json() as RecommendOut).results.map((h) => h.id);

test('recommend: a shopper (their history from the run\'s data), a session, items like one, complements, filtered; the CLI\'s answers', async () => {
  const events = readFileSync(join(tiny.dir, 'catalog', 'interactions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { shopper: string; item: string });
  const seen = new Set(events.filter((e) => e.shopper === 'u00001').map((e) => e.item));
  const r = await post('/v1/recommend', { user: 'u00001', k: 5 });
  assert.equal(r.statusCode, 200, r.body);
  const out = r.json() as RecommendOut;
  assert.equal(out.results.length, 5);
  assert.ok(out.latencyMs >= 0);
  assert.ok(out.results.every((h) => !seen.has(h.id)), 'the shopper\'s items are left out');
  assert.ok(out.results.every((h, i) => i === 0 || h.score <= out.results[i - 1]!.score), 'best first');
  for (const h of out.results) assert.ok(h.title.length > 0 && h.image === `/v1/items/${h.id}/image`, JSON.stringify(h));
  assert.equal((await app.inject(out.results[0]!.image!)).statusCode, 200);
  // One function behind both doors: the same items and scores as m6 recommend's recommendItems.
  const data = await readShopperData(resolveDatasetSpec(loadDatasetSpecFile(join(tiny.dir, 'catalog', 'dataset.json'))));
  const index = await openQueryIndex(indexDir, pipeline);
  try {
    const direct = await recommendItems({ pipeline, index }, { history: userHistory(data, 'u00001') }, { k: 5 });
    assert.deepEqual(out.results.map((h) => h.id), direct.map((h) => h.id));
  } finally {
    await index.close();
  }
  const session = await post('/v1/recommend', { history: ['p000001', 'p000002'] });
  assert.equal(session.statusCode, 200, session.body);
  assert.equal(ids(session).length, 10, 'k defaults to 10');
  assert.ok(!ids(session).includes('p000001') && !ids(session).includes('p000002'));
  assert.ok(!ids(await post('/v1/recommend', { similar: 'p000003', k: 4 })).includes('p000003'));
  const catalog = readFileSync(join(tiny.dir, 'catalog', 'catalog.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; category: string });
  const own = catalog.find((p) => p.id === 'p000003')!.category;
  const comps = (await post('/v1/recommend', { complement: 'p000003', k: 6 })).json() as RecommendOut;
  assert.equal(comps.results.length, 6);
  assert.ok(comps.results.every((h) => h.label !== own), `complements of a ${own}: ${comps.results.map((h) => h.label).join(', ')}`);
  const label = comps.results[0]!.label;
  const filtered = (await post('/v1/recommend', { history: ['p000001'], where: `label = '${label}'`, k: 3 })).json() as RecommendOut;
  assert.equal(filtered.results.length, Math.min(3, catalog.filter((p) => p.category === label && p.id !== 'p000001').length));
  assert.ok(filtered.results.every((h) => h.label === label));
  // An item of the index the run has no vector for is answered from the index's vectors.
  assert.equal((await post('/v1/recommend', { similar: 'rogue', k: 3 })).statusCode, 200);
  const ex = (await app.inject('/v1/examples')).json() as { recommend: Array<{ id: string; items: number }> };
  assert.ok(ex.recommend.length >= 1 && ex.recommend.every((u) => u.items > 0 && events.some((e) => e.shopper === u.id)), JSON.stringify(ex.recommend));
});

test('recommend queries arriving together score in shared batches on the model lane', async () => {
  const before = batchStats((await app.inject('/metrics')).body, 'recommend');
  const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => post('/v1/recommend', { history: [`p00000${i + 1}`], k: 3 })));
  assert.ok(rs.every((r) => r.statusCode === 200), rs.map((r) => r.body).join('\n'));
  const after = batchStats((await app.inject('/metrics')).body, 'recommend');
  assert.equal(after.sum - before.sum, 6);
  assert.ok(after.count - before.count < 6, `6 sessions scored in ${after.count - before.count} batches`);
});

test('recommend errors: 400 naming the field; 422 for an unknown user or item, an empty history, a bad filter; no index, no data', async () => {
  problem(await post('/v1/recommend', {}), 400, /exactly one of user, history, similar and complement \(got none\)/, 'user');
  problem(await post('/v1/recommend', { user: 'u00001', similar: 'p000001' }), 400, /\(got user and similar\)/, 'similar');
  problem(await post('/v1/recommend', { history: 'p000001' }), 400, /must be array/, 'history');
  problem(await post('/v1/recommend', { similar: 'p000001', k: 101 }), 400, /must be <= 100/, 'k');
  problem(await post('/v1/recommend', { similar: 'p000001', colour: 'red' }), 400, /additional properties/, 'colour');
  problem(await post('/v1/recommend', { user: 'nobody' }), 422, /unknown user 'nobody'/, 'user');
  problem(await post('/v1/recommend', { similar: 'p999999' }), 422, /unknown item 'p999999'/, 'similar');
  problem(await post('/v1/recommend', { complement: 'p999999' }), 422, /unknown item 'p999999'/, 'complement');
  problem(await post('/v1/recommend', { history: [] }), 422, /history: empty/, 'history');
  problem(await post('/v1/recommend', { history: ['p999999'] }), 422, /none of its 1 items/, 'history');
  problem(await post('/v1/recommend', { history: ['p000001'], where: 'colour = 1' }), 422, /^where: .*colour/, 'where');
  // Without an index: ids, scores and the labels of the run's data (its manifest), no titles or
  // images; a filter needs the index.
  const bare = await build({ pipeline, limits: LIMITS, closePipeline: false });
  try {
    const r = (await post('/v1/recommend', { history: ['p000001'], k: 3 }, bare)).json() as RecommendOut;
    assert.equal(r.results.length, 3);
    assert.ok(r.results.every((h) => h.title === '' && h.image === null && h.id.length > 0));
    const { labels } = await readShopperData(resolveDatasetSpec(loadDatasetSpecFile(join(tiny.dir, 'catalog', 'dataset.json'))));
    assert.ok(labels.size > 0, 'the tiny catalog has labels');
    assert.deepEqual(r.results.map((h) => h.label), r.results.map((h) => labels.get(h.id)), JSON.stringify(r.results));
    problem(await post('/v1/recommend', { history: ['p000001'], where: "label = 'hat'" }, bare), 422, /needs the catalog index/, 'where');
  } finally {
    await bare.close();
  }
  // --data names a dataset without shoppers or baskets: users and complements say what is missing.
  const catalogOnly = resolveDatasetSpec({ manifest: join(tiny.dir, 'catalog', 'catalog.jsonl'), imageCol: 'image', textCol: 'title', labelCol: 'category', idCol: 'id' });
  const noShoppers = await build({ pipeline, limits: LIMITS, index: indexDir, data: catalogOnly, closePipeline: false });
  try {
    problem(await post('/v1/recommend', { user: 'u00001' }, noShoppers), 422, /no interactions/, 'user');
    problem(await post('/v1/recommend', { complement: 'p000001' }, noShoppers), 422, /no baskets or interactions/, 'complement');
    assert.deepEqual((await noShoppers.inject('/v1/examples')).json().recommend, []);
  } finally {
    await noShoppers.close();
  }
});
