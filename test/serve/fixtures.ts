// A tiny run trained on every task (seconds; recommend over the synthetic catalog's 10 shoppers)
// with a quarter of its catalog held out, its catalog
// index (the exact store, built in-process), shared by the serve tests, and request helpers:
// multipart bodies built by hand (what a browser or curl -F sends) and image bytes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { m6, writeTinyConfig } from '../data/fixtures.js';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { readDataset } from '../../src/data/manifest.js';
import type { Pipeline } from '../../src/pipelines/index.js';
import { indexCatalog, openCatalogIndex, provenanceOf, type CatalogRow } from '../../src/search/index.js';

export interface TinyRun { dir: string; run: string; image: string; imageBytes: Buffer }

/**
 * Trains a one-block run on describe, answer, embed, design (with its VQ tokenizer) and recommend;
 * `config` overrides the tiny config's keys, `tasks` the tasks.
 */
export async function trainTinyRun(prefix = 'm6-serve-', o: { config?: Record<string, number>; tasks?: string } = {}): Promise<TinyRun> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '24', '--seed', '5', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'), { imageCodes: 64, ...o.config });
  const run = join(dir, 'run');
  const trained = await m6(['train', '--data', join(dir, 'catalog', 'dataset.json'), '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300',
    '--workers', '0', '--steps', '2', '--tasks', o.tasks ?? 'describe,answer,embed,design,recommend', '--vq-steps', '2', '--split', 'train:0.75,test:0.25', '--out', run]);
  assert.equal(trained.status, 0, trained.stderr);
  const image = join(dir, 'catalog', 'images', 'p000001.png');
  return { dir, run, image, imageBytes: readFileSync(image) };
}

/** A multipart/form-data body: string fields and at most one file. */
export function multipart(fields: Record<string, string>, file?: { name: string; filename: string; type: string; bytes: Buffer }): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----m6test' + Math.random().toString(16).slice(2);
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file !== undefined) {
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${file.name}"; filename="${file.filename}"\r\ncontent-type: ${file.type}\r\n\r\n`), file.bytes, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** A PNG of one colour. */
export function pngOf(width: number, height: number, rgb: [number, number, number] = [200, 30, 30]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png({ compressionLevel: 9 }).toBuffer();
}

/** The tiny run's whole catalog in an index at DIR/index-STORE (plus `extra` rows); returns its folder. */
export async function buildTinyIndex(tiny: TinyRun, pipeline: Pipeline, o: { extra?: CatalogRow[]; store?: 'exact' | 'lance' } = {}): Promise<string> {
  const store = o.store ?? 'exact', extra = o.extra ?? [];
  const uri = join(tiny.dir, `index-${store}`);
  const spec = resolveDatasetSpec(loadDatasetSpecFile(join(tiny.dir, 'catalog', 'dataset.json')));
  const index = await openCatalogIndex(uri, { store, weights: await provenanceOf(pipeline) });
  try {
    const r = await indexCatalog(pipeline, (await readDataset(spec)).rows, index, { onExisting: 'skip' });
    assert.deepEqual(r.failed, []);
    if (extra.length > 0) await index.upsert(extra);
  } finally {
    await index.close();
  }
  return uri;
}
