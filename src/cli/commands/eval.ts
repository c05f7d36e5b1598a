// `m6 eval --run R <data spec> [--tasks …] [--limit N] [--temperature T --top-k K --top-p P] [--json] [--out FILE]`: evaluate a trained
// run on the held-out rows of a dataset, task by task, and print a table (or JSON). A task with no
// evaluator yet, or no held-out data, is listed as skipped with the reason; the command fails only
// when nothing at all could be evaluated.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { DatasetSpec } from '../../data/datasetSpec.js';
import type { DesignEvalOptions } from '../../eval/designEval.js';
import type { RecommendEvalOptions } from '../../eval/recommendEval.js';
import type { SearchEvalOptions } from '../../eval/searchEval.js';
import type { EvalReport, EvaluatorLoader } from '../../eval/evaluation.js';
import { TASKS, type TaskName } from '../../tasks/instructions.js';
import { parseTaskList } from '../../tasks/taskData.js';
import { addDatasetOptions, datasetSpecFromFlags, type DatasetFlags } from '../datasetOptions.js';
import { asUsageError, UsageError } from '../errors.js';
import { addSamplingOptions, samplingFromFlags, type SamplingFlags } from '../samplingOptions.js';
import { numberFlag } from '../flags.js';

// ── Task evaluators: where `m6 eval` looks up how to judge each task. ────────────────────────────
// One entry per task, loaded on demand (libtorch loads only when an evaluation runs). A task with no
// entry is reported as skipped, not as an error. The design task samples its images with the given
// options (`m6 design`'s flags).
function evaluators(design: DesignEvalOptions = {}, recommend: RecommendEvalOptions = {}, search: SearchEvalOptions = {}): Partial<Record<TaskName, EvaluatorLoader>> {
  return {
    describe: async () => (await import('../../eval/describeEval.js')).evaluateDescribe,
    answer: async () => (await import('../../eval/answerEval.js')).evaluateAnswer,
    embed: async () => (await import('../../eval/embedEval.js')).evaluateEmbedTask,
    design: async () => {
      const { evaluateDesign } = await import('../../eval/designEval.js');
      return (ctx) => evaluateDesign(ctx, design);
    },
    complement: async () => (await import('../../eval/complementEval.js')).evaluateComplement,
    search: async () => {
      const { evaluateSearch } = await import('../../eval/searchEval.js');
      return (ctx) => evaluateSearch(ctx, search);
    },
    recommend: async () => {
      const { evaluateRecommend } = await import('../../eval/recommendEval.js');
      return (ctx) => evaluateRecommend(ctx, recommend);
    },
  };
}

interface EvalFlags extends DatasetFlags, SamplingFlags {
  run: string;
  tasks: string;
  limit?: string;
  batchSize: string;
  seed: string;
  json?: boolean;
  out?: string;
  allowTrainRows?: boolean;
  holdout: string;
  index?: string;
}

const METRIC_NAMES: Record<string, string> = {
  textToImageRecall1: 'text→image recall@1', textToImageRecall5: 'text→image recall@5', textToImageRecall10: 'text→image recall@10',
  imageToTextRecall1: 'image→text recall@1', imageToTextRecall5: 'image→text recall@5', imageToTextRecall10: 'image→text recall@10',
  hr1: 'HR@1', hr5: 'HR@5', hr10: 'HR@10', hr20: 'HR@20', ndcg5: 'NDCG@5', ndcg10: 'NDCG@10', ndcg20: 'NDCG@20',
  annRecallAt10: 'ANN recall@10 vs exact',
  cold_hr10: 'cold items HR@10', cold_ndcg10: 'cold items NDCG@10', cold_hr5: 'cold items HR@5', cold_ndcg5: 'cold items NDCG@5', cold_hr20: 'cold items HR@20', cold_ndcg20: 'cold items NDCG@20',
  bleu4: 'BLEU-4', rougeL: 'ROUGE-L', ciderD: 'CIDEr-D', categoryAccuracy: 'category accuracy', colourAccuracy: 'colour accuracy', exactMatch: 'exact match',
};

/** Shares (accuracies, exact match, recall) read best as percentages; scores as plain numbers. */
function formatMetric(key: string, value: number): string {
  if (/^(cold_)?(hr|ndcg)\d+$/.test(key)) return value.toFixed(4);  // ranking figures, as papers print them
  return /accuracy|match|recall/i.test(key) ? `${(100 * value).toFixed(1)}%` : value.toFixed(3);
}

/** The baselines of one metric in the order the 'baseline column' line names them; a baseline without the metric is '—', so the others keep their places. */
function baselineCell(key: string, values: ReadonlyArray<number | undefined>): string {
  if (values.every((v) => v === undefined)) return '';
  const cells = values.map((v) => (v === undefined ? '—' : formatMetric(key, v)));
  while (cells.at(-1) === '—') cells.pop();
  return cells.join(' / ');
}

/** The report as a plain-text table, one metric per line, baselines beside them. */
export function formatEvalReport(report: EvalReport): string {
  const lines = [`run ${report.checkpoint} (step ${report.step}) on ${report.data}: ${report.rows} rows${report.badRows ? `, ${report.badRows} bad rows skipped` : ''}${report.holdout !== undefined ? `; the ${report.holdout === 'val' ? 'validation' : 'test'} rows` : ''}`];
  if (report.trainingRows !== null && report.trainingRows > 0) lines.push(`TRAINING-SET EVALUATION: ${report.trainingRows} of the held-out rows were trained on (--allow-train-rows); these figures do not measure generalisation`);
  const table: string[][] = [['task', 'items', 'failed', 'metric', 'value', 'baseline']];
  for (const t of report.tasks) {
    Object.entries(t.metrics).forEach(([key, value], i) => {
      table.push([
        i === 0 ? t.task : '', i === 0 ? `${t.evaluated}/${t.available}` : '', i === 0 ? String(t.failures.length) : '',
        METRIC_NAMES[key] ?? key, formatMetric(key, value), baselineCell(key, [t.baselines[key], ...(t.moreBaselines ?? []).map((b) => b.values[key])]),
      ]);
    });
  }
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) lines.push(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
  for (const t of report.tasks) if (t.moreBaselines?.length) lines.push(`${t.task}: baseline column: ${t.baselineName ?? 'baseline'} / ${t.moreBaselines.map((b) => b.name).join(' / ')}`);
  for (const t of report.tasks) for (const n of t.notes) lines.push(`${t.task}: ${n}`);
  for (const s of report.skipped) lines.push(`${s.task}: skipped: ${s.reason}`);
  lines.push(`evaluated in ${report.seconds.toFixed(1)} s`);
  return lines.join('\n');
}

/** The report without per-item records (what --json prints; --out keeps them). */
function summaryOf(report: EvalReport): unknown {
  return { ...report, tasks: report.tasks.map(({ items: _items, ...t }) => t) };
}

export function registerEval(program: Command): void {
  addSamplingOptions(addDatasetOptions(program.command('eval').description('evaluate a trained run on the held-out rows of a dataset: describe (BLEU-4, ROUGE-L, CIDEr-D, category accuracy), answer (exact match), embed (recall@1/5/10 both ways), design (attribute accuracy by a classifier, Fréchet distance), search (recall@1/5/10, nDCG@10 and ANN recall of a catalog index)'))
    .requiredOption('--run <dir>', 'run folder of m6 train (its newest checkpoint) or one checkpoint folder')
    .option('--tasks <list>', 'tasks to evaluate, comma-separated', Object.keys(TASKS).join(','))
    .option('--limit <n>', 'most held-out items per task (a seeded draw; default: all)')
    .option('--batch-size <n>', 'inputs per generation batch', '16')
    .option('--seed <n>', 'seed of the --limit draw', '0')
    .option('--json', 'print the results as JSON (without per-item records; --out has them)')
    .option('--out <file>', 'write the results with every item\'s record as JSON to this file')
    .option('--holdout <which>', 'which held-out rows: test (the final figures) or val (the rows to choose settings on); recommend: each shopper\'s last item or the one before it', 'test')
    .option('--index <dir>', 'search: a catalog index built (by this run) from exactly the held-out rows judged; default: one built in a temp folder')
    .option('--allow-train-rows', 'score held-out rows even where the run trained on them (a training-set evaluation, labelled as such); without it such rows are refused'))
    .action(async (flags: EvalFlags) => {
      const { run: runDir, tasks: taskText, limit: limitText, batchSize: batchText, seed: seedText, json, out, temperature, topK, topP, guidance, allowTrainRows, holdout, index, ...datasetFlags } = flags;
      if (holdout !== 'val' && holdout !== 'test') throw new UsageError(`--holdout must be val or test, got '${holdout}'`);
      const sampling = samplingFromFlags({ temperature, topK, topP, guidance });
      let tasks: TaskName[];
      try {
        tasks = parseTaskList(taskText).map((t) => t.name);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const limit = limitText !== undefined ? numberFlag('--limit', limitText, { integer: true, min: 1 }) : undefined;
      const batchSize = numberFlag('--batch-size', batchText, { integer: true, min: 1 });
      const seed = numberFlag('--seed', seedText, { integer: true, min: 0 });
      const spec: DatasetSpec = datasetSpecFromFlags(datasetFlags);
      const log = (m: string) => process.stderr.write(`${m}\n`);

      let report: EvalReport;
      try {
        // The data first: a bad column or file is reported before libtorch and the model load.
        const { buildTaskData } = await import('../../tasks/taskData.js');
        // A task judged on another's examples (search: embed's) needs that task's data built too.
        const needed = [...new Set(tasks.flatMap((name) => [name, TASKS[name].examplesOf ?? name]))];
        const data = await buildTaskData(spec, needed.map((name) => ({ name, weight: 1 })));
        const torch = await import('../../torch/index.js');
        const { loadPipeline } = await import('../../pipelines/index.js');
        const { evaluateRun } = await import('../../eval/evaluation.js');
        torch.keepLargeAllocations();
        using pipeline = await loadPipeline(runDir);
        report = await evaluateRun({ pipeline, spec, data, tasks, evaluators: evaluators(sampling, { holdout }, index !== undefined ? { index } : {}), holdout, ...(limit !== undefined ? { limit } : {}), seed, batchSize, log, allowTrainRows: allowTrainRows === true });
      } catch (err) {
        throw asUsageError(err);
      }
      if (out !== undefined) writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
      console.log(json === true ? JSON.stringify(summaryOf(report), null, 2) : formatEvalReport(report));
      if (report.tasks.length === 0) throw new UsageError(`nothing was evaluated: ${report.skipped.map((s) => `${s.task}: ${s.reason}`).join('; ')}`, 1);
    });
}
