// `m6 serve` as a process: it prints where it listens (port 0: a free one), answers, and on
// SIGTERM stops taking connections, answers the request it had accepted, frees the model and
// exits 0; its flags (API key, index, the data recommend reads) are checked. Traffic goes to loopback only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers.js';
import { openCatalogIndex } from '../../src/search/index.js';
import { isLoopback } from '../../src/serve/server.js';
import { trainTinyRun, type TinyRun } from './fixtures.js';

let tiny: TinyRun;
before(async () => { tiny = await trainTinyRun('m6-serve-sig-'); });
after(() => rmSync(tiny.dir, { recursive: true, force: true }));

function spawnServe(args: string[]) {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/m6.js'), 'serve', '--run', tiny.run, '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`m6 serve did not start in 60 s: ${stderr}`)), 60_000);
    child.stdout.on('data', () => {
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m !== null) { clearTimeout(timer); resolve(m[1]!); }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`m6 serve exited ${code}: ${stderr}`)); });
  });
  url.catch(() => undefined);   // a server expected to refuse its flags never listens
  return { child, url, exited, output: () => ({ stdout, stderr }) };
}

test('SIGTERM: the accepted request is answered, new connections are refused, the process exits 0', async () => {
  // A long batch wait keeps the request queued while the signal arrives.
  const s = spawnServe(['--max-wait-ms', '1500']);
  const url = await s.url;
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const inFlight = fetch(`${url}/v1/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'red dress' }) });
  await new Promise((r) => setTimeout(r, 300));
  s.child.kill('SIGTERM');
  const res = await inFlight;
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(((await res.json()) as { dim: number }).dim, 32);
  assert.equal(await s.exited, 0, s.output().stderr);
  assert.match(s.output().stdout, /m6 serve: stopped/);
  await assert.rejects(fetch(`${url}/healthz`), 'the port is closed after shutdown');
});

test('--api-key-file: a short key is refused; with a key the API needs it', async () => {
  const short = join(tiny.dir, 'short.key');
  writeFileSync(short, 'abc\n');
  const bad = spawnServe(['--api-key-file', short]);
  assert.equal(await bad.exited, 2);
  assert.match(bad.output().stderr, /at least 16/);
  const keyFile = join(tiny.dir, 'api.key');
  writeFileSync(keyFile, '0123456789abcdef0123\n');
  const s = spawnServe(['--api-key-file', keyFile]);
  const url = await s.url;
  const body = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'red' }) };
  assert.equal((await fetch(`${url}/v1/embed`, body)).status, 401);
  assert.equal((await fetch(`${url}/v1/embed`, { ...body, headers: { ...body.headers, authorization: 'Bearer 0123456789abcdef0123' } })).status, 200);
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
});

test('--index: an index of other weights, or none at the path, is refused at startup in one line (exit 2)', async () => {
  const uri = join(tiny.dir, 'stale-index');
  const stale = await openCatalogIndex(uri, { store: 'exact', weights: { run: 'another-run', weightsDigest: 'sha256:0', model: 'm6-nano', dims: 32 } });
  await stale.close();
  const refused = spawnServe(['--index', uri]);
  assert.equal(await refused.exited, 2, refused.output().stderr);
  assert.match(refused.output().stderr, /^m6: .*stale-index: this index was built by run 'another-run'.*Rebuild the index with this run/m);
  const missing = spawnServe(['--index', join(tiny.dir, 'no-index')]);
  assert.equal(await missing.exited, 2);
  assert.match(missing.output().stderr, /no-index: no catalog index here; build one with m6 index build/);
});

test('--interactions (the dataset flags): /v1/recommend reads its shoppers from the data given, not the run\'s', async () => {
  const file = join(tiny.dir, 'shoppers.txt');
  writeFileSync(file, 'zz9 p000001 p000002 p000003\n');
  const s = spawnServe(['--interactions', file]);
  const url = await s.url;
  assert.match(s.output().stdout, /recommend's shoppers and baskets from the --data given/);
  const ask = (body: object) => fetch(`${url}/v1/recommend`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const r = await ask({ user: 'zz9', k: 2 });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(((await r.json()) as { results: unknown[] }).results.length, 2);
  const other = await ask({ user: 'u00001' });
  assert.equal(other.status, 422);
  assert.match(((await other.json()) as { detail: string }).detail, /unknown user 'u00001': .*shoppers\.txt has 1 users/);
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
});

test('isLoopback: which binds get the no-key warning', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '192.168.1.5', 'example.com']) assert.ok(!isLoopback(h), h);
});
