// Catalog images that live inside tar shards are served as their member's bytes, under the same
// image-root check as files: a shard outside the root serves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { readDataset } from '../../src/data/manifest.js';
import { packDataset } from '../../src/data/shardWriter.js';
import { writeSyntheticCatalog } from '../../src/data/synth/catalog.js';
import { imageUnder, sendImage } from '../../src/serve/images.js';
import { HttpProblem } from '../../src/serve/problem.js';
import { tempDir } from '../data/fixtures.js';

test('an image inside a shard is served as its member\'s bytes, with its type and an ETag; outside the root, a 404', async (t) => {
  const dir = tempDir(t);
  await writeSyntheticCatalog({ out: join(dir, 'cat'), count: 4, seed: 2, size: 64 });
  const packed = await packDataset(resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'cat', 'dataset.json'))), { out: join(dir, 'shards') });
  const row = (await readDataset(resolveDatasetSpec(loadDatasetSpecFile(packed.spec)))).rows[2]!;
  assert.ok(imageUnder(row.imagePath!, join(dir, 'shards')));
  assert.ok(!imageUnder(row.imagePath!, join(dir, 'cat')));
  const app = Fastify();
  app.setErrorHandler((err, _req, reply) => reply.code(err instanceof HttpProblem ? err.status : 500).send({ error: (err as Error).message }));
  app.get('/in', (req, reply) => sendImage(req, reply, row.imagePath, join(dir, 'shards'), 'row'));
  app.get('/out', (req, reply) => sendImage(req, reply, row.imagePath, join(dir, 'cat'), 'row'));
  t.after(() => app.close());
  const r = await app.inject('/in');
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['content-type'], 'image/png');
  assert.ok(r.rawPayload.equals(readFileSync(join(dir, 'cat', 'images', `${row.id}.png`))), 'the member\'s bytes');
  assert.equal((await app.inject({ url: '/in', headers: { 'if-none-match': String(r.headers.etag) } })).statusCode, 304);
  assert.equal((await app.inject('/out')).statusCode, 404);
});
