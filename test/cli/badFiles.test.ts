// Bad files end to end, as a user meets them (node bin/m6.js …): each is one line on stderr that
// names the file and what was expected, exit 2, no stack; and `m6 train --resume` over a damaged
// newest checkpoint goes on from the newest complete one, saying so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { M6Model, preset } from '../../src/model/index.js';
import { listCheckpoints, saveCheckpoint } from '../../src/train/checkpoint.js';
import { makeOptimizer } from '../../src/train/trainer.js';
import { isRoot, repoRoot } from '../helpers.js';
import { m6, writeTinyConfig, type CliResult } from '../data/fixtures.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'm6-badfiles-'));
  chmodSync(dir, 0o755);  // readable by the unprivileged user of the permission test
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A user error: exit 2 and exactly one line on stderr, naming `file`. */
function oneLine(r: CliResult, file: string, re: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0]!.startsWith('m6: ') && lines[0]!.includes(file), r.stderr);
  assert.match(lines[0]!, re);
}

/** `m6 …` as an unprivileged user (root reads any file whatever its mode). */
function m6AsNobody(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/m6.js'), ...args], { cwd: dir, uid: 65534, gid: 65534, env: { ...process.env, HOME: dir } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('a manifest that cannot be read: permission denied, not "missing"', async () => {
  const file = join(dir, 'locked.csv');
  writeFileSync(file, 'title\nhat\n');
  chmodSync(file, 0o000);
  const args = ['data', 'inspect', '--manifest', file, '--text-col', 'title'];
  oneLine(await (isRoot ? m6AsNobody(args) : m6(args)), file, /manifest .*locked\.csv cannot be read: permission denied/);
});

test('a malformed --data YAML spec and a malformed --config file', async () => {
  const spec = join(dir, 'spec.yaml');
  writeFileSync(spec, 'manifest: [items.csv\ntext_col: title\n');
  oneLine(await m6(['data', 'inspect', '--data', spec]), spec, /dataset spec .* is not valid YAML: /);
  writeFileSync(spec, 'manifest: !!js/function items.csv\ntext_col: {a: 1}\n');  // yaml warns about the unknown tag: not on stderr
  oneLine(await m6(['data', 'inspect', '--data', spec]), spec, /'text_col' must be a string or a list of strings/);
  writeFileSync(join(dir, 'items.csv'), 'title\nhat\n');
  const config = join(dir, 'config.json');
  writeFileSync(config, '{"layers": 1,');
  oneLine(await m6(['train', '--manifest', join(dir, 'items.csv'), '--text-col', 'title', '--out', join(dir, 'r'), '--steps', '1', '--config', config]), config, /--config .* is not valid JSON: /);
  oneLine(await m6(['train', '--manifest', join(dir, 'items.csv'), '--text-col', 'title', '--out', join(dir, 'r'), '--steps', '1', '--config', dir]), dir, /--config .* is a folder, expected a file/);
  writeFileSync(config, '{"layers": "two"}');
  oneLine(await m6(['train', '--manifest', join(dir, 'items.csv'), '--text-col', 'title', '--out', join(dir, 'r'), '--steps', '1', '--config', config]), config, /--config .*: "layers" must be a number, got "two"/);
});

/** A one-step checkpoint of a tiny model in `run` (saved in-process: no training needed); returns its folder. */
function tinyRun(run: string): { ckpt: string; tokenizer: Tokenizer } {
  const tokenizer = Tokenizer.train(['a red dress', 'a blue shirt'], { vocabSize: 300, imageCodes: 16 });
  const config = preset('m6-nano', { layers: 1, dim: 16, heads: 2, ffnDim: 32, imageSize: 16, patchSize: 8, stemChannels: 4, maxTextLen: 16, vocabSize: tokenizer.vocabSize, imageCodeStart: tokenizer.imageCodeStart, imageCodes: tokenizer.imageCodes });
  const model = new M6Model(config);
  const opt = makeOptimizer(model, 1e-3, 0.01);
  const trainer = { version: 1 as const, step: 1, dataPosition: 1, seed: 1, gradAccum: 1, batchSize: 2, augment: false, schedule: { lr: 1e-3, warmup: 1, totalSteps: 2, minLrRatio: 0.1 }, nonFiniteSteps: 0, tokensSeen: 0, elapsedSeconds: 0, optimizer: opt.stateDict().meta, tasks: [], savedAt: '' };
  const ckpt = saveCheckpoint(run, { model: model.stateDict(), optimizer: opt.stateDict(), config, tokenizer, trainer });
  model.dispose();
  return { ckpt, tokenizer };
}

test('a checkpoint file that cannot be read: permission denied, not "missing" or "not safetensors"', async () => {
  const run = join(dir, 'locked-run');
  const { ckpt } = tinyRun(run);
  chmodSync(join(ckpt, 'model.safetensors'), 0o000);
  const args = ['answer', '--run', run, 'is it red?'];
  oneLine(await (isRoot ? m6AsNobody(args) : m6(args)), join(ckpt, 'model.safetensors'), /model\.safetensors cannot be read: permission denied/);
});

test('a run whose tokenizer does not match its model, and a truncated model.safetensors', async () => {
  const run = join(dir, 'run');
  const { ckpt, tokenizer } = tinyRun(run);
  await Tokenizer.train(['other words here'], { vocabSize: 280, imageCodes: 16 }).save(join(ckpt, 'tokenizer.json'));
  oneLine(await m6(['answer', '--run', run, 'is it red?']), join(ckpt, 'tokenizer.json'), /does not match .*config\.json: the tokenizer has \d+ tokens/);
  await tokenizer.save(join(ckpt, 'tokenizer.json'));
  truncateSync(join(ckpt, 'model.safetensors'), statSync(join(ckpt, 'model.safetensors')).size - 1);
  oneLine(await m6(['answer', '--run', run, 'is it red?']), join(ckpt, 'model.safetensors'), /not a valid safetensors file: tensor '.*' data \[\d+, \d+\) lies outside the \d+ data bytes/);
});

test('m6 train --resume over a truncated newest checkpoint goes on from the newest complete one, saying so', async () => {
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '12', '--seed', '2', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  const common = ['--data', join(dir, 'catalog', 'dataset.json'), '--config', writeTinyConfig(join(dir, 'tiny.json')), '--batch-size', '2', '--vocab', '300', '--workers', '0', '--tasks', 'describe', '--out', join(dir, 'resumed')];
  const first = await m6(['train', ...common, '--steps', '4', '--save-every', '2']);
  assert.equal(first.status, 0, first.stderr);
  const newest = listCheckpoints(join(dir, 'resumed')).at(-1)!;
  assert.equal(newest.step, 4);
  truncateSync(join(newest.dir, 'model.safetensors'), 100);
  const resumed = await m6(['train', ...common, '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /warning: skipped 1 damaged checkpoint \(.*step-00000004\/model\.safetensors: not a valid safetensors file: .*\); resuming from the newest complete one, .*step-00000002/);
  assert.match(resumed.stderr, /resuming from .*step-00000002 \(step 2\)/);
  assert.match(resumed.stdout, /done: step 4; saved .*step-00000004/);
  assert.deepEqual(listCheckpoints(join(dir, 'resumed')).map((c) => c.step), [2, 4]);
});
