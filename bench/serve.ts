// `npm run bench -- serve [--json] [--quick] [--run=DIR] [--requests=N]`: `m6 serve` under real
// traffic, on loopback only, bounded in count, stopping by itself. The server is a child process
// (so a crash is seen as one, and its resident memory is its own). Figures:
//   (a) mixed traffic at concurrency 32 — valid describe / embed (text, image) calls beside malformed
//       JSON, truncated multipart, a text file named .jpg, a 90-megapixel JPEG (a valid photo) and
//       bodies over the limit: crashes, 5xx answers to valid requests not shed by the queue (goal 0),
//       p50/p99 per route, resident memory after the run vs after warm-up (goal within 10%);
//   (b) describe at concurrency 16 (autocannon), batched (--max-batch 16) vs one at a time
//       (--max-batch 1), the reference measured in the same command (goal ≥ 3×);
//   (c) describe latency of short and long requests mixed (continuous batching: a short one does
//       not wait for the long ones);
//   (d) /healthz latency while designs run (generation yields to the event loop between decode
//       steps: a health check waits about one step, not the design).
// The run is a tiny model trained first (seconds) unless --run names one.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { intFlag, median, printFigures, type Figure } from './report.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const m6 = join(root, 'bin/m6.js');
const BODY_LIMIT_MB = 4;

function runCli(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [m6, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`m6 ${args[0]} exited ${code}: ${err}`))));
  });
}

async function trainRun(dir: string): Promise<string> {
  await runCli(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '24', '--seed', '5', '--size', '64']);
  writeFileSync(join(dir, 'tiny.json'), JSON.stringify({ layers: 1, dim: 32, heads: 2, ffnDim: 64, imageSize: 32, patchSize: 8, stemChannels: 8, maxTextLen: 48, imageCodes: 64 }));
  const run = join(dir, 'run');
  await runCli(['train', '--data', join(dir, 'catalog', 'dataset.json'), '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300',
    '--workers', '0', '--steps', '2', '--tasks', 'describe,answer,embed,design', '--vq-steps', '2', '--out', run]);
  return run;
}

interface Server { child: ChildProcess; url: string; exited: () => boolean; stop: () => Promise<number | null> }

async function startServer(run: string, extra: string[]): Promise<Server> {
  const child = spawn(process.execPath, [m6, 'serve', '--run', run, '--host', '127.0.0.1', '--port', '0', '--max-body-mb', String(BODY_LIMIT_MB), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '', exited = false;
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => { exited = true; resolve(code); }));
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    void closed.then((code) => reject(new Error(`m6 serve exited ${code}: ${err}`)));
  });
  return { child, url, exited: () => exited, stop: async () => { child.kill('SIGTERM'); return closed; } };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

interface Shot { kind: string; valid: boolean; path: string; body: Buffer; headers: Record<string, string> }

function form(fields: Record<string, string>, file?: { filename: string; type: string; bytes: Buffer }): { body: Buffer; headers: Record<string, string> } {
  const boundary = '----m6bench';
  const parts: Buffer[] = Object.entries(fields).map(([k, v]) => Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file !== undefined) parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="${file.filename}"\r\ncontent-type: ${file.type}\r\n\r\n`), file.bytes, Buffer.from('\r\n'));
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** One cycle of the mixed traffic: 14 valid requests, 6 malformed, in a fixed order. */
async function shots(photo: Buffer): Promise<Shot[]> {
  const json = (o: unknown) => ({ body: Buffer.from(JSON.stringify(o)), headers: { 'content-type': 'application/json' } });
  // A 90-megapixel product photo (9487 × 9487): JPEG shrink-on-load decodes it at 1/8 scale.
  const huge = await sharp({ create: { width: 9487, height: 9487, channels: 3, background: { r: 240, g: 240, b: 236 } } }).jpeg({ quality: 30 }).toBuffer();
  const valid = (kind: string, path: string, r: { body: Buffer; headers: Record<string, string> }): Shot => ({ kind, valid: true, path, ...r });
  const bad = (kind: string, path: string, r: { body: Buffer; headers: Record<string, string> }): Shot => ({ kind, valid: false, path, ...r });
  const multipartPhoto = form({}, { filename: 'p.png', type: 'image/png', bytes: photo });
  return [
    ...Array.from({ length: 6 }, () => valid('describe', '/v1/describe', json({ image: photo.toString('base64') }))),
    ...Array.from({ length: 4 }, (_, i) => valid('embed-text', '/v1/embed', json({ text: `red polka-dot dress ${i}` }))),
    valid('embed-image', '/v1/embed', multipartPhoto),
    valid('embed-image', '/v1/embed', multipartPhoto),
    valid('describe-multipart', '/v1/describe', multipartPhoto),
    valid('describe-90mp', '/v1/describe', form({}, { filename: 'huge.jpg', type: 'image/jpeg', bytes: huge })),
    bad('malformed-json', '/v1/embed', { body: Buffer.from('{"text": "red'), headers: { 'content-type': 'application/json' } }),
    bad('truncated-multipart', '/v1/describe', { ...multipartPhoto, body: multipartPhoto.body.subarray(0, multipartPhoto.body.length - 60) }),
    bad('text-as-jpg', '/v1/describe', form({}, { filename: 'photo.jpg', type: 'image/jpeg', bytes: Buffer.from('not a photo at all\n'.repeat(20)) })),
    bad('oversized', '/v1/embed', json({ text: 'x'.repeat(BODY_LIMIT_MB * 2 ** 20 + 10) })),
    bad('unknown-field', '/v1/embed', json({ text: 'red', colour: 'blue' })),
    bad('empty-prompt', '/v1/design', json({ prompt: ' ' })),
  ];
}

interface Outcome { kind: string; valid: boolean; status: number; ms: number; shed: boolean }

/** `total` requests from `concurrency` loops over the shots, in order; every answer recorded. */
async function mixed(url: string, list: Shot[], total: number, concurrency: number): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const s = list[i % list.length]!;
      const t = performance.now();
      let status = 0, shed = false;
      try {
        const res = await fetch(url + s.path, { method: 'POST', body: s.body, headers: s.headers, signal: AbortSignal.timeout(120_000) });
        status = res.status;
        const text = await res.text();
        shed = status === 429 || (status === 503 && /"errorType":"(timeout|overloaded|shutting_down)"/.test(text));
      } catch {
        status = 0;   // the connection failed (a server that closed an oversized upload early)
      }
      out.push({ kind: s.kind, valid: s.valid, status, ms: performance.now() - t, shed });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

const quantile = (xs: number[], q: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN; };

async function describeThroughput(run: string, maxBatch: number, body: string, amount: number): Promise<{ rps: number; tokens: number }> {
  const server = await startServer(run, ['--max-batch', String(maxBatch)]);
  try {
    // How long a description the run writes: with a few tokens each, HTTP, base64 and image decode
    // (not batched) dominate; with a sentence, the model's steps do, and batching shares them.
    const sample = await fetch(`${server.url}/v1/describe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.json() as Promise<{ tokenIds: number[] }>);
    // One at a time, a request waits for the 15 ahead of it: past autocannon's 10 s default on a slow machine.
    const opts = { url: `${server.url}/v1/describe`, method: 'POST' as const, headers: { 'content-type': 'application/json' }, body, connections: 16, timeout: 120 };
    await autocannon({ ...opts, amount: 32 });   // warm-up
    // Timed to the last response: autocannon settles only at its next sample tick (every second),
    // so its own duration, or a clock read when it settles, comes in whole seconds — which made
    // every earlier figure 480 requests over 3, 4, 6 or 8 s.
    const t0 = performance.now();
    let last = t0, answered = 0;
    const r = await new Promise<autocannon.Result>((resolve, reject) => {
      const run = autocannon({ ...opts, amount }, (err, result) => (err ? reject(err) : resolve(result)));
      run.on('response', () => { answered++; last = performance.now(); });
    });
    if (r.non2xx > 0 || r.errors > 0) throw new Error(`describe throughput (max-batch ${maxBatch}): ${r.non2xx} non-2xx, ${r.errors} errors`);
    return { rps: answered / ((last - t0) / 1000), tokens: sample.tokenIds.length };
  } finally {
    await server.stop();
  }
}

/**
 * Describe latency when lengths differ: 16 clients in closed loops, one request in four asking for
 * `long` tokens and three for 4. With fixed batches a short request waits for the longest row of
 * its batch; with continuous batching it leaves at its own end.
 */
async function mixedLengthLatency(run: string, maxBatch: number, photo: Buffer, total: number): Promise<{ rps: number; shortP50: number; longP50: number }> {
  const server = await startServer(run, ['--max-batch', String(maxBatch)]);
  try {
    const image = photo.toString('base64');
    const lat: Record<'short' | 'long', number[]> = { short: [], long: [] };
    let sent = 0;
    const warm = 32;
    const t0 = performance.now();
    let tWarm = t0;
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; sent < total + warm; i++) {
        const kind = (i + w) % 4 === 0 ? 'long' : 'short';
        const n = sent++;
        const t = performance.now();
        const r = await fetch(`${server.url}/v1/describe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image, maxNewTokens: kind === 'long' ? 48 : 4 }) });
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`describe (max-batch ${maxBatch}): status ${r.status}`);
        if (n === warm) tWarm = t;
        if (n >= warm) lat[kind].push(performance.now() - t);
      }
    }));
    return { rps: total / ((performance.now() - tWarm) / 1000), shortP50: median(lat.short), longP50: median(lat.long) };
  } finally {
    await server.stop();
  }
}

/** /healthz round trips every 5 ms while `designs` design requests (n 4) run. */
async function healthDuringDesign(url: string, designs: number): Promise<{ p50: number; max: number; designMs: number }> {
  const pings: number[] = [];
  let running = true;
  const pinger = (async () => {
    while (running) {
      const t = performance.now();
      await fetch(`${url}/healthz`);
      pings.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const t = performance.now();
  await Promise.all(Array.from({ length: designs }, (_, i) => fetch(`${url}/v1/design`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'red dress', n: 4, seed: i }) }).then((r) => r.text())));
  const designMs = performance.now() - t;
  running = false;
  await pinger;
  return { p50: median(pings), max: Math.max(...pings), designMs };
}

export async function run(opts: { json: boolean; quick?: boolean }): Promise<Record<string, number>> {
  const argv = process.argv.slice(2);
  const total = intFlag(argv, 'requests', opts.quick ? 2000 : 10_000, 20);
  const given = argv.find((a) => a.startsWith('--run='))?.slice(6);
  const dir = mkdtempSync(join(tmpdir(), 'm6-bench-serve-'));
  try {
    const runDir = given ?? await trainRun(dir);
    const photo = readFileSync(join(given === undefined ? join(dir, 'catalog') : join(runDir, '..', 'catalog'), 'images', 'p000001.png'));
    const list = await shots(photo);
    const server = await startServer(runDir, []);
    let crashed = 0, figures: Figure[] = [];
    try {
      // Warm-up: the same mix, long enough for full batches of every kind, so the allocators reach
      // their working size before memory is read.
      await mixed(server.url, list, opts.quick ? 300 : 1000, 32);
      const rss = [rssMb(server.child.pid!)];
      const t = performance.now();
      // Two halves, memory read after each: growth that goes on in the second half would be a leak.
      const outcomes = await mixed(server.url, list, Math.floor(total / 2), 32);
      rss.push(rssMb(server.child.pid!));
      outcomes.push(...await mixed(server.url, list, total - Math.floor(total / 2), 32));
      const seconds = (performance.now() - t) / 1000;
      await new Promise((r) => setTimeout(r, 1000));
      crashed = server.exited() ? 1 : 0;
      rss.push(crashed ? NaN : rssMb(server.child.pid!));
      const health = await healthDuringDesign(server.url, opts.quick ? 2 : 4);
      figures = mixedFigures(outcomes, seconds, rss, crashed, health);
    } finally {
      if (!server.exited()) await server.stop();
    }
    const amount = opts.quick ? 160 : 480;
    const body = JSON.stringify({ image: photo.toString('base64') });
    const batched = await describeThroughput(runDir, 16, body, amount);
    const single = await describeThroughput(runDir, 1, body, amount);
    const mixedLengths = await mixedLengthLatency(runDir, 16, photo, opts.quick ? 320 : 640);
    figures.push(
      { key: 'describe_mixed_lengths_rps', value: mixedLengths.rps, unit: 'req/s', note: 'concurrency 16, one request in four 48 tokens, three 4' },
      { key: 'describe_mixed_lengths_short_p50_ms', value: mixedLengths.shortP50, unit: 'ms', note: 'a 4-token request: leaves at its own end (continuous batching)' },
      { key: 'describe_mixed_lengths_long_p50_ms', value: mixedLengths.longP50, unit: 'ms', note: 'a 48-token request' },
      { key: 'describe_tokens_per_answer', value: batched.tokens, unit: 'tokens', note: 'what the run writes for the bench photo' },
      { key: 'describe_batched_rps', value: batched.rps, unit: 'req/s', note: 'concurrency 16, --max-batch 16' },
      { key: 'describe_one_at_a_time_rps', value: single.rps, unit: 'req/s', note: 'concurrency 16, --max-batch 1 (the reference)' },
      { key: 'describe_batching_speedup', value: batched.rps / single.rps, unit: '×', note: 'goal ≥ 3' },
    );
    printFigures('m6 serve: mixed traffic, batching, the event loop during designs', figures, opts.json, { requests: total, concurrency: 32 });
    return Object.fromEntries(figures.map((f) => [f.key, f.value]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function mixedFigures(outcomes: Outcome[], seconds: number, [rssWarm, rssHalf, rssAfter]: number[], crashed: number, health: { p50: number; max: number; designMs: number }): Figure[] {
  const valid5xx = outcomes.filter((o) => o.valid && !o.shed && (o.status >= 500 || o.status === 0)).length;
  const invalidOk = outcomes.filter((o) => !o.valid && o.status >= 200 && o.status < 300).length;
  const validNot2xx = outcomes.filter((o) => o.valid && !o.shed && (o.status < 200 || o.status >= 300)).length;
  const figures: Figure[] = [
    { key: 'crashes', value: crashed, unit: '', note: 'goal 0' },
    { key: 'valid_5xx_unshed', value: valid5xx, unit: 'answers', note: 'goal 0' },
    { key: 'valid_not_2xx_unshed', value: validNot2xx, unit: 'answers' },
    { key: 'shed', value: outcomes.filter((o) => o.shed).length, unit: 'answers', note: '429 / 503 from the queue' },
    { key: 'malformed_answered_2xx', value: invalidOk, unit: 'answers', note: 'goal 0' },
    { key: 'mixed_rps', value: outcomes.length / seconds, unit: 'req/s' },
    { key: 'rss_after_warmup_mb', value: rssWarm!, unit: 'MiB' },
    { key: 'rss_half_run_mb', value: rssHalf!, unit: 'MiB' },
    { key: 'rss_after_run_mb', value: rssAfter!, unit: 'MiB' },
    { key: 'rss_growth_pct', value: (100 * (rssAfter! - rssWarm!)) / rssWarm!, unit: '%', note: 'goal within 10' },
    { key: 'rss_growth_second_half_pct', value: (100 * (rssAfter! - rssHalf!)) / rssHalf!, unit: '%', note: 'a leak would keep growing here' },
    { key: 'healthz_p50_during_design_ms', value: health.p50, unit: 'ms' },
    { key: 'healthz_max_during_design_ms', value: health.max, unit: 'ms', note: `designs (n 4) took ${Math.round(health.designMs)} ms together` },
  ];
  for (const kind of [...new Set(outcomes.map((o) => o.kind))]) {
    const ms = outcomes.filter((o) => o.kind === kind).map((o) => o.ms);
    const statuses = [...new Set(outcomes.filter((o) => o.kind === kind).map((o) => o.status))].sort().join('/');
    figures.push({ key: `${kind}_p50_ms`, value: quantile(ms, 0.5), unit: 'ms', note: `status ${statuses}` }, { key: `${kind}_p99_ms`, value: quantile(ms, 0.99), unit: 'ms' });
  }
  return figures;
}
