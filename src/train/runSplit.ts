// The split travels with the run: which data a run trained on, by what rule, and exactly which rows
// (a sorted list of 64-bit hashes of their ids in RUN/train-ids.bin, with a digest in RUN/split.json),
// and what the tokenizer learnt from. Written when training starts, kept by --resume; `m6 eval`
// reads it to refuse scoring rows the run trained on, whatever split the evaluation data declares.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/index.js';
import { join } from 'node:path';
import { rowSourceOf, type DatasetSpec } from '../data/datasetSpec.js';
import type { DataRow } from '../data/manifest.js';
import { isEvalRow } from '../tasks/taskData.js';
import { CheckpointError, readRunJson } from './checkpoint.js';

export const SPLIT_FILE = 'split.json';
export const TRAIN_IDS_FILE = 'train-ids.bin';

export interface RunSplit {
  version: 1;
  /** The manifest or image folder trained on. */
  data: string;
  /** How rows were assigned: a split column, or fractions by a seeded hash of the id (or of a group column). */
  rule: { splitCol?: string; split?: Array<{ name: string; fraction: number }>; splitSeed?: number; splitGroupCol?: string };
  /**
   * The whole dataset spec trained on (absolute paths), so that what reads the run later (the
   * server's held-out examples) can read the same rows the same way; absent in runs recorded before it.
   */
  spec?: DatasetSpec;
  /** Distinct training row ids (a resumed run on other data adds its new ones). */
  trainRows: number;
  heldOutRows: number;
  /** sha256 of TRAIN_IDS_FILE: the sorted 64-bit hashes of the training row ids. */
  trainIdsDigest: string;
  /** What the tokenizer was trained on: a count and digest of its texts (training rows only), or the file it was loaded from. */
  tokenizer: { texts: number; digest: string } | { file: string };
  createdAt: string;
}

/** The 64-bit hash a row id is recorded by (the first 8 bytes of its sha256). */
export function rowIdHash(id: string): bigint {
  return createHash('sha256').update(id).digest().readBigUInt64BE(0);
}

/** sha256 of strings sorted and joined by newlines: the same set gives the same digest in any order. */
export function setDigest(items: readonly string[]): string {
  return createHash('sha256').update([...items].sort().join('\n')).digest('hex');
}

/** The sorted, distinct hashes of the training rows' ids (little-endian, as on every platform libtorch runs on). */
export function trainIdHashes(rows: readonly DataRow[], also: BigUint64Array = new BigUint64Array(0)): BigUint64Array {
  const all = BigUint64Array.from([...also, ...rows.filter((r) => !isEvalRow(r)).map((r) => rowIdHash(r.id))]).sort();
  return all.filter((h, i) => i === 0 || h !== all[i - 1]);
}

function digestOf(hashes: BigUint64Array): string {
  return createHash('sha256').update(new Uint8Array(hashes.buffer, hashes.byteOffset, hashes.byteLength)).digest('hex');
}

/** Records the run's split from the rows it reads (training rows: those not in a held-out split). */
export function writeRunSplit(runDir: string, spec: DatasetSpec, rows: readonly DataRow[], tokenizer: RunSplit['tokenizer']): RunSplit {
  const hashes = trainIdHashes(rows);
  const split: RunSplit = {
    version: 1,
    data: rowSourceOf(spec) ?? '',
    rule: {
      ...(spec.splitCol !== undefined ? { splitCol: spec.splitCol } : {}),
      ...(spec.split !== undefined ? { split: spec.split, splitSeed: spec.splitSeed } : {}),
      ...(spec.splitGroupCol !== undefined ? { splitGroupCol: spec.splitGroupCol } : {}),
    },
    spec,
    trainRows: hashes.length,
    heldOutRows: rows.filter(isEvalRow).length,
    trainIdsDigest: digestOf(hashes),
    tokenizer,
    createdAt: new Date().toISOString(),
  };
  saveSplit(runDir, split, hashes);
  return split;
}

function saveSplit(runDir: string, split: RunSplit, hashes: BigUint64Array): void {
  writeFileAtomic(join(runDir, TRAIN_IDS_FILE), new Uint8Array(hashes.buffer, hashes.byteOffset, hashes.byteLength));
  writeFileAtomic(join(runDir, SPLIT_FILE), JSON.stringify(split, null, 2) + '\n');
}

/**
 * A resumed run's split: the recorded one, with any training rows of the data now read that it does
 * not hold added (the run trains on them from here on). Returns how many were added.
 */
export function extendRunSplit(runDir: string, recorded: RecordedSplit, rows: readonly DataRow[]): number {
  const hashes = trainIdHashes(rows, recorded.hashes);
  const added = hashes.length - recorded.hashes.length;
  if (added > 0) saveSplit(runDir, { ...recorded.split, trainRows: hashes.length, trainIdsDigest: digestOf(hashes) }, hashes);
  return added;
}

export interface RecordedSplit {
  split: RunSplit;
  hashes: BigUint64Array;
  /** Whether a row id is one the run trained on. */
  trainedOn: (id: string) => boolean;
}

/** The run's recorded split, or undefined for a run trained before runs recorded one. */
export function readRunSplit(runDir: string): RecordedSplit | undefined {
  const file = join(runDir, SPLIT_FILE), idsFile = join(runDir, TRAIN_IDS_FILE);
  if (!existsSync(file)) return undefined;
  const split = readRunJson(file) as RunSplit | null;
  if (typeof split !== 'object' || split === null || split.version !== 1 || typeof split.trainRows !== 'number' || typeof split.trainIdsDigest !== 'string') throw new CheckpointError(`${file}: expected a version-1 split record with trainRows and trainIdsDigest, got ${(JSON.stringify(split) ?? "").slice(0, 80)}`);
  if (!existsSync(idsFile)) throw new CheckpointError(`${idsFile} is missing: ${file} says the run trained on ${split.trainRows} rows, and this file lists them`);
  const bytes = readFileSync(idsFile);
  if (bytes.length !== split.trainRows * 8) throw new CheckpointError(`${idsFile}: ${bytes.length} bytes, expected ${split.trainRows * 8} (8 per training row of ${file})`);
  const hashes = new BigUint64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  if (digestOf(hashes) !== split.trainIdsDigest) throw new CheckpointError(`${idsFile} does not match the digest in ${file}: one of the two was changed or damaged`);
  const trainedOn = (id: string): boolean => {
    const h = rowIdHash(id);
    let lo = 0, hi = hashes.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (hashes[mid]! === h) return true;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  };
  return { split, hashes, trainedOn };
}
