// The package as a user installs it: `npm pack` of this checkout, installed into an empty project,
// and the README's `import … from 'm6'` examples — the very code blocks, read out of README.md —
// type-checked against the installed declarations and run. So the README cannot drift from what
// installs. (The install runs with --ignore-scripts and is given the addon built here: the install
// script would build the same addon again, which takes minutes on two cores.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { repoRoot } from './helpers.js';
import { m6, writeTinyConfig } from './data/fixtures.js';

const run = promisify(execFile);
const MARK = '<!-- tested by test/package.test.ts against the packed package -->';

/** The code blocks of README.md that follow the mark. */
function readmeExamples(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const blocks = readme.split(MARK).slice(1).map((part) => /^\s*```ts\n([\s\S]*?)\n```/.exec(part)?.[1]);
  assert.ok(blocks.every((b) => b !== undefined), 'every mark is followed by a ```ts block');
  return blocks as string[];
}

test('the README\'s examples type-check and run against the packed, installed package', { timeout: 600_000 }, async (t) => {
  const examples = readmeExamples();
  assert.equal(examples.length, 2);
  assert.match(examples[0]!, /import \{ loadPipeline \} from 'm6'/);
  const dir = mkdtempSync(join(tmpdir(), 'm6-package-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  // npm pack, then install the tarball into an empty ESM project.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: repoRoot });
  const tarball = join(dir, packed.stdout.trim().split('\n').pop()!);
  const project = join(dir, 'app');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project });
  const installed = join(project, 'node_modules', 'm6');
  assert.ok(!readdirSync(installed).includes('test'), 'the package holds no tests');
  mkdirSync(join(installed, 'native/build/Release'), { recursive: true });
  copyFileSync(join(repoRoot, 'native/build/Release/m6_native.node'), join(installed, 'native/build/Release/m6_native.node'));

  // What the first example loads: a tiny run at runs/demo/run and a product photo.
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '24', '--seed', '2', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'));
  const trained = await m6(['train', '--data', join(dir, 'catalog', 'dataset.json'), '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300',
    '--workers', '0', '--steps', '2', '--tasks', 'describe,answer,embed', '--out', join(project, 'runs', 'demo', 'run')]);
  assert.equal(trained.status, 0, trained.stderr);
  copyFileSync(join(dir, 'catalog', 'images', 'p000001.png'), join(project, 'photo.png'));

  // Type-check the examples as a user's TypeScript project would, through the package's exports and declarations.
  const files = examples.map((code, i) => {
    const file = join(project, `example${i + 1}.ts`);
    writeFileSync(file, code + '\n');
    return file;
  });
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(repoRoot, 'node_modules/@types')], lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
  });
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  assert.deepEqual(diagnostics, []);

  // Run them.
  const outputs: string[] = [];
  for (const [i, code] of examples.entries()) {
    const js = ts.transpileModule(code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
    const file = join(project, `example${i + 1}.mjs`);
    writeFileSync(file, js);
    const r = await run(process.execPath, [file], { cwd: project });
    outputs.push(r.stdout);
  }
  const [pipelineOut, torchOut] = outputs as [string, string];
  assert.match(pipelineOut, /\[ 'describe', 'answer', 'embed' \]/);
  assert.match(pipelineOut, /^32$/m, 'the text vector has the model\'s 32 dimensions');
  assert.match(torchOut, /\[ 512, 512 \]\nbfloat16\n\[ 0\.25 \]/);
});
