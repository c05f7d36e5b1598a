// Design's targets: each example's image as the VQ tokenizer's codes, computed once from the
// unaugmented image (a design target is the product as photographed, not a random crop of it) and
// cached in the run folder, so a resumed run or an evaluation does not encode the images again:
//
//   RUN/design-codes.json   { format, vq: sha256 of vq.safetensors, imageSize, codes: { path: base64 int32 } }
//
// The cache belongs to one VQ file: another tokenizer (another hash) starts a fresh cache.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/index.js';
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import { ImageDecodeError, loadImage } from '../data/image.js';
import { mapConcurrent } from '../data/inspect.js';
import type { Example, TaskSource } from '../data/loader.js';
import type { VqTokenizer } from '../model/vq.js';
import { fileReadProblem, oneLine } from '../torch/inputError.js';

export const DESIGN_CODES_FILE = 'design-codes.json';
const FORMAT = 'm6-design-codes';

interface CodesFile {
  format: typeof FORMAT;
  vq: string;
  imageSize: number;
  codes: Record<string, string>;
}

/** sha256 of a file's bytes: which VQ tokenizer a cache belongs to. */
export function fileHash(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * The cached codes of `file` when it belongs to this VQ file and image size. A damaged cache (not
 * JSON, a code list of the wrong length, a code outside the codebook) is said so, in one line naming
 * the file and the entry, and recomputed: it is a cache, so nothing is lost, but it is never trusted.
 */
function readCache(file: string, vqHash: string, imageSize: number, shape: { codes: number; codebookSize: number }, log?: (m: string) => void): Map<string, Int32Array> {
  const out = new Map<string, Int32Array>();
  if (!existsSync(file)) return out;
  const damaged = (why: string): Map<string, Int32Array> => {
    log?.(oneLine(`warning: ${file} is damaged (${why}); its VQ codes are computed again`));
    return new Map();
  };
  let json: CodesFile;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as CodesFile;
  } catch (err) {
    return damaged((err as NodeJS.ErrnoException).code !== undefined ? `it ${fileReadProblem(err)}` : `not JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || json.format !== FORMAT) return damaged(`expected an object with format "${FORMAT}"`);
  if (json.vq !== vqHash || json.imageSize !== imageSize) return out;  // another tokenizer's cache: replaced, not damaged
  if (typeof json.codes !== 'object' || json.codes === null || Array.isArray(json.codes)) return damaged('expected "codes": {image path: base64 int32 codes}');
  for (const [path, b64] of Object.entries(json.codes)) {
    const bytes = typeof b64 === 'string' ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
    if (bytes.byteLength !== shape.codes * 4) return damaged(`codes of ${path}: ${bytes.byteLength} bytes, expected ${shape.codes} int32 codes (${shape.codes * 4} bytes)`);
    const codes = new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const bad = codes.findIndex((c) => c < 0 || c >= shape.codebookSize);
    if (bad >= 0) return damaged(`codes of ${path}: code ${codes[bad]} at ${bad}, expected codes in [0, ${shape.codebookSize})`);
    out.set(path, codes);
  }
  return out;
}

function writeCache(file: string, vqHash: string, imageSize: number, codes: Map<string, Int32Array>): void {
  const json: CodesFile = { format: FORMAT, vq: vqHash, imageSize, codes: {} };
  for (const [path, c] of codes) json.codes[path] = Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('base64');
  writeFileAtomic(file, JSON.stringify(json));  // never a half-written cache where the next run reads
}

export interface ImageCodesResult {
  /** VQ codes of each image that could be read, row-major over the code grid. */
  codes: Map<string, Int32Array>;
  /** Images that could not be read: path → reason. */
  failed: Map<string, string>;
  /** How many came from the cache. */
  cached: number;
}

/**
 * The VQ codes of images at `imageSize`, from the cache in `runDir` where it has them (computed with
 * the same VQ file), the rest encoded now in batches and added to the cache.
 */
export async function imageCodes(vq: VqTokenizer, vqFile: string, paths: readonly string[], o: { runDir: string; imageSize: number; batchSize?: number; log?: (m: string) => void }): Promise<ImageCodesResult> {
  const cacheFile = join(o.runDir, DESIGN_CODES_FILE);
  const hash = fileHash(vqFile);
  const [h, w] = vq.gridSize(o.imageSize);
  const all = readCache(cacheFile, hash, o.imageSize, { codes: h * w, codebookSize: vq.config.codebookSize }, o.log);
  const unique = [...new Set(paths)];
  const todo = unique.filter((p) => !all.has(p));
  const failed = new Map<string, string>();
  const cached = unique.length - todo.length;
  if (todo.length > 0) {
    const started = Date.now();
    const batchSize = o.batchSize ?? 64;
    const wasTraining = vq.training;
    vq.eval();
    try {
      for (let at = 0; at < todo.length; at += batchSize) {
        const paths = todo.slice(at, at + batchSize);
        const pixels = await mapConcurrent(paths, 4, async (p) => {
          try {
            return (await loadImage(p, { size: o.imageSize })).data;
          } catch (err) {
            if (!(err instanceof ImageDecodeError)) throw err;
            failed.set(p, `${err.reason}: ${err.detail}`);
            return null;
          }
        });
        const ok = paths.map((p, i) => ({ p, px: pixels[i]! })).filter((x) => x.px !== null);
        if (ok.length === 0) continue;
        const plane = 3 * o.imageSize * o.imageSize;
        const codes = torch.noGrad(() => torch.scope(() => {
          const data = new Float32Array(ok.length * plane);
          ok.forEach((x, b) => data.set(x.px, b * plane));
          const c = vq.encode(torch.tensor(data, { shape: [ok.length, 3, o.imageSize, o.imageSize] }));  // (B, h, w)
          return c.reshape(ok.length, -1).to('int32').toArray() as number[][];
        }));
        ok.forEach((x, b) => all.set(x.p, Int32Array.from(codes[b]!)));
      }
    } finally {
      vq.train(wasTraining);
    }
    writeCache(cacheFile, hash, o.imageSize, all);
    o.log?.(`design: encoded ${todo.length - failed.size} images into VQ codes (${((Date.now() - started) / 1000).toFixed(1)} s)${cached > 0 ? `; ${cached} came from ${cacheFile}` : ''}`);
  } else if (unique.length > 0) {
    o.log?.(`design: the VQ codes of all ${unique.length} images came from ${cacheFile}`);
  }
  const codes = new Map<string, Int32Array>();
  for (const p of unique) { const c = all.get(p); if (c !== undefined) codes.set(p, c); }
  return { codes, failed, cached };
}

/**
 * Sets targetCodes on the examples of the design task sets (those with a targetImage); an example
 * whose image cannot be read is dropped and counted. Other tasks' sets are returned unchanged.
 */
export async function attachDesignCodes(vq: VqTokenizer, vqFile: string, sets: readonly TaskSource[], o: { runDir: string; imageSize: number; log?: (m: string) => void }): Promise<{ sets: TaskSource[]; dropped: number; firstError?: string }> {
  const paths = sets.flatMap((s) => s.examples.map((e) => e.targetImage).filter((p): p is string => p !== undefined));
  if (paths.length === 0) return { sets: [...sets], dropped: 0 };
  const { codes, failed } = await imageCodes(vq, vqFile, paths, o);
  let dropped = 0;
  const out = sets.map((s) => {
    if (!s.examples.some((e) => e.targetImage !== undefined)) return s;
    const examples: Example[] = [];
    for (const e of s.examples) {
      if (e.targetImage === undefined) { examples.push(e); continue; }
      const c = codes.get(e.targetImage);
      if (c === undefined) { dropped++; continue; }
      examples.push({ ...e, targetCodes: c });
    }
    return { ...s, examples };
  });
  const first = failed.entries().next();
  return { sets: out, dropped, ...(first.done ? {} : { firstError: `${first.value[0]}: ${first.value[1]}` }) };
}
