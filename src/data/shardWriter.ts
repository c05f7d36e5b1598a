// `m6 data pack`: any dataset the project reads (a manifest, an image folder, other shards) written
// as WebDataset-style tar shards plus a dataset.json naming them. Each row becomes one sample:
// KEY.<image extension> (the image file's own bytes, never re-encoded), KEY.txt (its text) and
// KEY.json (its fields: the manifest's columns, its id), so the packed spec keeps the source's
// column roles and the same rows land in the same splits. Shards are written one at a time through
// tar-stream to a temp name and renamed into place (io/atomicFile.ts); dataset.json comes last, so
// a reader never finds a spec naming a shard that is still being written.
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, rm } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pack as tarPack, type Pack } from 'tar-stream';
import { BadRowLog } from './badRows.js';
import { DatasetSpecError, type DatasetSpec } from './datasetSpec.js';
import { readDataset, reportBad, type DataRow } from './manifest.js';
import { looksLikeImage, SHARD_IMAGE_EXTENSIONS } from './shards.js';
import { parseShardMemberRef, readShardMember } from './shardMember.js';
import { renameDurably, tempNameFor, writeFileAtomic } from '../io/atomicFile.js';
import { fileReadProblem } from '../torch/inputError.js';

export interface PackOptions {
  out: string;
  /** Samples per shard (WebDataset's ShardWriter maxcount); default 1000. */
  samplesPerShard?: number;
  /** A shard is closed before it would pass this many bytes (maxsize); default 1 GiB. */
  maxShardBytes?: number;
  /** Called after each row: rows done of all, and how many were skipped (a progress line's figures). */
  onProgress?: (p: { done: number; total: number; skipped: number; failed: number }) => void;
}

export interface PackResult {
  samples: number;
  shards: string[];
  bytes: number;
  /** Source rows (and images) skipped, by reason. */
  bad: BadRowLog;
  spec: string;
}

/** tar members are 512-byte blocks after a 512-byte header: what a sample adds to its shard. */
function tarBytes(size: number): number {
  return 512 + Math.ceil(size / 512) * 512;
}

/** The image's bytes and extension; null (reported) when the file is missing, unreadable or not the image its name says. */
async function imageOf(row: DataRow, bad: BadRowLog): Promise<{ bytes: Buffer; ext: string } | null> {
  const path = row.imagePath!;
  const member = parseShardMemberRef(path);
  const c = { bad, source: row.source, row: row.row };
  let ext = extname(member?.name ?? path).slice(1).toLowerCase();
  if (ext === 'jpeg') ext = 'jpg';
  if (!(SHARD_IMAGE_EXTENSIONS as readonly string[]).includes(ext)) {
    reportBad(c, { reason: 'not an image', file: path, expected: SHARD_IMAGE_EXTENSIONS.join('/'), got: ext === '' ? 'no extension' : `.${ext}` });
    return null;
  }
  let bytes: Buffer;
  try {
    bytes = member !== undefined ? await readShardMember(member) : await readFile(path);
  } catch (err) {
    reportBad(c, { reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing file' : 'unreadable file', file: path, got: fileReadProblem(err) });
    return null;
  }
  if (bytes.length === 0) reportBad(c, { reason: 'empty file', file: path, got: 'zero bytes' });
  else if (!looksLikeImage(ext, bytes.subarray(0, 16))) reportBad(c, { reason: 'not an image', file: path, expected: `${ext} bytes`, got: `bytes ${bytes.subarray(0, 8).toString('hex')}` });
  else return { bytes, ext };
  return null;
}

/** One shard being written: its tar stream into a temp file, renamed into place by `close`. */
class ShardFile {
  readonly tmp: string;
  private readonly tar: Pack;
  private readonly done: Promise<void>;
  samples = 0;
  bytes = 1024;  // the two zero blocks that end an archive

  constructor(readonly file: string) {
    this.tmp = tempNameFor(file);
    this.tar = tarPack();
    const sink = createWriteStream(this.tmp);
    this.done = new Promise((resolve, reject) => {
      sink.on('finish', resolve);
      sink.on('error', reject);
      this.tar.on('error', reject);
    });
    this.tar.pipe(sink);
  }

  /** Adds a member; fixed mtime, owner and mode, so the same rows write byte-identical shards. */
  add(name: string, data: Buffer): Promise<void> {
    this.bytes += tarBytes(data.length);
    return new Promise((resolve, reject) => {
      this.tar.entry({ name, mtime: new Date(0), mode: 0o644, uid: 0, gid: 0, uname: '', gname: '' }, data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Ends the archive, fsyncs it and renames it into place; returns its size in bytes. */
  async close(): Promise<number> {
    this.tar.finalize();
    await this.done;
    const fh = await open(this.tmp, 'r+');
    let size: number;
    try {
      await fh.sync();
      size = (await fh.stat()).size;
    } finally {
      await fh.close();
    }
    renameDurably(this.tmp, this.file);
    return size;
  }
}

/** A row's sample key: its id when that is a plain name (p000042), else its place (s000000042); never one used before. */
function sampleKey(row: DataRow, index: number, used: Set<string>): string {
  const key = /^[A-Za-z0-9_-]{1,128}$/.test(row.id) && !used.has(row.id) ? row.id : `s${String(index).padStart(9, '0')}`;
  used.add(key);
  return key;
}

/** The sample's members: image, txt (the row's text), json (its fields and id). */
function sampleMembers(row: DataRow, key: string, image: { bytes: Buffer; ext: string }, idField: string): Array<[string, Buffer]> {
  const fields: Record<string, string> = Object.fromEntries(row.fields ?? []);
  delete fields.__key__;  // a shard source's own key: the reader sets it from the member names
  fields[idField] = row.id;
  const members: Array<[string, Buffer]> = [[`${key}.${image.ext}`, image.bytes]];
  if (row.text !== undefined) {
    members.push([`${key}.txt`, Buffer.from(row.text)]);
    delete fields.txt;  // a shard source's txt member: written again as this one
  }
  members.push([`${key}.json`, Buffer.from(JSON.stringify(fields))]);
  return members;
}

function checkPackOptions(o: PackOptions): { perShard: number; maxBytes: number } {
  const perShard = o.samplesPerShard ?? 1000, maxBytes = o.maxShardBytes ?? 2 ** 30;
  if (!Number.isInteger(perShard) || perShard < 1) throw new RangeError(`samples per shard must be a positive integer, got ${perShard}`);
  if (!Number.isInteger(maxBytes) || maxBytes < 4096) throw new RangeError(`max shard bytes must be an integer ≥ 4096, got ${maxBytes}`);
  return { perShard, maxBytes };
}

/** Writes the rows' samples into shards of at most perShard samples and maxBytes bytes (a sample bigger than that gets a shard of its own). */
async function writeShards(rows: readonly DataRow[], out: string, o: { perShard: number; maxBytes: number; idField: string; onProgress?: PackOptions['onProgress'] }, bad: BadRowLog): Promise<{ shards: string[]; samples: number; bytes: number }> {
  const shards: string[] = [], used = new Set<string>();
  let shard: ShardFile | undefined, samples = 0, bytes = 0;
  const finish = async (): Promise<void> => {
    if (shard === undefined) return;
    bytes += await shard.close();
    shards.push(shard.file);
    shard = undefined;
  };
  try {
    for (const [done, row] of rows.entries()) {
      if (done > 0) o.onProgress?.({ done, total: rows.length, skipped: 0, failed: done - samples });
      const image = await imageOf(row, bad);
      if (image === null) continue;
      const members = sampleMembers(row, sampleKey(row, samples, used), image, o.idField);
      const size = members.reduce((n, [, b]) => n + tarBytes(b.length), 0);
      if (shard !== undefined && (shard.samples >= o.perShard || shard.bytes + size > o.maxBytes)) await finish();
      shard ??= new ShardFile(join(out, `${String(shards.length).padStart(6, '0')}.tar`));
      for (const [name, data] of members) await shard.add(name, data);
      shard.samples++;
      samples++;
    }
    await finish();
    o.onProgress?.({ done: rows.length, total: rows.length, skipped: 0, failed: rows.length - samples });
  } catch (err) {
    if (shard !== undefined) await rm(shard.tmp, { force: true });  // never a half shard left behind
    throw err;
  }
  return { shards, samples, bytes };
}

/** `{000000..000041}.tar`: the shards' names as one brace pattern (they are numbered from 0 without gaps). */
export function shardPattern(count: number): string {
  const last = String(count - 1).padStart(6, '0');
  return count === 1 ? `${last}.tar` : `{${'0'.padStart(last.length, '0')}..${last}}.tar`;
}

/** The interactions and baskets keys of the packed spec, their files copied beside the shards. */
async function copyInteractions(spec: DatasetSpec, out: string): Promise<Record<string, unknown>> {
  const keys: Record<string, unknown> = {};
  const i = spec.interactions;
  if (i !== undefined) {
    await copyFile(i.file, join(out, basename(i.file)));
    Object.assign(keys, { interactions: basename(i.file), interactionsFormat: i.format, userCol: i.userCol, itemCol: i.itemCol });
    if (i.timeCol !== undefined) keys.timeCol = i.timeCol;
    if (i.eventCol !== undefined) keys.eventCol = i.eventCol;
    if (i.events !== undefined) keys.events = i.events;
  }
  const b = spec.baskets;
  if (b !== undefined) {
    const name = b.file === i?.file || basename(b.file) === basename(i?.file ?? '') ? `baskets-${basename(b.file)}` : basename(b.file);
    await copyFile(b.file, join(out, name));
    keys.baskets = { file: name, userCol: b.userCol, itemCol: b.itemCol, format: b.format, ...(b.delimiter !== undefined ? { delimiter: b.delimiter } : {}) };
  }
  return keys;
}

/** The packed dataset.json: the shards, and the source's column roles, now over each sample's json keys. */
function packedSpec(spec: DatasetSpec, count: number, idField: string): Record<string, unknown> {
  const out: Record<string, unknown> = { shards: shardPattern(count) };
  const text = [...spec.textCols, ...spec.textFileCols];
  if (text.length > 0) out.textCol = text;
  if (spec.textJoin !== '\n') out.textJoin = spec.textJoin;
  const label = spec.labelCol ?? (spec.imageFolder !== undefined ? 'label' : undefined);
  if (label !== undefined) out.labelCol = label;
  out.idCol = idField;
  if (spec.splitCol !== undefined) out.splitCol = spec.splitCol;
  if (spec.split !== undefined) out.split = Object.fromEntries(spec.split.map((s) => [s.name, s.fraction]));
  if (spec.split !== undefined && spec.splitSeed !== 0) out.splitSeed = spec.splitSeed;
  if (spec.splitGroupCol !== undefined) out.splitGroupCol = spec.splitGroupCol;
  return out;
}

/** Packs every usable row of `spec` into shards under `o.out`, then writes `o.out/dataset.json`. */
export async function packDataset(spec: DatasetSpec, o: PackOptions): Promise<PackResult> {
  const limits = checkPackOptions(o);
  if (spec.shards?.some((s) => dirname(s) === resolve(o.out))) {
    throw new DatasetSpecError(`--out ${o.out} holds the shards being packed: the new shards would replace them while they are read; pack into another folder`);
  }
  const bad = new BadRowLog();
  const dataset = await readDataset(spec, { bad, keepFields: true });
  if (!dataset.rows.some((r) => r.imagePath !== undefined)) {
    throw new DatasetSpecError('m6 data pack writes image samples (key.jpg + key.txt + key.json): the dataset has no image column (give --image-col)');
  }
  // The id travels in each sample's json; a source column already named `id` that is not the id keeps its name.
  const idField = spec.idCol ?? (dataset.columns.includes('id') ? 'm6_id' : 'id');
  await mkdir(o.out, { recursive: true });
  const written = await writeShards(dataset.rows.filter((r) => r.imagePath !== undefined), o.out, { ...limits, idField, ...(o.onProgress !== undefined ? { onProgress: o.onProgress } : {}) }, bad);
  if (written.samples === 0) throw new DatasetSpecError(`no usable rows to pack: all ${dataset.totalRows} were bad`);
  const specFile = join(o.out, 'dataset.json');
  const packed = { ...packedSpec(spec, written.shards.length, idField), ...(await copyInteractions(spec, o.out)) };
  writeFileAtomic(specFile, JSON.stringify(packed, null, 2) + '\n');
  return { samples: written.samples, shards: written.shards, bytes: written.bytes, bad, spec: specFile };
}
