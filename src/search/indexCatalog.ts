// A catalog into its index: every row of a dataset embedded by a trained run (image and text, in
// batches) and upserted with its own columns. An interrupted build is finished by running it again:
// rows already in the index are skipped before anything is embedded. Rows that cannot be embedded
// (an unreadable image, no text) are reported with their file and row, and the others go in.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DataRow } from '../data/manifest.js';
import type { Pipeline } from '../pipelines/index.js';
import { runDirOf } from '../train/vqFiles.js';
import type { CatalogIndex, IndexProvenance, UpsertReport } from './catalogIndex.js';
import type { CatalogRow } from './rows.js';

/** Who made the vectors: the run folder, a digest of the checkpoint's weights file, the model, the dimension. */
export async function provenanceOf(pipeline: Pipeline): Promise<IndexProvenance> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(join(pipeline.checkpoint, 'model.safetensors'))) hash.update(chunk as Buffer);
  return { run: resolve(runDirOf(pipeline.checkpoint)), weightsDigest: `sha256:${hash.digest('hex')}`, model: pipeline.config.name, dims: pipeline.config.dim };
}

export interface IndexCatalogOptions {
  /** Rows embedded and written at once (default 256). */
  batchSize?: number;
  /** Existing ids: skipped (a build, resumable) or re-embedded and replaced (an update). */
  onExisting: 'skip' | 'update';
  onProgress?: (p: { done: number; total: number; skipped: number; failed: number }) => void;
}

export interface IndexCatalogReport extends Omit<UpsertReport, 'bad'> {
  /** Rows already in the index, not embedded again (a resumed build). */
  present: number;
  /** Rows that could not be embedded or stored, each with where it came from and why. */
  failed: Array<{ id: string; source: string; row: number; error: string }>;
}

/** The row's columns as the index stores them: title (its caption), label, price, attributes, image path. */
export function catalogColumns(r: DataRow): Pick<CatalogRow, 'title' | 'label' | 'price' | 'attributes' | 'imagePath'> {
  const title = r.caption ?? r.text;
  return {
    ...(title ? { title } : {}), ...(r.label !== undefined ? { label: r.label } : {}), ...(r.price !== undefined ? { price: r.price } : {}),
    ...(r.attributes !== undefined ? { attributes: r.attributes } : {}), ...(r.imagePath !== undefined ? { imagePath: r.imagePath } : {}),
  };
}

export async function indexCatalog(pipeline: Pipeline, rows: readonly DataRow[], index: CatalogIndex, o: IndexCatalogOptions): Promise<IndexCatalogReport> {
  const batchSize = o.batchSize ?? 256;
  const report: IndexCatalogReport = { inserted: 0, updated: 0, skipped: 0, present: 0, failed: [], annBuilt: false };
  for (let at = 0; at < rows.length; at += batchSize) {
    let part = rows.slice(at, at + batchSize);
    if (o.onExisting === 'skip') {
      const present = new Set((await index.get(part.map((r) => r.id))).map((r) => r.id));
      report.present += present.size;
      part = part.filter((r) => !present.has(r.id));
    }
    const usable = part.filter((r) => {
      const why = r.imagePath === undefined ? 'no image' : !(r.caption ?? r.text) ? 'no text' : undefined;
      if (why !== undefined) report.failed.push({ id: r.id, source: r.source, row: r.row, error: why });
      return why === undefined;
    });
    const images = await pipeline.embed({ images: usable.map((r) => r.imagePath!) });
    const texts = await pipeline.embed({ texts: usable.map((r) => (r.caption ?? r.text)!) });
    const ready: CatalogRow[] = [], readyFrom: DataRow[] = [];
    usable.forEach((r, i) => {
      const image = images[i]!, text = texts[i]!;
      if (!image.ok || !text.ok) report.failed.push({ id: r.id, source: r.source, row: r.row, error: !image.ok ? image.error : (text as { error: string }).error });
      else { ready.push({ id: r.id, image: image.vector, text: text.vector, ...catalogColumns(r) }); readyFrom.push(r); }
    });
    // The ANN index (past the size threshold) is trained once, with the last batch.
    const last = at + batchSize >= rows.length;
    const written = await index.upsert(ready, { onExisting: o.onExisting, buildAnn: last });
    report.annBuilt ||= written.annBuilt;
    report.inserted += written.inserted;
    report.updated += written.updated;
    report.skipped += written.skipped;
    for (const b of written.bad) {
      const r = readyFrom[b.row - 1]!;
      report.failed.push({ id: r.id, source: r.source, row: r.row, error: `${b.reason} (${b.field}: expected ${b.expected}, got ${b.got})` });
    }
    o.onProgress?.({ done: Math.min(at + batchSize, rows.length), total: rows.length, skipped: report.present, failed: report.failed.length });
  }
  return report;
}
