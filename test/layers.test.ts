// The layers of ../shared/DESIGN.md, kept by reading every import in src/: a file may import from
// its own folder and from the layers below its own, never from a layer above (nor from a peer
// folder of the same rank). A failure names the file, the line and the import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { repoRoot } from './helpers.js';

/** Rank of each top-level folder of src/ (higher may import lower). `index` is src/index.ts, the package entry. */
export const LAYERS: Readonly<Record<string, number>> = Object.freeze({
  native: 0,
  torch: 1,
  nn: 2, optim: 2, io: 2,
  data: 3,
  model: 4,
  tasks: 5,
  distributed: 6,
  train: 7,
  pipelines: 8,
  search: 9,
  eval: 10,
  // serve/ sits just under cli/: `m6 serve` starts the server; the server never reaches into the CLI.
  serve: 11,
  cli: 12,
  index: 13,
});

export interface LayerViolation { file: string; line: number; specifier: string; message: string }

/** The layer of a path relative to src/ ('train/trainer.ts' → 'train'; 'index.ts' → 'index'). */
function layerOf(path: string): string {
  const parts = path.split('/');
  return parts.length === 1 ? 'index' : parts[0]!;
}

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm;

/** Upward (or sideways) imports in the given sources: `files` maps a path relative to src/ to its text. */
export function layerViolations(files: ReadonlyMap<string, string>): LayerViolation[] {
  const out: LayerViolation[] = [];
  for (const [file, text] of files) {
    const from = layerOf(file);
    const rank = LAYERS[from];
    if (rank === undefined) {
      out.push({ file, line: 1, specifier: '', message: `src/${file}: folder '${from}' has no layer in test/layers.test.ts (add it where DESIGN.md puts it)` });
      continue;
    }
    for (const m of text.matchAll(IMPORT)) {
      const specifier = m[1]!;
      if (!specifier.startsWith('.')) continue;          // packages and node: builtins
      const target = normalize(join(dirname(file), specifier));
      if (target.startsWith('..')) continue;             // outside src/ (e.g. package.json)
      const to = layerOf(target);
      if (to === from) continue;
      const toRank = LAYERS[to];
      const line = text.slice(0, m.index).split('\n').length;
      if (toRank === undefined) out.push({ file, line, specifier, message: `src/${file}:${line}: imports '${specifier}' from folder '${to}', which has no layer` });
      else if (toRank >= rank) {
        out.push({ file, line, specifier, message: `src/${file}:${line}: ${from} (layer ${rank}) imports '${specifier}' from ${to} (layer ${toRank}): a layer may only import from the layers below it` });
      }
    }
  }
  return out;
}

function sources(dir: string, base = dir, out = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, base, out);
    else if (name.endsWith('.ts')) out.set(relative(base, path), readFileSync(path, 'utf8'));
  }
  return out;
}

test('no file in src/ imports from a layer above its own', () => {
  const files = sources(join(repoRoot, 'src'));
  assert.ok(files.size > 50, `read ${files.size} files from src/`);
  const violations = layerViolations(files);
  assert.deepEqual(violations.map((v) => v.message), []);
});

test('the layer check catches an upward import, a sideways one and an unknown folder, naming file and line', () => {
  const files = new Map([
    ['model/m6.ts', "import * as torch from '../torch/index.js';\nimport { train } from '../train/trainer.js';\n"],
    ['nn/linear.ts', "import { AdamW } from '../optim/adamw.js';\n"],
    ['tasks/taskData.ts', "const m = await import('../eval/report.js');\nimport { Tokenizer } from '../data/tokenizer.js';\n"],
    ['widgets/a.ts', "import x from '../torch/index.js';\n"],
    ['cli/main.ts', "import { loadPipeline } from '../pipelines/index.js';\nimport sharp from 'sharp';\n"],
  ]);
  const v = layerViolations(files);
  assert.deepEqual(v.map((x) => `${x.file}:${x.line} ${x.specifier}`), [
    'model/m6.ts:2 ../train/trainer.js',
    'nn/linear.ts:1 ../optim/adamw.js',
    'tasks/taskData.ts:1 ../eval/report.js',
    'widgets/a.ts:1 ',
  ]);
  assert.match(v[0]!.message, /src\/model\/m6\.ts:2: model \(layer 4\) imports '\.\.\/train\/trainer\.js' from train \(layer 7\)/);
});
