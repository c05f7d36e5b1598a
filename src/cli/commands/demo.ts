// `m6 demo`: the README's quick start. Synthesise the garment catalog, train m6-nano on describe,
// answer, embed and design for a bounded time, judge held-out products — descriptions and answers
// against the catalog's exact truth, search by recall@k, designs by an attribute classifier — and
// write report.html and demo-results.json into the run folder.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { DatasetSpec } from '../../data/datasetSpec.js';
import type { DesignEvaluation } from '../../eval/designEval.js';
import type { TaskEvaluation } from '../../eval/evaluation.js';
import type { Pipeline } from '../../pipelines/index.js';
import type { CatalogIndex } from '../../search/index.js';
import type { EmbedEvalResult } from '../../eval/embedEval.js';
import type { NearestDescribeResult, PixelSearchResult } from '../../eval/pixelBaselines.js';
import type { SyntheticEvalResult } from '../../eval/syntheticEval.js';
import { formatDuration, ProgressLine } from '../../train/progress.js';
import type { RunTrainingResult } from '../../train/runTraining.js';
import { parseTaskList, type TaskRequest } from '../../tasks/taskData.js';
import { RENDER_VERSION } from '../../data/synth/attributes.js';
import { DEFAULT_VQ_STEPS } from '../../train/vqFiles.js';
import { LOSS_MEANS, type LossMean } from '../../train/lossMean.js';
import { datasetSpecFromFlags } from '../datasetOptions.js';
import { UsageError } from '../errors.js';
import { numberFlag } from '../flags.js';
import { openPipeline } from '../openPipeline.js';
import { runWithInterrupt } from './train.js';

interface DemoFlags {
  out: string;
  minutes: string;
  quick?: boolean;
  n?: string;
  seed: string;
  bf16?: boolean;
  evalItems?: string;
  batchSize: string;
  lr: string;
  augment: boolean;
  tasks: string;
  vqSteps?: string;
  lossMean: LossMean;
}

const DEMO_TASK_NAMES = new Set(['describe', 'answer', 'embed', 'design', 'recommend']);
/** The demo's mixture. With the loss averaged per row a task's weight is its share of the objective (the README says why answer weighs half). */
const DEMO_TASKS = 'describe,answer:0.5,embed,design,recommend:0.5';

/** The demo's settings, checked. */
interface DemoPlan {
  out: string;
  quick: boolean;
  minutes: number;
  n: number;
  seed: number;
  evalItems: number;
  bf16: boolean;
  tasks: TaskRequest[];
  flags: DemoFlags;
}

interface DemoEvaluation {
  synthetic: SyntheticEvalResult;
  /** Answer's baseline: each question's commonest training answer, never looking at the image. */
  answerPrior?: number;
  retrieval?: EmbedEvalResult;
  design?: DesignEvaluation;
  /** Next-item recommendation on each shopper's last item, full ranking, beside popularity and co-occurrence. */
  recommend?: TaskEvaluation;
  /** Pixel baselines (pixelBaselines.ts): describe by the nearest training thumbnail's caption; search by the mean thumbnail of the title's training products. */
  pixelDescribe?: NearestDescribeResult;
  pixelSearch?: PixelSearchResult;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('synthesise a catalog, train m6-nano on it for a bounded time, evaluate on held-out items, write report.html')
    .option('--out <dir>', 'demo folder (catalog/ and run/; run/ is replaced)', 'runs/demo')
    .option('--minutes <m>', 'training time budget', '15')
    .option('--quick', 'a 1.5-minute run on a smaller catalog (a smoke test of the whole path, not of accuracy)')
    .option('--n <count>', 'products in the synthetic catalog (default 10000; 400 with --quick)')
    .option('--no-augment', 'train without random crops and flips')
    .option('--seed <n>', 'seed of the catalog, the weights and the data order', '0')
    .option('--bf16', 'bf16 autocast (default: when a short matmul probe finds bf16 faster than fp32 here; m6 info shows it)')
    .option('--no-bf16', 'train in fp32')
    .option('--eval-items <n>', 'held-out products to describe and question (default 1000; 40 with --quick)')
    .option('--batch-size <n>', 'examples per batch', '16')
    .option('--lr <x>', 'peak learning rate', '2e-3')
    .option('--vq-steps <n>', `steps of the VQ image tokenizer stage when design is trained (default ${DEFAULT_VQ_STEPS}; 150 with --quick)`)
    .addOption(new Option('--loss-mean <how>', "how the generative loss averages: 'rows' (every example weighs the same: a one-word answer counts as much as a design row's 64 image codes) or 'tokens'").choices(LOSS_MEANS).default('rows'))
    .option('--tasks <list>', 'tasks and mixture weights to train from describe, answer, embed, design, recommend (each trained task is evaluated)', DEMO_TASKS)
    .action(async (flags: DemoFlags) => {
      const plan = await demoPlan(flags);
      const progress = new ProgressLine(process.stderr, 15_000);
      const log = (m: string) => progress.log(m);
      const catalogDir = await prepareCatalog(plan, log);
      const runDir = join(plan.out, 'run');
      const data = datasetSpecFromFlags({ data: join(catalogDir, 'dataset.json'), split: 'train:0.9,test:0.1' });
      const result = await trainDemo(plan, runDir, data, progress);
      log(result.message);
      if (result.checkpoint === undefined) {
        log('no checkpoint was written: nothing to evaluate');
        process.exitCode = 1;
        return;
      }
      const evaluation = await evaluateDemo(plan, { runDir, catalogDir, data, result, log });
      const reportFile = await writeDemoReport(plan, { runDir, catalogDir, result, evaluation });
      console.log(`${demoSummary(evaluation)}\nreport: ${reportFile}`);
      if (trains(plan, 'embed')) await demoSearch(plan, runDir, result, (m) => progress.log(m));
      // The next step: put the run and its index behind the API and open the playground.
      const index = trains(plan, 'embed') ? ` --index ${join(runDir, 'index')}` : '';
      console.log(`serve it: m6 serve --run ${runDir}${index}   (then open http://127.0.0.1:8080/ for the playground, with held-out examples to try; /docs for the API)`);
    });
}

async function demoPlan(flags: DemoFlags): Promise<DemoPlan> {
  // The engine loads here, when the demo runs, not when `m6` starts.
  const torch = await import('../../torch/index.js');
  const quick = flags.quick === true;
  const tasks = parseTaskList(flags.tasks);
  const outside = tasks.find((t) => !DEMO_TASK_NAMES.has(t.name));
  if (outside !== undefined) throw new UsageError(`--tasks: the demo trains and judges ${[...DEMO_TASK_NAMES].join(', ')}; '${outside.name}' is not one of them`);
  // The report is built around the held-out descriptions.
  if (!tasks.some((t) => t.name === 'describe')) throw new UsageError('--tasks: the demo needs describe (its report is built around the held-out descriptions)');
  return {
    out: resolve(flags.out), quick, tasks, flags,
    minutes: quick && flags.minutes === '15' ? 1.5 : numberFlag('--minutes', flags.minutes, { positive: true }),
    n: numberFlag('--n', flags.n ?? (quick ? '400' : '10000'), { integer: true, min: 20 }),
    seed: numberFlag('--seed', flags.seed, { integer: true, min: 0 }),
    evalItems: numberFlag('--eval-items', flags.evalItems ?? (quick ? '40' : '1000'), { integer: true, min: 1 }),
    // Where the flags say nothing or oneDNN makes little of them, the probe's measurement decides.
    bf16: flags.bf16 ?? torch.probeBf16Matmul().pays,
  };
}

const trains = (plan: DemoPlan, name: string) => plan.tasks.some((t) => t.name === name);

/** The synthetic catalog in OUT/catalog, reused when one of the same size, seed and renderer is there. */
async function prepareCatalog(plan: DemoPlan, log: (m: string) => void): Promise<string> {
  const { writeSyntheticCatalog } = await import('../../data/synth/catalog.js');
  const catalogDir = join(plan.out, 'catalog');
  const stamp = join(catalogDir, 'demo-catalog.json');
  const wanted = JSON.stringify({ n: plan.n, seed: plan.seed, size: 64, render: RENDER_VERSION });
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) {
    log(`reusing the catalog in ${catalogDir}`);
    return catalogDir;
  }
  const t0 = Date.now();
  rmSync(catalogDir, { recursive: true, force: true });
  const r = await writeSyntheticCatalog({ out: catalogDir, count: plan.n, seed: plan.seed, size: 64 });
  writeFileSync(stamp, wanted);
  log(`synthesised ${r.products} products into ${catalogDir} (${formatDuration((Date.now() - t0) / 1000)})`);
  return catalogDir;
}

/** m6-nano on the catalog for the time budget, into a fresh OUT/run. */
async function trainDemo(plan: DemoPlan, runDir: string, data: DatasetSpec, progress: ProgressLine): Promise<RunTrainingResult> {
  const { flags, quick, bf16 } = plan;
  rmSync(runDir, { recursive: true, force: true });
  progress.log(`training m6-nano for ${plan.minutes} minutes${bf16 ? ' (bf16 autocast)' : ''}; Ctrl-C stops early and still evaluates`);
  return runWithInterrupt({
    runDir, data, tasks: plan.tasks, preset: 'm6-nano', overrides: {},
    vq: { bf16, steps: flags.vqSteps !== undefined ? numberFlag('--vq-steps', flags.vqSteps, { integer: true, min: 1 }) : quick ? 150 : DEFAULT_VQ_STEPS },
    vocab: 2000, log: (m) => progress.log(m), progress,
    loop: {
      steps: null, minutes: plan.minutes, batchSize: numberFlag('--batch-size', flags.batchSize, { integer: true, min: 1 }), gradAccum: 1,
      lr: numberFlag('--lr', flags.lr, { positive: true }), warmup: quick ? 10 : 50, minLrRatio: 0.05, weightDecay: 0.01, clipNorm: 1,
      bf16, seed: plan.seed, evalEvery: quick ? 25 : 500, evalBatches: 4, saveEvery: 200, keepCheckpoints: 2, maxNonFinite: 20, augment: flags.augment, lossMean: flags.lossMean,
    },
  });
}

/** Judges the trained run on held-out products: describe and answer, search (embed), design. */
async function evaluateDemo(plan: DemoPlan, r: { runDir: string; catalogDir: string; data: DatasetSpec; result: RunTrainingResult; log: (m: string) => void }): Promise<DemoEvaluation> {
  const { evaluateSynthetic, readCatalog } = await import('../../eval/syntheticEval.js');
  const { evaluateEmbed } = await import('../../eval/embedEval.js');
  const { evaluateRun } = await import('../../eval/evaluation.js');
  const catalog = readCatalog(join(r.catalogDir, 'catalog.jsonl'));
  const heldOutAll = r.result.data.rows.filter((row) => row.split === 'test').map((row) => catalog.get(row.id)).filter((x) => x !== undefined);
  const heldOut = heldOutAll.slice(0, plan.evalItems);
  r.log(`evaluating on ${heldOut.length} held-out products…`);
  using pipeline = await openPipeline(r.runDir);
  const out: DemoEvaluation = {
    synthetic: await evaluateSynthetic(pipeline, heldOut, r.catalogDir, { maxQuestions: plan.quick ? 120 : 1000, withAnswers: trains(plan, 'answer') }),
  };
  // The pixel baselines look at the training products' 16×16 thumbnails, loaded once for both.
  const { loadPixelCorpus, nearestNeighbourDescribe, pixelSearchBaseline } = await import('../../eval/pixelBaselines.js');
  const trainPixels = await loadPixelCorpus(r.result.data.rows.filter((row) => row.split === 'train').map((row) => catalog.get(row.id)).filter((x) => x !== undefined), r.catalogDir);
  out.pixelDescribe = await nearestNeighbourDescribe(trainPixels, heldOut, r.catalogDir);
  if (out.synthetic.answer !== null) {
    const { noImagePrior } = await import('../../eval/answerEval.js');
    const train = (r.result.data.train.find((t) => t.name === 'answer')?.examples ?? []).map((e) => ({ question: e.source!, answer: e.target! }));
    out.answerPrior = noImagePrior(train, out.synthetic.answer.items.map((a) => ({ question: a.question, reference: a.truth })));
  }
  if (trains(plan, 'embed')) {
    // Search over every held-out product (up to 1000): a title finds the images with its attributes.
    const searchItems = heldOutAll.slice(0, 1000)
      .map((it) => ({ id: it.id, image: join(r.catalogDir, it.image), text: it.title, group: `${it.category}|${it.colour}|${it.pattern ?? ''}` }));
    out.retrieval = await evaluateEmbed(pipeline, searchItems);
    out.pixelSearch = await pixelSearchBaseline(trainPixels, searchItems);
  }
  if (trains(plan, 'design')) {
    // Design: one image per held-out title (--eval-items of them), judged by a classifier trained on the real catalog images.
    const report = await evaluateRun({
      pipeline, spec: r.data, data: r.result.data, tasks: ['design'], limit: plan.evalItems, log: r.log,
      evaluators: { design: async () => (await import('../../eval/designEval.js')).evaluateDesign },
    });
    out.design = report.tasks.find((t): t is DesignEvaluation => t.task === 'design');
    for (const sk of report.skipped) r.log(`design evaluation skipped: ${sk.reason}`);
  }
  if (trains(plan, 'recommend')) {
    const report = await evaluateRun({
      pipeline, spec: r.data, data: r.result.data, tasks: ['recommend'], log: r.log,
      evaluators: { recommend: async () => (await import('../../eval/recommendEval.js')).evaluateRecommend },
    });
    out.recommend = report.tasks.find((t) => t.task === 'recommend');
    for (const sk of report.skipped) r.log(`recommend evaluation skipped: ${sk.reason}`);
  }
  return out;
}

/** report.html and demo-results.json in the run folder; returns the report's path. */
async function writeDemoReport(plan: DemoPlan, r: { runDir: string; catalogDir: string; result: RunTrainingResult; evaluation: DemoEvaluation }): Promise<string> {
  const { readMetrics } = await import('../../train/metrics.js');
  const { writeReport } = await import('../../eval/report.js');
  const { result, evaluation: { synthetic, retrieval, design, recommend } } = r;
  const { flags, bf16, minutes, n } = plan;
  const d = synthetic.describe;
  const reportFile = join(r.runDir, 'report.html');
  writeReport({
    file: reportFile, catalogDir: r.catalogDir, title: 'm6 demo: m6-nano on the synthetic catalog', metrics: readMetrics(join(r.runDir, 'metrics.jsonl')), evaluation: synthetic, ...(retrieval !== undefined ? { retrieval } : {}), ...(design !== undefined ? { design } : {}),
    facts: [
      ['model', `${result.config.name}: ${result.config.layers} layers × ${result.config.dim}, images ${result.config.imageSize}px, vocabulary ${result.config.vocabSize}`],
      ['data', `${n} synthetic products (90% train / 10% held out); tasks ${plan.tasks.map((t) => t.name).join(' + ')}${flags.augment ? '; random crops and flips' : ''}; loss averaged over ${flags.lossMean}`],
      ['steps', `${result.step} in ${minutes} min budget (${result.stepsPerSecond.toFixed(2)} steps/s, ${Math.round(result.tokensPerSecond)} positions/s${bf16 ? ', bf16' : ', fp32'})`],
      ['loss', `${result.firstLoss.toFixed(3)} → ${result.finalLoss.toFixed(3)}`],
      ['checkpoint', result.checkpoint ?? ''],
      ['evaluation time', formatDuration(synthetic.seconds)],
    ],
  });
  writeFileSync(join(r.runDir, 'demo-results.json'), JSON.stringify({
    steps: result.step, stepsPerSecond: result.stepsPerSecond, augment: flags.augment, lossMean: flags.lossMean, firstLoss: result.firstLoss, finalLoss: result.finalLoss, bf16, minutes, products: n, tasks: flags.tasks,
    describe: { categoryAccuracy: d.categoryAccuracy, colourAccuracy: d.colourAccuracy, bleu4: d.bleu4, rougeL: d.rougeL, ciderD: d.ciderD, categoryBaseline: d.categoryBaseline, colourBaseline: d.colourBaseline, items: d.items.length },
    answer: synthetic.answer ? { exactMatch: synthetic.answer.exactMatch, noImagePrior: r.evaluation.answerPrior, questions: synthetic.answer.items.length } : null,
    design: design !== undefined ? { items: design.evaluated, metrics: design.metrics, baselines: design.baselines } : null,
    recommend: recommend !== undefined ? { shoppers: recommend.evaluated, metrics: recommend.metrics, baselines: { [recommend.baselineName ?? 'baseline']: recommend.baselines, ...Object.fromEntries((recommend.moreBaselines ?? []).map((b) => [b.name, b.values])) } } : null,
    embed: retrieval === undefined ? null : { items: retrieval.items, textToImage: retrieval.textToImage, imageToText: retrieval.imageToText, chanceTextToImage: retrieval.chanceTextToImage },
    pixelBaselines: { describe: r.evaluation.pixelDescribe ?? null, search: r.evaluation.pixelSearch ?? null },
  }, null, 2) + '\n');
  return reportFile;
}

/**
 * The catalog into a search index (the exact store, in RUN/index) and one search by a held-out
 * product's title, printed with the command that runs more.
 */
async function demoSearch(plan: DemoPlan, runDir: string, result: RunTrainingResult, log: (m: string) => void): Promise<void> {
  const { openCatalogIndex, indexCatalog, provenanceOf } = await import('../../search/index.js');
  using pipeline = await openPipeline(runDir, 'embed');
  const uri = join(runDir, 'index');
  const index = await openCatalogIndex(uri, { store: 'exact', weights: await provenanceOf(pipeline) });
  try {
    const started = Date.now();
    const r = await indexCatalog(pipeline, result.data.rows, index, { onExisting: 'skip' });
    log(`indexed ${r.inserted} catalog products into ${uri} (${formatDuration((Date.now() - started) / 1000)}${r.failed.length ? `; ${r.failed.length} skipped` : ''})`);
    const query = result.data.rows.find((row) => row.split === 'test' && row.caption !== undefined)?.caption ?? 'red dress';
    const [q] = await pipeline.embed({ texts: [query] });
    if (!q!.ok) return;
    const hits = await index.search(q!.vector, { k: 3, vectorColumn: 'image' });
    console.log(`search "${query}": ${hits.map((h) => `${h.title} (${h.score.toFixed(2)})`).join('; ')}\nsearch more: m6 search --index ${uri} --text "${query}"`);
    if (trains(plan, 'recommend')) await demoRecommend(pipeline, index, result, join(plan.out, 'catalog', 'dataset.json'));
  } finally {
    await index.close();
  }
}

/** One shopper's recommendations (their whole history the query), printed with the command that runs more. */
async function demoRecommend(pipeline: Pipeline, index: CatalogIndex, result: RunTrainingResult, spec: string): Promise<void> {
  const rd = result.data.recommend;
  const [user, history] = rd !== undefined ? [...rd.split.train.entries()][0] ?? [] : [];
  if (user === undefined || history === undefined || !pipeline.supports('recommend')) return;
  const { recommendItems } = await import('../../search/index.js');
  const hits = await recommendItems({ pipeline, index }, { history }, { k: 3 });
  const seen = (await index.get(history.slice(-3))).map((r) => r.title).join(', ');
  console.log(`recommend for shopper ${user} (who saw ${seen}, …): ${hits.map((h) => `${h.title} (${h.score.toFixed(2)})`).join('; ')}\nrecommend more: m6 recommend --index ${index.uri} --data ${spec} --user ${user}`);
}

/** The one-line summary the demo ends with. */
function demoSummary({ synthetic, answerPrior, retrieval, design, recommend, pixelDescribe, pixelSearch }: DemoEvaluation): string {
  const d = synthetic.describe;
  const pct = (x: number | undefined) => (100 * (x ?? 0)).toFixed(1);
  return [
    `describe category accuracy ${pct(d.categoryAccuracy)}% (majority ${pct(d.categoryBaseline)}%)`,
    `colour ${pct(d.colourAccuracy)}% (majority ${pct(d.colourBaseline)}%)`,
    `BLEU-4 ${d.bleu4.toFixed(3)}, ROUGE-L ${d.rougeL.toFixed(3)}, CIDEr-D ${d.ciderD.toFixed(3)}`,
    ...(synthetic.answer ? [`answer exact match ${pct(synthetic.answer.exactMatch)}% (no-image prior ${pct(answerPrior)}%)`] : []),
    ...(retrieval !== undefined ? [`text→image recall@10 ${pct(retrieval.textToImage['recall@10'])}% over ${retrieval.items} items (chance ${pct(retrieval.chanceTextToImage['recall@10'])}%)`] : []),
    ...(recommend !== undefined ? [`recommend NDCG@10 ${(recommend.metrics.ndcg10 ?? 0).toFixed(4)} over all items (popularity ${(recommend.baselines.ndcg10 ?? 0).toFixed(4)}, co-occurrence ${(recommend.moreBaselines?.[0]?.values.ndcg10 ?? 0).toFixed(4)})`] : []),
    ...(design !== undefined ? [`design category ${pct(design.metrics.categoryAccuracy)}%, colour ${pct(design.metrics.colourAccuracy)}% (classifier's own: ${pct(design.metrics.classifierCategoryAccuracy)}% / ${pct(design.metrics.classifierColourAccuracy)}%; on VQ reconstructions: ${pct(design.metrics.vqCeilingCategoryAccuracy)}% / ${pct(design.metrics.vqCeilingColourAccuracy)}%), Fréchet ${(design.metrics.frechetDistance ?? NaN).toFixed(2)} (real floor ${(design.baselines.frechetDistance ?? NaN).toFixed(2)})`] : []),
    ...(pixelDescribe !== undefined ? [`nearest-thumbnail describe: category ${pct(pixelDescribe.categoryAccuracy)}%, colour ${pct(pixelDescribe.colourAccuracy)}%, CIDEr-D ${pixelDescribe.ciderD.toFixed(3)}`] : []),
    ...(pixelSearch !== undefined ? [`pixel search recall@10 ${pct(pixelSearch.textToImage['recall@10'])}%`] : []),
  ].join('; ');
}
