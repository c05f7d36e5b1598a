// Helpers for the data tests: temp folders, small generated images (never committed files), and
// running the m6 CLI as a user would.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadDatasetSpecFile, type DatasetSpecInput } from '../../src/data/datasetSpec.js';
import { repoRoot } from '../helpers.js';

export function tempDir(t: { after: (fn: () => void) => void }, prefix = 'm6-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A solid-colour image in any format sharp writes. */
export async function writeSolidImage(file: string, opts: { width: number; height: number; rgb?: [number, number, number]; format?: 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' }): Promise<void> {
  const [r, g, b] = opts.rgb ?? [200, 40, 40];
  const img = sharp({ create: { width: opts.width, height: opts.height, channels: 3, background: { r, g, b } } });
  await img.toFormat(opts.format ?? 'jpeg').toFile(file);
}

/** An image whose left half is one colour and right half another: shows flips and orientation. */
export async function writeTwoToneImage(file: string, width: number, height: number, left: [number, number, number], right: [number, number, number]): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = x < width / 2 ? left : right;
      raw.set(c, (y * width + x) * 3);
    }
  }
  const png = await sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
  await sharp(png).toFile(file);
  return png;
}

/** The --config of a model that trains in seconds: one block of width 32, 32 px images in 8 px patches (a 4×4 grid). */
export const TINY_CONFIG = Object.freeze({ layers: 1, dim: 32, heads: 2, ffnDim: 64, imageSize: 32, patchSize: 8, stemChannels: 8, maxTextLen: 48 });

/** Writes TINY_CONFIG (with `overrides`) as a --config file; returns its path. */
export function writeTinyConfig(file: string, overrides: Record<string, number | boolean> = {}): string {
  writeFileSync(file, JSON.stringify({ ...TINY_CONFIG, ...overrides }));
  return file;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface M6RunOptions {
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Killed (SIGKILL) after this long. */
  timeoutMs?: number;
  /** A command that runs node for it (e.g. ['ip', 'netns', 'exec', NS]). */
  via?: string[];
}

/** Run `node bin/m6.js …` asynchronously (so other tests keep running meanwhile). */
export function m6(args: string[], opts: M6RunOptions = {}): Promise<CliResult> {
  const argv = [...(opts.via ?? []), process.execPath, join(repoRoot, 'bin/m6.js'), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd ?? repoRoot, ...(opts.env !== undefined ? { env: { ...process.env, ...opts.env } } : {}) });
    let stdout = '';
    let stderr = '';
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/**
 * A dataset spec file's keys with some replaced, as `--data FILE --split …` gives them: a split rule
 * given here replaces the file's (the synthetic catalog's own split column among them).
 */
export function specWith(file: string, extra: DatasetSpecInput): DatasetSpecInput {
  const input = loadDatasetSpecFile(file);
  if (extra.split !== undefined) delete input.splitCol;
  if (extra.splitCol !== undefined) delete input.split;
  return { ...input, ...extra };
}
