// WebDataset-style tar shards: each sample is a run of consecutive members sharing a key (the member's
// path up to the first dot of its basename), each member a field named by its extension: jpg/png/webp
// the image, txt the caption, json the row's other fields, cls a label. A shard is read sequentially
// with tar-stream, never unpacked: text members are kept, image members only located (shard, offset,
// size: shardMember.ts), so memory holds the rows, not the pictures.
//
// A sample is a record like a manifest's row, and becomes a DataRow by the same rules (manifest.ts's
// rowFromFields): the spec's textCol/labelCol/idCol/splitCol name json keys (or txt, cls, __key__).
// A bad sample (an image that is not one, no image, invalid JSON) is reported with its shard and key
// and skipped; a truncated shard keeps the samples before the cut.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { extract, type Header } from 'tar-stream';
import { BadRowLog } from './badRows.js';
import { DatasetSpecError, rowSourceOf, type DatasetSpec } from './datasetSpec.js';
import { jsonValueToString, reportBad, rowFromFields, type Dataset, type DataRow, type RowContext } from './manifest.js';
import { deriveSeed, Rng } from './random.js';
import { shardMemberRef } from './shardMember.js';
import { fileReadProblem } from '../torch/inputError.js';

/** Image members, in the order a sample's image is chosen from when the spec names none. */
export const SHARD_IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif', 'heic'] as const;
/** A text member past this is not a caption: the sample is refused rather than held in memory. */
const MAX_TEXT_MEMBER_BYTES = 16 * 2 ** 20;

export interface ShardSample {
  shard: string;
  key: string;
  /** 1-based place of the sample among those read (in its shard; across shards when they share one count). */
  ordinal: number;
  /** Text members by extension (txt, cls, …), json members' keys, and `__key__`. */
  fields: Map<string, string>;
  /** Image members by extension, as shard member references (shardMember.ts). */
  images: Map<string, string>;
}

/** WebDataset's split of a member name: key = the path up to the first dot of the basename, the rest the field. */
export function memberKey(name: string): { key: string; ext: string } | undefined {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === name.length - 1) return undefined;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1).toLowerCase() };
}

/** Whether the first bytes are those of the image format the extension names (a renamed text file is not a JPEG). */
export function looksLikeImage(ext: string, head: Uint8Array): boolean {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  switch (ext) {
    case 'jpg': case 'jpeg': return b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
    case 'png': return b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    case 'webp': return b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP';
    case 'gif': return b.toString('latin1', 0, 4) === 'GIF8';
    case 'avif': case 'heic': return b.toString('latin1', 4, 8) === 'ftyp';
    default: return ['II*\0', 'MM\0*'].includes(b.toString('latin1', 0, 4));
  }
}

/** A member's bytes, all of them, or the first `keep` (the rest read past): a stream is always drained. */
async function drain(entry: AsyncIterable<unknown>, keep: number): Promise<{ bytes: Buffer; size: number }> {
  const parts: Buffer[] = [];
  let held = 0, size = 0;
  for await (const c of entry) {
    const chunk = c as Uint8Array;  // tar-stream's members stream bytes
    size += chunk.byteLength;
    if (held < keep) {
      const part = Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(chunk.byteLength, keep - held));
      parts.push(Buffer.from(part));
      held += part.byteLength;
    }
  }
  return { bytes: Buffer.concat(parts), size };
}

/** The sample being gathered from consecutive members, and whether one of them made it unusable. */
interface Gathering { sample: ShardSample; failed: boolean }

/** Adds one member to its sample; a bad member marks the sample failed (reported once). */
async function addMember(g: Gathering, header: Header, entry: AsyncIterable<unknown> & { offset: number }, ext: string, bad: BadRowLog): Promise<void> {
  const { sample } = g;
  const c = { bad, source: sample.shard, row: sample.ordinal, sample: sample.key };
  const fail = (b: Parameters<typeof reportBad>[1]): void => {
    if (!g.failed) reportBad(c, b);
    g.failed = true;
  };
  if ((SHARD_IMAGE_EXTENSIONS as readonly string[]).includes(ext)) {
    const { bytes, size } = await drain(entry, 16);
    // The data follows the member's 512-byte header; `offset` is where that header starts.
    const ref = shardMemberRef({ shard: sample.shard, name: header.name, offset: entry.offset + 512, size });
    if (size === 0) fail({ reason: 'empty file', field: ext, file: ref, got: 'zero bytes' });
    else if (!looksLikeImage(ext, bytes)) fail({ reason: 'not an image', field: ext, file: ref, expected: `${ext} bytes`, got: `bytes ${bytes.subarray(0, 8).toString('hex')}` });
    sample.images.set(ext, ref);
    return;
  }
  const { bytes, size } = await drain(entry, MAX_TEXT_MEMBER_BYTES + 1);
  if (size > MAX_TEXT_MEMBER_BYTES) return fail({ reason: 'malformed sample', field: ext, expected: `a text member under ${MAX_TEXT_MEMBER_BYTES / 2 ** 20} MiB`, got: `${size} bytes` });
  if (!isUtf8(bytes)) return fail({ reason: 'invalid UTF-8', field: ext, expected: 'UTF-8 text', got: `bytes ${bytes.subarray(0, 24).toString('hex')}` });
  const text = bytes.toString('utf8');
  if (ext !== 'json' && !ext.endsWith('.json')) {
    sample.fields.set(ext, text.trim());
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return fail({ reason: 'invalid JSON', field: ext, expected: 'a JSON object', got: (err as Error).message });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail({ reason: 'invalid JSON', field: ext, expected: 'a JSON object', got: Array.isArray(value) ? 'an array' : String(value === null ? 'null' : typeof value) });
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const s = jsonValueToString(v);
    if (s !== undefined) sample.fields.set(k, s);
  }
}

function newGathering(shard: string, key: string, ordinal: number): Gathering {
  return { sample: { shard, key, ordinal, fields: new Map([['__key__', key]]), images: new Map() }, failed: false };
}

/**
 * The samples of one shard in order, read sequentially. Bad members and truncation go to `bad`;
 * `counts.samples` is every sample met, usable or not (a manifest's totalRows).
 */
export async function* readShardSamples(shard: string, bad: BadRowLog, counts = { samples: 0 }): AsyncGenerator<ShardSample> {
  const ex = extract();
  const input = createReadStream(shard);
  input.on('error', (err) => ex.destroy(err));
  input.pipe(ex);
  let g: Gathering | undefined;
  try {
    for await (const entry of ex) {
      const header = entry.header;
      if (header.type !== 'file' && header.type !== 'contiguous-file') {
        entry.resume();
        continue;
      }
      const named = memberKey(header.name);
      if (named === undefined) {
        await drain(entry, 0);
        bad.add({ reason: 'malformed sample', source: shard, row: 0, file: header.name, expected: 'a member named KEY.EXT (key.jpg, key.txt, key.json)', got: `'${header.name}'` });
        continue;
      }
      if (g === undefined || named.key !== g.sample.key) {
        if (g !== undefined && !g.failed) yield g.sample;
        g = newGathering(shard, named.key, ++counts.samples);
      } else if (g.sample.fields.has(named.ext) || g.sample.images.has(named.ext)) {
        if (!g.failed) reportBad({ bad, source: shard, row: g.sample.ordinal, sample: g.sample.key }, { reason: 'malformed sample', field: named.ext, expected: 'one member per field', got: `a second ${header.name}` });
        g.failed = true;
      }
      await addMember(g, header, entry, named.ext, bad);
    }
  } catch (err) {
    // The sample in progress at the cut may lack members (or bytes): it goes with the rest of the shard.
    const at = g !== undefined ? { sample: g.sample.key } : {};
    const message = (err as Error).message;
    const reason = /unexpected end of data/i.test(message) ? 'truncated shard' : 'unreadable file';
    bad.add({ reason, source: shard, row: 0, ...at, expected: 'a complete tar archive', got: `${message}; the samples before ${g !== undefined ? `'${g.sample.key}'` : 'it'} were read` });
    return;
  } finally {
    input.destroy();
    ex.destroy();
  }
  if (g !== undefined && !g.failed) yield g.sample;
}

/** The image member a row takes: the one the spec's imageCol names (an extension), else the first of SHARD_IMAGE_EXTENSIONS. */
function imageOfSample(s: ShardSample, c: RowContext): string | undefined {
  const wanted = c.spec.imageCol?.replace(/^\./, '').toLowerCase();
  const ref = wanted !== undefined ? s.images.get(wanted) : SHARD_IMAGE_EXTENSIONS.map((e) => s.images.get(e)).find((r) => r !== undefined);
  if (ref === undefined) {
    reportBad(c, { reason: 'missing value', field: wanted ?? SHARD_IMAGE_EXTENSIONS.join('/'), expected: `an image member ${s.key}.${wanted ?? 'jpg'}`, got: s.images.size > 0 ? `only ${[...s.images.keys()].join(', ')}` : 'no image member' });
  }
  return ref;
}

/** A sample as a row: its image member, then the manifest's rules over its fields (the txt member is the text when the spec names none). */
export async function rowFromSample(s: ShardSample, spec: DatasetSpec, bad: BadRowLog): Promise<DataRow | undefined> {
  const textSpec = spec.textCols.length === 0 && s.fields.has('txt') ? { ...spec, textCols: ['txt'] } : spec;
  const c: RowContext = { spec: textSpec, bad, source: s.shard, row: s.ordinal, sample: s.key };
  const image = imageOfSample(s, c);
  if (image === undefined) return undefined;
  return rowFromFields(s.fields, c, image, s.key);
}

/** Whether the file starts as gzip, zstd, bzip2 or xz does (a compressed shard named .tar). */
async function isCompressed(shard: string): Promise<boolean> {
  const fh = await open(shard, 'r');
  try {
    const head = Buffer.alloc(6);
    await fh.read(head, 0, 6, 0);
    const hex = head.toString('hex');
    return hex.startsWith('1f8b') || hex.startsWith('28b52ffd') || hex.startsWith('425a68') || hex.startsWith('fd377a585a00');
  } finally {
    await fh.close();
  }
}

/** A missing or unreadable shard is reported like a missing file and the others read; false when it cannot be read. */
async function shardReadable(shard: string, bad: BadRowLog): Promise<boolean> {
  try {
    const s = await stat(shard);
    if (!s.isFile()) {
      bad.add({ reason: 'unreadable file', source: shard, row: 0, expected: 'a tar file', got: 'not a regular file' });
      return false;
    }
    if (!(await isCompressed(shard))) return true;
    bad.add({ reason: 'unreadable file', source: shard, row: 0, expected: 'an uncompressed tar file (images are read in place)', got: 'gzip/zstd/bzip2/xz-compressed bytes: decompress it, or write shards with m6 data pack' });
  } catch (err) {
    bad.add({ reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing file' : 'unreadable file', source: shard, row: 0, got: fileReadProblem(err) });
  }
  return false;
}

/** Rows of the given shards in order, streamed one shard at a time; `counts.samples` counts every sample met. */
export async function* streamShardRows(spec: DatasetSpec, shards: readonly string[], bad: BadRowLog, o: { keepFields?: boolean; counts?: { samples: number } } = {}): AsyncGenerator<DataRow> {
  const counts = o.counts ?? { samples: 0 };
  for (const shard of shards) {
    if (!(await shardReadable(shard, bad))) continue;
    for await (const sample of readShardSamples(shard, bad, counts)) {
      const row = await rowFromSample(sample, spec, bad);
      if (row === undefined) continue;
      if (o.keepFields === true) row.fields = sample.fields;
      yield row;
    }
  }
}

/** Every row of a spec's shards (readDataset's shard branch): the rows in memory, the images left in the shards. */
export async function readShardDataset(spec: DatasetSpec, bad: BadRowLog, keepFields = false): Promise<Dataset> {
  const shards = spec.shards!;
  const counts = { samples: 0 };
  const rows: DataRow[] = [];
  for await (const row of streamShardRows(spec, shards, bad, { keepFields, counts })) rows.push(row);
  if (counts.samples === 0 && bad.count('missing file') + bad.count('unreadable file') >= shards.length) {
    throw new DatasetSpecError(`shards: none of the ${shards.length} shards can be read, e.g. ${shards[0]}: ${bad.summary()[0]?.examples[0]?.got ?? 'missing'}`);
  }
  const columns = [...new Set(rows.flatMap((r) => (r.fields !== undefined ? [...r.fields.keys()] : [])))];
  return { source: rowSourceOf(spec)!, columns, totalRows: counts.samples, rows, bad };
}

/**
 * The shards rank `rank` of `worldSize` reads in `epoch`: the list shuffled by (seed, epoch), then
 * every worldSize-th from `rank` (WebDataset's split_by_node after its shard shuffle). The ranks'
 * lists are disjoint and together cover every shard; the same arguments give the same list.
 */
export function shardsForRank(shards: readonly string[], o: { rank: number; worldSize: number; epoch: number; seed: number }): string[] {
  if (!Number.isInteger(o.worldSize) || o.worldSize < 1 || !Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) {
    throw new RangeError(`rank must be an integer in [0, ${o.worldSize}) of a world size ≥ 1, got rank ${o.rank} of ${o.worldSize}`);
  }
  if (shards.length < o.worldSize) {
    throw new RangeError(`${shards.length} shards cannot feed ${o.worldSize} ranks (each needs one at least): pack into more shards (m6 data pack --samples-per-shard N)`);
  }
  const order = new Rng(deriveSeed(o.seed, 'shards', o.epoch)).shuffle(shards.slice());
  return order.filter((_s, i) => i % o.worldSize === o.rank);
}

/**
 * One rank's rows of one epoch, streamed: its shards (shardsForRank) in their shuffled order, the
 * first `skip` rows passed over, so a consumer that counted the rows it took resumes where it stopped.
 */
export async function* streamRankRows(spec: DatasetSpec, o: { rank: number; worldSize: number; epoch: number; seed: number; skip?: number; bad?: BadRowLog }): AsyncGenerator<DataRow> {
  let skip = o.skip ?? 0;
  for await (const row of streamShardRows(spec, shardsForRank(spec.shards ?? [], o), o.bad ?? new BadRowLog())) {
    if (skip > 0) skip--;
    else yield row;
  }
}
