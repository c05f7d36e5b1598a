// Task examples from a dataset (describe from image + text, answer from the qa column, held-out
// splits, skipped tasks with reasons), the --tasks list, and the synthetic judges of generated text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeSyntheticCatalog } from '../../src/data/synth/catalog.js';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { buildTaskData, parseTaskList, taskTexts, validationSets } from '../../src/tasks/taskData.js';
import { TASKS } from '../../src/tasks/instructions.js';
import { categoryOf, colourOf, normaliseAnswer } from '../../src/eval/syntheticEval.js';
import { specWith, tempDir } from '../data/fixtures.js';

test('--tasks: names with optional weights; unknown names and bad weights are errors', () => {
  assert.deepEqual(parseTaskList('describe:2, answer'), [{ name: 'describe', weight: 2 }, { name: 'answer', weight: 1 }]);
  assert.throws(() => parseTaskList('describe,sing'), /unknown task 'sing'/);
  assert.throws(() => parseTaskList('answer:0'), /must be a positive number/);
  assert.throws(() => parseTaskList('answer,answer'), /listed twice/);
});

test('task data from the synthetic catalog: describe, answer and design examples, held-out split', async (t) => {
  const dir = tempDir(t, 'm6-tasks-');
  await writeSyntheticCatalog({ out: dir, count: 30, seed: 5, size: 64 });
  const spec = resolveDatasetSpec(specWith(join(dir, 'dataset.json'), { split: 'train:0.7,test:0.3' }));
  const data = await buildTaskData(spec, parseTaskList('describe:3,answer,design'));
  assert.deepEqual(data.train.map((s) => [s.name, s.weight]), [['describe', 3], ['answer', 1], ['design', 1]]);
  assert.deepEqual(data.skipped, []);
  const [describe, answer, design] = data.train;
  // design: the title is the prompt, the image the target (its codes come from the VQ stage), not an input.
  const d = design!.examples[0]!;
  assert.match(d.source!, /^ what is the complete image\? caption: \S/);
  assert.ok(d.targetImage?.endsWith('.png') && d.imagePath === undefined && d.target === undefined);
  assert.equal(describe!.examples.length + data.eval[0]!.examples.length, 30);
  assert.ok(data.eval[0]!.examples.length > 0, 'some items held out');
  const ex = describe!.examples[0]!;
  assert.equal(ex.source, TASKS.describe.instruction);
  assert.ok(ex.imagePath?.endsWith('.png'));
  assert.ok(ex.target && ex.target.length > 10);
  const q = answer!.examples[0]!;
  assert.match(q.id, /#q0$/);
  assert.ok(q.imagePath && q.source && q.target);
  // No item is on both sides of the split.
  const trainIds = new Set(answer!.examples.map((e) => e.id.split('#')[0]));
  assert.ok(data.eval[1]!.examples.every((e) => !trainIds.has(e.id.split('#')[0])));
  assert.ok(taskTexts(data).includes(q.target!));
});

test('answer without question data is skipped with the columns it looked for', async (t) => {
  const dir = tempDir(t, 'm6-tasks-');
  await writeSyntheticCatalog({ out: dir, count: 5, seed: 1, size: 64 });
  const { writeFileSync, readFileSync } = await import('node:fs');
  const rows = readFileSync(join(dir, 'catalog.jsonl'), 'utf8').trim().split('\n').map((l) => { const { qa: _qa, ...rest } = JSON.parse(l); return JSON.stringify(rest); });
  writeFileSync(join(dir, 'catalog.jsonl'), rows.join('\n') + '\n');
  const data = await buildTaskData(resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'dataset.json'))), parseTaskList('describe,answer'));
  assert.deepEqual(data.train.map((s) => s.name), ['describe']);
  assert.match(data.skipped[0]!, /answer: skipped: .*has no qa column .*and no question and answer columns/);
});

test('judging generated text: first garment word and first colour word', () => {
  assert.equal(categoryOf('Red Striped Short-Sleeve T-Shirt'), 't-shirt');
  assert.equal(categoryOf('White Checked Long-Sleeve Shirt. This shirt comes in white.'), 'shirt');
  assert.equal(categoryOf('Navy Trousers A pair of trousers in solid navy.'), 'trousers');
  assert.equal(categoryOf('Grey Sneakers'), 'sneaker');
  assert.equal(categoryOf('a colourful thing'), null);
  assert.equal(colourOf('Blue Polka-Dot Dress with white polka dots'), 'blue');
  assert.equal(colourOf('no colour here'), null);
  assert.equal(normaliseAnswer(' Yes. '), 'yes');
});

test('taskTexts: the texts a fresh tokenizer learns from come from training rows only', async (t) => {
  const dir = tempDir(t, 'm6-tasks-');
  await writeSyntheticCatalog({ out: dir, count: 30, seed: 5, size: 64 });
  const spec = resolveDatasetSpec(specWith(join(dir, 'dataset.json'), { split: 'train:0.6,test:0.4' }));
  const data = await buildTaskData(spec, parseTaskList('describe,answer'));
  const texts = new Set(taskTexts(data));
  const held = data.eval.flatMap((s) => s.examples).map((e) => e.target!).filter((x) => x !== undefined);
  const train = data.train.flatMap((s) => s.examples).map((e) => e.target!).filter((x) => x !== undefined);
  assert.ok(held.length > 0 && train.length > 0);
  assert.ok(train.every((x) => texts.has(x)));
  const trainSet = new Set(train);
  assert.ok(held.filter((x) => !trainSet.has(x)).every((x) => !texts.has(x)), 'no text only a held-out row has');
});

test('held-out examples say val or test; training evaluates on validation, or says it has none', async (t) => {
  const dir = tempDir(t, 'm6-tasks-');
  await writeSyntheticCatalog({ out: dir, count: 200, seed: 2, size: 64, shoppers: 10 });
  // The catalog's own split column: train / val / test.
  const data = await buildTaskData(resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'dataset.json'))), parseTaskList('describe,embed'));
  const describe = data.eval.find((s) => s.name === 'describe')!;
  const kinds = new Set(describe.examples.map((e) => e.heldOut));
  assert.deepEqual([...kinds].sort(), ['test', 'val']);
  assert.ok(data.train[0]!.examples.every((e) => e.heldOut === undefined));
  const v = validationSets(data.eval);
  assert.equal(v.note, undefined);
  assert.ok(v.sets.every((s) => s.examples.length > 0 && s.examples.every((e) => e.heldOut === 'val')));
  // A train/test split has no validation rows: training evaluates on test and says so.
  const tt = await buildTaskData(resolveDatasetSpec(specWith(join(dir, 'dataset.json'), { split: 'train:0.8,test:0.2' })), parseTaskList('describe'));
  const w = validationSets(tt.eval);
  assert.match(w.note ?? '', /^describe: no validation rows \(split 'val'\): the evaluation during training reads their test rows/);
  assert.equal(w.sets[0]!.examples.length, tt.eval[0]!.examples.length);
});

test('a malformed qa cell is a bad row, reported with its file and row; the row still serves describe', async (t) => {
  const dir = tempDir(t, 'm6-tasks-');
  await writeSyntheticCatalog({ out: dir, count: 6, seed: 1, size: 64 });
  const { writeFileSync, readFileSync } = await import('node:fs');
  const file = join(dir, 'catalog.jsonl');
  const cells = ['[{"question": "what?"', '{"question": "a", "answer": "b"}', '[{"question": 1, "answer": "b"}]'];
  const rows = readFileSync(file, 'utf8').trim().split('\n').map((l, i) => (i < cells.length ? JSON.stringify({ ...JSON.parse(l), qa: cells[i] }) : l));
  writeFileSync(file, rows.join('\n') + '\n');
  const data = await buildTaskData(resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'dataset.json'))), parseTaskList('describe,answer'));
  assert.equal(data.badRows, 3);
  const note = data.skipped.find((s) => s.startsWith('answer:'));
  assert.match(note ?? '', /^answer: 3 rows with a malformed qa cell give no questions, e\.g\. .*catalog\.jsonl:1: malformed qa, field 'qa', expected a JSON list of \{"question", "answer"\} strings, got not JSON/);
  const describe = data.train.find((s) => s.name === 'describe')!;
  const heldOut = data.eval.find((s) => s.name === 'describe')!;
  assert.equal(describe.examples.length + heldOut.examples.length, 6, 'every row still describes');
  const answered = [...data.train, ...data.eval].filter((s) => s.name === 'answer').flatMap((s) => s.examples);
  assert.ok(answered.length > 0 && answered.every((e) => !/^p00000[123]#/.test(e.id ?? '')), 'rows 1–3 give no questions');
});
