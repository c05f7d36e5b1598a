// Checkpoint I/O: a saved checkpoint loads back to the same weights and optimizer state; only the
// newest K are kept; a temp folder left by a crash is never taken for a checkpoint; the schedule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { M6Model, preset } from '../../src/model/index.js';
import { checkCheckpoint, latestCheckpoint, listCheckpoints, newestCompleteCheckpoint, readCheckpointMeta, readCheckpointTensors, saveCheckpoint, type TrainerState } from '../../src/train/checkpoint.js';
import { InputError } from '../../src/torch/inputError.js';
import { makeOptimizer } from '../../src/train/trainer.js';
import { lrFactor, timeLrFactor } from '../../src/optim/index.js';
import { loadRun } from '../../src/pipelines/runFolder.js';
import { tempDir } from '../data/fixtures.js';

const tokenizer = Tokenizer.train(['a red dress', 'a blue shirt', 'what colour is it?'], { vocabSize: 300, imageCodes: 16 });
const config = preset('m6-nano', {
  layers: 1, dim: 16, heads: 2, ffnDim: 32, imageSize: 16, patchSize: 8, stemChannels: 4, maxTextLen: 16,
  vocabSize: tokenizer.vocabSize, imageCodeStart: tokenizer.imageCodeStart, imageCodes: tokenizer.imageCodes,
});

function state(step: number, optimizer: TrainerState['optimizer']): TrainerState {
  return {
    version: 1, step, dataPosition: step, seed: 1, gradAccum: 1, batchSize: 2, augment: false, schedule: { lr: 1e-3, warmup: 2, totalSteps: 10, minLrRatio: 0.1 },
    nonFiniteSteps: 0, tokensSeen: 0, elapsedSeconds: 0, optimizer, tasks: [], savedAt: new Date().toISOString(),
  };
}

test('save → load: same weights, same AdamW moments; keep the newest K; temp folders ignored', async (t) => {
  const dir = tempDir(t, 'm6-ckpt-');
  torch.manualSeed(0);
  const model = new M6Model(config);
  const opt = makeOptimizer(model, 1e-3, 0.01);
  torch.scope(() => {
    const target = torch.randint(0, 200, [2, 5]);
    model.forward({ target, labels: target }).loss!.backward();
  });
  opt.step();
  opt.zeroGrad();
  for (const step of [1, 2, 3]) {
    saveCheckpoint(dir, { model: model.stateDict(), optimizer: opt.stateDict(), config, tokenizer, trainer: state(step, opt.stateDict().meta) }, 2);
  }
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [2, 3]);
  mkdirSync(join(dir, 'checkpoints', '.step-00000009.tmp-1'));   // a crashed writer's leftovers
  mkdirSync(join(dir, 'checkpoints', 'step-00000009'));          // no trainer.json: incomplete
  assert.equal(latestCheckpoint(dir), join(dir, 'checkpoints', 'step-00000003'));
  const ckpt = latestCheckpoint(dir)!;
  assert.deepEqual(readdirSync(ckpt).sort(), ['config.json', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.json', 'trainer.json']);
  const meta = await readCheckpointMeta(ckpt);
  assert.equal(meta.trainer.step, 3);
  assert.equal(meta.trainer.optimizer.step, 1);
  assert.deepEqual(meta.config, config);
  assert.equal(meta.tokenizer.vocabSize, tokenizer.vocabSize);
  const tensors = readCheckpointTensors(ckpt, meta.trainer);
  for (const [k, v] of model.stateDict()) assert.equal(tensors.model.get(k)!.sub(v).abs().max().item(), 0, k);
  const opt2 = makeOptimizer(new M6Model(config), 1e-3, 0.01);
  opt2.loadStateDict(tensors.optimizer);
  const a = opt.stateDict().tensors, b = opt2.stateDict().tensors;
  assert.ok(Object.keys(a).length > 0);
  for (const k of Object.keys(a)) assert.equal(a[k]!.sub(b[k]!).abs().max().item(), 0, k);
  const run = await loadRun(dir);
  assert.equal(run.checkpoint, ckpt);
  assert.equal(run.model.training, false);
  for (const [k, v] of model.stateDict()) assert.equal(run.model.stateDict().get(k)!.sub(v).abs().max().item(), 0, k);
  assert.ok(JSON.parse(readFileSync(join(ckpt, 'trainer.json'), 'utf8')).savedAt);
  assert.ok(!existsSync(join(dir, 'checkpoints', 'step-00000001')), 'pruned');
  run.model.dispose();
  model.dispose();
});

test('loadRun: a folder without checkpoints says how to make one', async (t) => {
  const dir = tempDir(t, 'm6-ckpt-');
  await assert.rejects(loadRun(dir), /no checkpoint in .*checkpoints \(train first: m6 train --out/);
  await assert.rejects(loadRun(join(dir, 'nope')), /no such folder/);
});

test('a damaged checkpoint is named file by file, and resume falls back to the newest complete one, saying so', async (t) => {
  const dir = tempDir(t, 'm6-ckpt-');
  torch.manualSeed(0);
  const model = new M6Model(config);
  const opt = makeOptimizer(model, 1e-3, 0.01);
  for (const step of [1, 2]) saveCheckpoint(dir, { model: model.stateDict(), optimizer: opt.stateDict(), config, tokenizer, trainer: state(step, opt.stateDict().meta) });
  model.dispose();
  const [first, newest] = listCheckpoints(dir).map((c) => c.dir) as [string, string];
  const backup = join(dir, 'backup');
  cpSync(newest, backup, { recursive: true });
  const other = Tokenizer.train(['something else entirely'], { vocabSize: 280, imageCodes: 16 });
  const damages: Array<[string, string, () => void | Promise<void>, RegExp]> = [
    ['truncated model', 'model.safetensors', () => truncateSync(join(newest, 'model.safetensors'), statSync(join(newest, 'model.safetensors')).size - 100), /lies outside the \d+ data bytes/],
    ['truncated optimizer', 'optimizer.safetensors', () => truncateSync(join(newest, 'optimizer.safetensors'), 5), /too short for the 8-byte header length/],
    ['garbage optimizer', 'optimizer.safetensors', () => writeFileSync(join(newest, 'optimizer.safetensors'), Buffer.alloc(64, 0xff)), /header length \d+ exceeds/],
    ['malformed config', 'config.json', () => writeFileSync(join(newest, 'config.json'), '{"layers": '), /is not valid JSON/],
    ['config of no model', 'config.json', () => writeFileSync(join(newest, 'config.json'), JSON.stringify({ ...config, heads: 0 })), /heads must be a positive integer/],
    ['malformed trainer state', 'trainer.json', () => writeFileSync(join(newest, 'trainer.json'), JSON.stringify({ version: 1, step: 'two' })), /missing or malformed step \(a count\), .*schedule/],
    ['trainer state a list', 'trainer.json', () => writeFileSync(join(newest, 'trainer.json'), '[]'), /expected a JSON object of trainer state, got an array/],
    ['foreign tokenizer', 'tokenizer.json', () => other.save(join(newest, 'tokenizer.json')), /does not match .*config\.json: the tokenizer has \d+ tokens .* the model's vocabulary \d+/],
    ['a flipped bit in the weights', 'model.safetensors', () => { const f = join(newest, 'model.safetensors'); const b = readFileSync(f); b[b.length - 3]! ^= 0x10; writeFileSync(f, b); }, /is damaged: its bytes do not match the sha256 that .*trainer\.json recorded/],
    ['a folder for a file', 'model.safetensors', () => { rmSync(join(newest, 'model.safetensors')); mkdirSync(join(newest, 'model.safetensors')); }, /is a folder, expected a file/],
  ];
  for (const [what, file, damage, re] of damages) {
    await damage();
    await assert.rejects(checkCheckpoint(newest), (e: Error) => e instanceof InputError && e.message.includes(join(newest, file)) && re.test(e.message) && !e.message.includes('\n'), what);
    const said: string[] = [];
    assert.equal((await newestCompleteCheckpoint(dir, (m) => said.push(m))).dir, first, what);
    assert.equal(said.length, 1, what);
    assert.match(said[0]!, new RegExp(`skipped 1 damaged checkpoint \\(.*${file.replace('.', '\\.')}.*\\); resuming from the newest complete one, .*step-00000001$`), what);
    // loadRun checks what loading needs (it does not hash the weights, which resume does).
    if (file !== 'optimizer.safetensors' && !what.startsWith('a flipped bit')) await assert.rejects(loadRun(dir), (e: Error) => e instanceof InputError && e.message.includes(file), `${what}: loadRun`);
    rmSync(newest, { recursive: true });
    cpSync(backup, newest, { recursive: true });
  }
  await checkCheckpoint(newest);
  for (const c of [first, newest]) truncateSync(join(c, 'model.safetensors'), 4);
  await assert.rejects(newestCompleteCheckpoint(dir, () => {}), /no complete checkpoint in .*checkpoints to resume from: .*step-00000002.*too short.*step-00000001.*too short/);
});

test('a kill between the renames of a re-save leaves the step listed; the next save puts it back and clears what crashed writers left', async (t) => {
  const dir = tempDir(t, 'm6-ckpt-');
  const model = new M6Model(config);
  const opt = makeOptimizer(model, 1e-3, 0.01);
  const save = (step: number) => saveCheckpoint(dir, { model: model.stateDict(), optimizer: opt.stateDict(), config, tokenizer, trainer: state(step, opt.stateDict().meta) }, 5);
  for (const step of [1, 2, 3]) save(step);
  const root = join(dir, 'checkpoints');
  // As a writer killed mid-way leaves them: step 3 renamed aside for its re-save, step 1 half pruned, a temp folder.
  renameSync(join(root, 'step-00000003'), join(root, '.step-00000003.replaced-999999'));
  renameSync(join(root, 'step-00000001'), join(root, '.step-00000001.trash-999999'));
  mkdirSync(join(root, '.step-00000004.tmp-999999'));
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [2, 3]);
  assert.equal(latestCheckpoint(dir), join(root, '.step-00000003.replaced-999999'));
  await checkCheckpoint(latestCheckpoint(dir)!);
  save(3);  // the re-save itself: the new folder wins, the replaced one goes
  assert.deepEqual(readdirSync(root).sort(), ['step-00000002', 'step-00000003']);
  renameSync(join(root, 'step-00000003'), join(root, '.step-00000003.replaced-999999'));
  save(4);
  assert.deepEqual(readdirSync(root).sort(), ['step-00000002', 'step-00000003', 'step-00000004'], 'put back under its own name');
  model.dispose();
});

test('lr schedule: linear warmup, cosine to the floor, constant while the length is unknown', () => {
  assert.equal(lrFactor(0, 4, 20, 0.1), 0.25);
  assert.equal(lrFactor(3, 4, 20, 0.1), 1);
  assert.equal(lrFactor(4, 4, 20, 0.1), 1);
  assert.ok(Math.abs(lrFactor(12, 4, 20, 0.1) - 0.55) < 1e-12);
  assert.equal(lrFactor(20, 4, 20, 0.1), 0.1);
  assert.equal(lrFactor(50, 4, null, 0.1), 1);
});

test('time-bounded schedule: warmup in steps, then cosine over the budget used', () => {
  assert.equal(timeLrFactor(1, 4, 0.9, 0.1), 0.5);
  assert.equal(timeLrFactor(10, 4, 0, 0.1), 1);
  assert.ok(Math.abs(timeLrFactor(10, 4, 0.5, 0.1) - 0.55) < 1e-12);
  assert.equal(timeLrFactor(10, 4, 1.5, 0.1), 0.1);
});
