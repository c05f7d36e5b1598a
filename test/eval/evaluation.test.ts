// Evaluating a tiny trained run on a tiny synthetic catalog (trained for a few steps in `before`, so
// the numbers are near zero; what is checked is the bookkeeping): held-out selection and --limit,
// per-item failures counted and not fatal, metrics consistent with the per-item records, tasks
// without an evaluator or without held-out data skipped with a reason, and no tensor leaks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { loadDatasetSpecFile, resolveDatasetSpec, type DatasetSpecInput } from '../../src/data/datasetSpec.js';
import { evaluateAnswer, type AnswerEvaluation } from '../../src/eval/answerEval.js';
import { evaluateDescribe, type DescribeEvaluation } from '../../src/eval/describeEval.js';
import { evaluateRun, sampleExamples, TrainingRowsError, type EvalReport, type EvaluateRunOptions } from '../../src/eval/evaluation.js';
import { loadPipeline } from '../../src/pipelines/index.js';
import { buildTaskData } from '../../src/tasks/taskData.js';
import type { TaskName } from '../../src/tasks/instructions.js';
import { m6, specWith, writeTinyConfig } from '../data/fixtures.js';

let dir = '';
let runDir = '';
const EVALUATORS: EvaluateRunOptions['evaluators'] = { describe: async () => evaluateDescribe, answer: async () => evaluateAnswer };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-eval-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '40', '--seed', '4', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'));
  runDir = join(dir, 'run');
  const trained = await m6(['train', '--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.7,test:0.3', '--config', join(dir, 'tiny.json'),
    '--batch-size', '4', '--vocab', '300', '--workers', '0', '--steps', '3', '--tasks', 'describe,answer', '--out', runDir]);
  assert.equal(trained.status, 0, trained.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function evaluate(extra: DatasetSpecInput, tasks: TaskName[], o: { limit?: number; evaluators?: EvaluateRunOptions['evaluators']; allowTrainRows?: boolean; holdout?: 'val' | 'test' } = {}): Promise<EvalReport> {
  const spec = resolveDatasetSpec(specWith(join(dir, 'catalog', 'dataset.json'), { ...extra }));
  const data = await buildTaskData(spec, tasks.map((name) => ({ name, weight: 1 })));
  const live = torch.liveTensors();
  const pipeline = await loadPipeline(runDir);
  try {
    return await evaluateRun({ pipeline, spec, data, tasks, evaluators: o.evaluators ?? EVALUATORS, ...(o.limit !== undefined ? { limit: o.limit } : {}), batchSize: 3, ...(o.allowTrainRows !== undefined ? { allowTrainRows: o.allowTrainRows } : {}), ...(o.holdout !== undefined ? { holdout: o.holdout } : {}) });
  } finally {
    pipeline.close();
    assert.equal(torch.liveTensors(), live, 'every tensor of the evaluation is freed');
  }
}

test('describe and answer on held-out items: --limit, a failed item counted and left out, metrics from the records', async () => {
  const split = { split: 'train:0.7,test:0.3' };
  const spec = resolveDatasetSpec(specWith(join(dir, 'catalog', 'dataset.json'), { ...split }));
  const data = await buildTaskData(spec, [{ name: 'describe', weight: 1 }]);
  const heldOut = data.eval[0]!.examples;
  assert.ok(heldOut.length > 6, `held out: ${heldOut.length}`);
  // The image of one item the limit will draw goes missing after training: that item fails alone.
  const missing = sampleExamples(heldOut, 6)[0]!;
  rmSync(missing.imagePath!);

  const report = await evaluate(split, ['describe', 'answer', 'embed'], { limit: 6 });
  assert.deepEqual(report.skipped, [{ task: 'embed', reason: 'm6 eval has no evaluator for embed yet' }]);
  assert.equal(report.rows, 40);
  assert.match(report.checkpoint, /step-00000003$/);
  assert.equal(report.step, 3);
  assert.equal(report.trainingRows, 0, 'the run\'s own held-out rows: none was trained on');

  const describe = report.tasks.find((t) => t.task === 'describe') as DescribeEvaluation;
  assert.equal(describe.available, heldOut.length);
  assert.deepEqual(describe.failures.map((f) => f.id), [missing.id]);
  assert.match(describe.failures[0]!.error, /missing file/);
  assert.equal(describe.evaluated, 5);
  assert.equal(describe.items.length, 5);
  assert.ok(describe.items.every((d) => d.id !== missing.id && typeof d.generated === 'string' && d.rule === 'catalog'));
  for (const key of ['bleu4', 'rougeL', 'categoryAccuracy', 'colourAccuracy']) {
    const v = describe.metrics[key]!;
    assert.ok(v >= 0 && v <= 1, `${key} ${v}`);
  }
  assert.ok(describe.metrics.ciderD! >= 0);
  assert.equal(describe.metrics.categoryAccuracy, describe.items.filter((d) => d.labelOk).length / 5);
  assert.ok(describe.baselines.categoryAccuracy! >= 1 / 5 && describe.baselines.categoryAccuracy! <= 1);
  assert.match(describe.notes.join('\n'), /1 item\(s\) failed/);

  const answer = report.tasks.find((t) => t.task === 'answer') as AnswerEvaluation;
  assert.ok(answer.available > 6);
  assert.equal(answer.evaluated + answer.failures.length, 6);
  assert.ok(answer.failures.every((f) => f.id.startsWith(`${missing.id}#q`)), 'only questions about the missing photo fail');
  assert.equal(answer.metrics.exactMatch, answer.items.filter((a) => a.ok).length / answer.evaluated);
  assert.ok(answer.items.every((a) => a.question.length > 0 && a.reference.length > 0 && a.image !== undefined));
});

test('an evaluation-only spec (every row held out) is evaluated; a spec with no held-out rows is skipped with the fix', async () => {
  // Every row held out includes the rows the run trained on: refused unless asked for (a training-set evaluation).
  await assert.rejects(evaluate({ split: { test: 1 } }, ['describe'], { limit: 3 }), (err: Error) => err instanceof TrainingRowsError
    && /^\d+ of the 40 held-out rows of .* are rows the run trained on \(.*split\.json: \d+ training rows/.test(err.message) && /--allow-train-rows/.test(err.message));
  const only = await evaluate({ split: { test: 1 } }, ['describe'], { limit: 3, allowTrainRows: true });
  assert.ok(only.trainingRows! > 0);
  assert.deepEqual(only.skipped, []);
  assert.equal(only.tasks[0]!.available, 40, 'every row is held out (a missing image is found only when generating)');
  assert.equal(only.tasks[0]!.evaluated + only.tasks[0]!.failures.length, 3);

  const none = await evaluate({ split: { train: 1 } }, ['describe', 'answer']);
  assert.deepEqual(none.tasks, []);
  assert.equal(none.skipped.length, 2);
  for (const s of none.skipped) assert.match(s.reason, /no held-out rows: give the data a test split \(--split train:0.9,test:0.1/);

  const custom = await evaluate({ split: { test: 1 } }, ['answer'], { evaluators: { answer: async () => async () => ({ skipped: 'not today' }) }, allowTrainRows: true });
  assert.deepEqual(custom.skipped, [{ task: 'answer', reason: 'not today' }]);
});

test('--holdout: validation rows or test rows only, and a split without the one asked for says so', async () => {
  // Another split than the run's: a deliberate training-set evaluation, to have val and test rows here.
  const split = { split: 'train:0.4,val:0.3,test:0.3', splitSeed: 3 };
  const spec = resolveDatasetSpec(specWith(join(dir, 'catalog', 'dataset.json'), split));
  const data = await buildTaskData(spec, [{ name: 'describe', weight: 1 }]);
  const count = (kind: string) => data.eval[0]!.examples.filter((e) => e.heldOut === kind).length;
  assert.ok(count('val') > 0 && count('test') > 0);
  const val = await evaluate(split, ['describe'], { holdout: 'val', allowTrainRows: true });
  assert.equal(val.holdout, 'val');
  assert.equal(val.tasks[0]!.available, count('val'));
  const testRows = await evaluate(split, ['describe'], { holdout: 'test', allowTrainRows: true });
  assert.equal(testRows.tasks[0]!.available, count('test'));
  const none = await evaluate({ split: 'train:0.7,test:0.3' }, ['describe'], { holdout: 'val' });
  assert.equal(none.tasks.length, 0);
  assert.match(none.skipped[0]!.reason, /none of its \d+ held-out examples is in a val split .*--holdout test evaluates them/);
});
