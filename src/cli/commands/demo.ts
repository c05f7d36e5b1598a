// `m6 demo`: the README's quick start. Synthesise the garment catalog, train m6-nano on describe,
// answer, embed, design and recommend, judge the held-out test products — descriptions and answers
// against the catalog's exact truth, search by recall@k, designs by an attribute classifier, each
// beside its baselines and for seen and novel attribute combinations apart — and write report.html
// and demo-results.json into the run folder, all within --minutes (the budget of the whole demo).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { DatasetSpec } from '../../data/datasetSpec.js';
import type { DesignEvaluation } from '../../eval/designEval.js';
import type { TaskEvaluation } from '../../eval/evaluation.js';
import type { Pipeline } from '../../pipelines/index.js';
import type { CatalogIndex } from '../../search/index.js';
import type { EmbedEvalResult } from '../../eval/embedEval.js';
import type { PixelSearchResult } from '../../eval/pixelBaselines.js';
import type { CatalogItem, NearestDescribeResult, Share, SyntheticEvalResult } from '../../eval/syntheticEval.js';
import { formatDuration, ProgressLine } from '../../train/progress.js';
import type { RunTrainingResult } from '../../train/runTraining.js';
import { parseTaskList, type TaskRequest } from '../../tasks/taskData.js';
import { RENDER_VERSION } from '../../data/synth/attributes.js';
import { CATALOG_VERSION, NOVEL_COMPOSITION_SHARE, SEEN_SPLIT } from '../../data/synth/compositions.js';
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
  holdout: string;
}

const DEMO_TASK_NAMES = new Set(['describe', 'answer', 'embed', 'design', 'recommend']);
/**
 * The demo's mixture. With the loss averaged per row a task's weight is its share of the objective
 * (the README says why answer weighs half). Recommend is not in it: on the demo's 10,000 products
 * and 1,000 shoppers it cost 30% of the steps and learnt nothing measurable in the budget (NDCG@10
 * 0.0005, popularity 0.0003); `--tasks …,recommend:0.5` trains it.
 */
const DEMO_TASKS = 'describe,answer:0.5,embed,design';

/**
 * How the demo's --minutes are shared: the VQ stage may take up to VQ_SHARE of them, training runs
 * until EVAL_SHARE are left, and the evaluation (with the index) is sized to what is left then.
 */
const VQ_SHARE = 0.2;
const EVAL_SHARE = 0.2;

/**
 * What the evaluation costs whatever the item count, in seconds per unit, on a 2-core Xeon
 * (2026-12; about twice what a quiet one took, five times less than one shared with two other
 * jobs): the design judge's training per step, the pixel baselines and the catalog index per
 * product, the search benchmark per item. They set the reserve before training; the items judged
 * are then sized from this machine's own probe (itemsThatFit).
 */
const FIXED_COST = { judgeStep: 0.08, pixelPerProduct: 0.004, indexPerProduct: 0.008, searchPerItem: 0.03 };

/** The catalog the budget affords: 10,000 products from 20 minutes up, fewer below (the index, the pixel baselines and the judge's images grow with it). */
export function catalogSizeFor(minutes: number): number {
  return Math.max(1000, Math.min(10_000, 500 * Math.round(minutes)));  // 500 products per minute of budget
}

/** The design judge's training steps: 1,000 from 20 minutes up, fewer below (its own held-out accuracy is reported beside every design figure). */
export function judgeStepsFor(minutes: number): number {
  return Math.max(200, Math.min(1000, Math.round((minutes / 20) * 1000)));
}

/** The demo's settings, checked. */
interface DemoPlan {
  out: string;
  quick: boolean;
  /** The whole demo's budget, from its start. */
  minutes: number;
  startedAt: number;
  /** Training steps of the design judge (the attribute classifier) when it is not cached beside the catalog. */
  judgeSteps: number;
  n: number;
  seed: number;
  evalItems: number;
  bf16: boolean;
  tasks: TaskRequest[];
  /** The held-out split judged: test for the figures reported, val for choosing settings. */
  holdout: 'val' | 'test';
  flags: DemoFlags;
}

interface DemoEvaluation {
  synthetic: SyntheticEvalResult;
  /** Answer's baseline: each question's commonest training answer, never looking at the image. */
  answerPrior?: number;
  retrieval?: EmbedEvalResult;
  design?: DesignEvaluation;
  /** The held-out titles searched in a catalog index of the held-out images (m6 eval --tasks search): recall, nDCG@10, ANN recall. */
  search?: TaskEvaluation;
  /** Next-item recommendation on each shopper's last item, full ranking, beside popularity and co-occurrence. */
  recommend?: TaskEvaluation;
  /** Pixel baselines (pixelBaselines.ts): describe by the nearest training thumbnail's caption; search by the mean thumbnail of the title's training products. */
  pixelDescribe?: NearestDescribeResult;
  pixelSearch?: PixelSearchResult;
  /** The same figures for the held-out products of seen and of novel compositions (category × colour × pattern). */
  compositions: Record<string, CompositionFigures>;
}

/** One part's figures (seen or novel compositions): shares with their item counts. */
interface CompositionFigures {
  describeCategory: Share;
  describeColour: Share;
  answer?: Share;
  answerPrior?: number;
  designCategory?: Share;
  designColour?: Share;
  textToImageRecall10?: Share;
  /** The baselines of the same items: the nearest training thumbnail's caption, and the pixel search. */
  pixelDescribeCategory?: Share;
  pixelDescribeColour?: Share;
  pixelTextToImageRecall10?: Share;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('synthesise a catalog, train m6-nano on it for a bounded time, evaluate on held-out items, write report.html')
    .option('--out <dir>', 'demo folder (catalog/ and run/; run/ is replaced)', 'runs/demo')
    .option('--minutes <m>', `time budget of the whole demo: catalog, VQ stage (up to ${VQ_SHARE * 100}%), training, then evaluation and index (sized to the last ${EVAL_SHARE * 100}%)`, '25')
    .option('--quick', 'a 3-minute run on a smaller catalog (a smoke test of the whole path, not of accuracy)')
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
    .option('--tasks <list>', 'tasks and mixture weights to train from describe, answer, embed, design, recommend (each trained task is evaluated); @share: the share of the training time before the task joins', DEMO_TASKS)
    .addOption(new Option('--holdout <split>', 'the held-out products judged: test (the figures to report) or val (to choose settings on: compare runs there, never on test)').choices(['test', 'val']).default('test'))
    .action(async (flags: DemoFlags) => {
      const plan = await demoPlan(flags);
      const progress = new ProgressLine(process.stderr, 15_000);
      const log = (m: string) => progress.log(m);
      const catalogDir = await prepareCatalog(plan, log);
      const runDir = join(plan.out, 'run');
      // The catalog's own split: train / val / test, with whole attribute combinations held out (compositions.ts).
      const data = datasetSpecFromFlags({ data: join(catalogDir, 'dataset.json') });
      const result = await trainDemo(plan, { runDir, catalogDir, data }, progress);
      log(result.message);
      if (result.checkpoint === undefined) {
        log('no checkpoint was written: nothing to evaluate');
        process.exitCode = 1;
        return;
      }
      const evaluation = await evaluateDemo(plan, { runDir, catalogDir, data, result, log });
      const reportFile = await writeDemoReport(plan, { runDir, catalogDir, result, evaluation });
      console.log(`${demoSummary(evaluation)}\n${compositionSummary(evaluation.compositions)}\nreport: ${reportFile}`);
      if (trains(plan, 'embed')) await demoSearch(plan, runDir, result, (m) => progress.log(m));
      // The next step: put the run and its index behind the API and open the playground.
      const index = trains(plan, 'embed') ? ` --index ${join(runDir, 'index')}` : '';
      console.log(`serve it: m6 serve --run ${runDir}${index}   (then open http://127.0.0.1:8080/ for the playground, with held-out examples to try; /docs for the API)`);
      log(`the demo took ${formatDuration((Date.now() - plan.startedAt) / 1000)} of its ${plan.minutes}-minute budget`);
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
  const minutes = quick && flags.minutes === '25' ? 3 : numberFlag('--minutes', flags.minutes, { positive: true });
  return {
    out: resolve(flags.out), quick, tasks, flags, holdout: flags.holdout === 'val' ? 'val' : 'test', startedAt: Date.now(),
    minutes,
    judgeSteps: quick ? 200 : judgeStepsFor(minutes),
    n: numberFlag('--n', flags.n ?? String(quick ? 400 : catalogSizeFor(minutes)), { integer: true, min: 20 }),
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
  const wanted = JSON.stringify({ n: plan.n, seed: plan.seed, size: 64, render: RENDER_VERSION, catalog: CATALOG_VERSION });
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

/** m6-nano on the catalog, into a fresh OUT/run, until the budget's evaluation share is left. */
async function trainDemo(plan: DemoPlan, r: { runDir: string; catalogDir: string; data: DatasetSpec }, progress: ProgressLine): Promise<RunTrainingResult> {
  const { flags, quick, bf16 } = plan;
  const { runDir, data } = r;
  rmSync(runDir, { recursive: true, force: true });
  const reserve = await evaluationReserve(plan, r.catalogDir);
  const trainUntil = plan.startedAt + plan.minutes * 60_000 - 1000 * reserve;
  progress.log(`training m6-nano until ${new Date(trainUntil).toTimeString().slice(0, 8)} (${formatDuration((trainUntil - Date.now()) / 1000)} from now, its VQ stage first; ${formatDuration(reserve)} kept for the evaluation)${bf16 ? ' in bf16 autocast' : ' in fp32'}; Ctrl-C stops early and still evaluates`);
  return runWithInterrupt({
    runDir, data, tasks: plan.tasks, preset: 'm6-nano', overrides: {}, trainUntil,
    vq: { bf16, steps: flags.vqSteps !== undefined ? numberFlag('--vq-steps', flags.vqSteps, { integer: true, min: 1 }) : quick ? 150 : DEFAULT_VQ_STEPS, seconds: VQ_SHARE * plan.minutes * 60 },
    vocab: 2000, log: (m) => progress.log(m), progress,
    loop: {
      steps: null, minutes: plan.minutes, batchSize: numberFlag('--batch-size', flags.batchSize, { integer: true, min: 1 }), gradAccum: 1,
      lr: numberFlag('--lr', flags.lr, { positive: true }), warmup: quick ? 10 : 50, minLrRatio: 0.05, weightDecay: 0.01, clipNorm: 1,
      bf16, seed: plan.seed, evalEvery: quick ? 25 : 500, evalBatches: 4, saveEvery: 200, keepCheckpoints: 2, maxNonFinite: 20, augment: flags.augment, lossMean: flags.lossMean,
    },
  });
}

/**
 * Seconds kept for the evaluation: its share of the budget, or what its fixed costs need where that
 * is more (a cold design judge, the index and pixel baselines of a large catalog), at most half the budget.
 */
async function evaluationReserve(plan: DemoPlan, catalogDir: string): Promise<number> {
  const fixed = await fixedEvaluationSeconds(plan, catalogDir, { index: FIXED_COST.indexPerProduct, search: FIXED_COST.searchPerItem });
  const items = 100 * 0.5;  // at least ~100 products described, questioned and designed
  return Math.min(0.5 * plan.minutes * 60, Math.max(EVAL_SHARE * plan.minutes * 60, fixed + items));
}

/** The evaluation's costs that do not grow with the items judged, in seconds: the judge's training unless cached, the pixel baselines, the index, the search benchmark. */
async function fixedEvaluationSeconds(plan: DemoPlan, catalogDir: string, perItem: { index: number; search: number }): Promise<number> {
  const { CLASSIFIER_FILE } = await import('../../eval/designEval.js');
  const judge = trains(plan, 'design') && !existsSync(join(catalogDir, CLASSIFIER_FILE)) ? plan.judgeSteps * FIXED_COST.judgeStep : 0;
  // Held-out products embedded twice: the embed benchmark and the search evaluation's index.
  const embeds = trains(plan, 'embed') ? plan.n * perItem.index + 2 * Math.min(1000, 0.16 * plan.n) * perItem.search : 0;
  return judge + FIXED_COST.pixelPerProduct * plan.n + embeds;
}

/** Judges the trained run on the held-out products of --holdout: describe and answer, search (embed), design, recommend; each also by composition. */
async function evaluateDemo(plan: DemoPlan, r: { runDir: string; catalogDir: string; data: DatasetSpec; result: RunTrainingResult; log: (m: string) => void }): Promise<DemoEvaluation> {
  const { catalogPixelRows, evaluateSynthetic, nearestNeighbourDescribe, readCatalog } = await import('../../eval/syntheticEval.js');
  const catalog = readCatalog(join(r.catalogDir, 'catalog.jsonl'));
  const heldOutAll = r.result.data.rows.filter((row) => row.split === plan.holdout).map((row) => catalog.get(row.id)).filter((x) => x !== undefined);
  using pipeline = await openPipeline(r.runDir);
  const searchItems = trains(plan, 'embed') ? Math.min(1000, heldOutAll.length) : 0;
  const fit = await itemsThatFit(plan, pipeline, heldOutAll, r.catalogDir);
  const heldOut = heldOutAll.slice(0, fit.items);
  const novel = heldOut.filter((it) => it.composition === 'novel').length;
  r.log(`evaluating on ${heldOut.length} ${plan.holdout === 'val' ? 'validation' : 'test'} products (${heldOut.length - novel} of seen compositions, ${novel} novel; ${fit.why})…`);
  const maxQuestions = plan.quick ? 120 : 1000;
  const out: DemoEvaluation = {
    synthetic: await evaluateSynthetic(pipeline, heldOut, r.catalogDir, { maxQuestions, withAnswers: trains(plan, 'answer'), log: r.log }),
    compositions: {},
  };
  // The pixel baselines look at the training products' 16×16 thumbnails, loaded once for both.
  const { loadPixelCorpus, pixelSearchBaseline } = await import('../../eval/pixelBaselines.js');
  const trainPixels = await loadPixelCorpus(catalogPixelRows(r.result.data.rows.filter((row) => row.split === 'train').map((row) => catalog.get(row.id)).filter((x) => x !== undefined), r.catalogDir));
  out.pixelDescribe = await nearestNeighbourDescribe(trainPixels, heldOut, r.catalogDir);
  if (out.synthetic.answer !== null) out.answerPrior = await answerPrior(r.result, out.synthetic.answer.items);
  if (trains(plan, 'embed')) {
    const { evaluateEmbed } = await import('../../eval/embedEval.js');
    // Search over every held-out product (up to 1000): a title finds the images with its attributes.
    const searched = heldOutAll.slice(0, searchItems)
      .map((it) => ({ id: it.id, image: join(r.catalogDir, it.image), text: it.title, group: `${it.category}|${it.colour}|${it.pattern ?? ''}`, ...(it.composition !== undefined ? { part: it.composition } : {}) }));
    out.retrieval = await evaluateEmbed(pipeline, searched);
    out.pixelSearch = await pixelSearchBaseline(trainPixels, searched);
  }
  const judged = await evaluateDemoRuns({ ...plan, evalItems: heldOut.length }, pipeline, r);
  if (judged.design !== undefined) out.design = judged.design;
  if (judged.search !== undefined) out.search = judged.search;
  if (judged.recommend !== undefined) out.recommend = judged.recommend;
  out.compositions = await compositionFigures(out, catalog, r.result);
  return out;
}

/** Design (one image per held-out title, judged by a classifier trained on the real catalog images) and recommend, through evaluateRun. */
async function evaluateDemoRuns(plan: DemoPlan, pipeline: Pipeline, r: { catalogDir: string; data: DatasetSpec; result: RunTrainingResult; log: (m: string) => void }): Promise<{ design?: DesignEvaluation; search?: TaskEvaluation; recommend?: TaskEvaluation }> {
  const { evaluateRun } = await import('../../eval/evaluation.js');
  const out: { design?: DesignEvaluation; search?: TaskEvaluation; recommend?: TaskEvaluation } = {};
  const common = { pipeline, spec: r.data, data: r.result.data, holdout: plan.holdout, log: r.log };
  if (trains(plan, 'design')) {
    const { evaluateDesign } = await import('../../eval/designEval.js');
    // The design judge learns from the catalog's images alone: cached beside the catalog, a second demo reuses it.
    const judge = { classifierDir: r.catalogDir, classifierSteps: plan.judgeSteps };
    const report = await evaluateRun({ ...common, tasks: ['design'], limit: plan.evalItems, evaluators: { design: async () => (ctx) => evaluateDesign(ctx, judge) } });
    const design = report.tasks.find((t): t is DesignEvaluation => t.task === 'design');
    if (design !== undefined) out.design = design;
    for (const sk of report.skipped) r.log(`design evaluation skipped: ${sk.reason}`);
  }
  if (trains(plan, 'embed')) {
    const { evaluateSearch } = await import('../../eval/searchEval.js');
    // Over the same held-out products as the embed benchmark (up to 1000), through a LanceDB index.
    const report = await evaluateRun({ ...common, tasks: ['search'], limit: 1000, evaluators: { search: async () => (ctx) => evaluateSearch(ctx) } });
    const search = report.tasks.find((t) => t.task === 'search');
    if (search !== undefined) out.search = search;
    for (const sk of report.skipped) r.log(`search evaluation skipped: ${sk.reason}`);
  }
  if (trains(plan, 'recommend')) {
    const { evaluateRecommend } = await import('../../eval/recommendEval.js');
    const report = await evaluateRun({ ...common, tasks: ['recommend'], evaluators: { recommend: async () => (ctx) => evaluateRecommend(ctx, { holdout: plan.holdout }) } });
    const recommend = report.tasks.find((t) => t.task === 'recommend');
    if (recommend !== undefined) out.recommend = recommend;
    for (const sk of report.skipped) r.log(`recommend evaluation skipped: ${sk.reason}`);
  }
  return out;
}

/**
 * How many held-out products the evaluation can judge in the budget left (at most --eval-items):
 * a short probe times describe, answer, design and embed per item on this machine, then the items
 * that fit after the fixed costs (the search benchmark, the catalog index, the design judge's training).
 */
async function itemsThatFit(plan: DemoPlan, pipeline: Pipeline, heldOut: readonly CatalogItem[], imageRoot: string): Promise<{ items: number; why: string }> {
  const probe = heldOut.slice(0, Math.min(8, heldOut.length));
  if (probe.length === 0) return { items: 0, why: 'none held out' };
  // Each timed twice, the faster kept: a first call pays one-off costs (allocations, caches) that the evaluation's thousands do not.
  const time = async (f: () => Promise<unknown>, n: number) => {
    let best = Infinity;
    for (let k = 0; k < 2; k++) { const t = Date.now(); await f(); best = Math.min(best, (Date.now() - t) / 1000 / n); }
    return best;
  };
  const images = probe.map((it) => join(imageRoot, it.image));
  const describe = await time(() => pipeline.describe(images), probe.length);
  const questions = probe.flatMap((it) => it.qa.slice(0, 1).map((q) => ({ question: q.question, image: join(imageRoot, it.image) })));
  const answer = trains(plan, 'answer') && questions.length > 0 ? await time(() => pipeline.answer(questions), questions.length) : 0;
  const design = trains(plan, 'design') ? await time(() => pipeline.design(probe.slice(0, 2).map((it) => it.title)), 2) : 0;
  // Embeddings batch well: timed on 32 images (an image and a text per item).
  const embedProbe = heldOut.slice(0, 32).map((it) => join(imageRoot, it.image));
  const embed = trains(plan, 'embed') ? await time(() => pipeline.embed({ images: embedProbe }), embedProbe.length) * 2 : 0;
  const perQuestionItem = heldOut.reduce((a, it) => a + it.qa.length, 0) / heldOut.length;
  const questionsFor = (n: number) => Math.min(plan.quick ? 120 : 1000, n * perQuestionItem);
  // The index and the search benchmark embed an image and a text per product.
  const fixed = await fixedEvaluationSeconds(plan, imageRoot, { index: embed, search: embed });
  const left = (plan.startedAt + plan.minutes * 60_000 - Date.now()) / 1000;
  const cost = (n: number) => n * (describe + design) + questionsFor(n) * answer + fixed;
  let n = Math.min(plan.evalItems, heldOut.length);
  while (n > 50 && cost(n) > left) n = Math.floor(n * 0.9);
  const rates = `per item: describe ${describe.toFixed(2)} s, answer ${answer.toFixed(2)} s, design ${design.toFixed(2)} s, embed ${embed.toFixed(3)} s`;
  return { items: n, why: `${formatDuration(cost(n))} estimated of the ${formatDuration(left)} left (${rates})` };
}

/** Answer's baseline on the questions asked: each question's commonest training answer, never looking at the image. */
async function answerPrior(result: RunTrainingResult, asked: ReadonlyArray<{ question: string; truth: string }>): Promise<number> {
  const { noImagePrior } = await import('../../eval/answerEval.js');
  const train = (result.data.train.find((t) => t.name === 'answer')?.examples ?? []).map((e) => ({ question: e.source!, answer: e.target! }));
  return noImagePrior(train, asked.map((a) => ({ question: a.question, reference: a.truth })));
}

/** Every figure again for the held-out products of seen and of novel compositions. */
async function compositionFigures(e: DemoEvaluation, catalog: ReadonlyMap<string, CatalogItem>, result: RunTrainingResult): Promise<Record<string, CompositionFigures>> {
  const { sharesByPart } = await import('../../eval/syntheticEval.js');
  const partOf = (x: { id: string }) => catalog.get(x.id)?.composition;
  const d = e.synthetic.describe.items;
  const category = sharesByPart(d, partOf, (x) => x.categoryOk), colour = sharesByPart(d, partOf, (x) => x.colourOk);
  const answers = e.synthetic.answer?.items ?? [];
  const answer = sharesByPart(answers, partOf, (x) => x.ok);
  const design = e.design?.items ?? [];
  const designCategory = sharesByPart(design, partOf, (x) => x.ok.category === true), designColour = sharesByPart(design, partOf, (x) => x.ok.colour === true);
  const pixel = e.pixelDescribe?.judgements ?? [];
  const pixelCategory = sharesByPart(pixel, partOf, (x) => x.categoryOk), pixelColour = sharesByPart(pixel, partOf, (x) => x.colourOk);
  const out: Record<string, CompositionFigures> = {};
  for (const part of Object.keys(category)) {
    const f: CompositionFigures = { describeCategory: category[part]!, describeColour: colour[part]! };
    if (answer[part] !== undefined) {
      f.answer = answer[part];
      f.answerPrior = await answerPrior(result, answers.filter((a) => partOf(a) === part));
    }
    if (designCategory[part] !== undefined) { f.designCategory = designCategory[part]; f.designColour = designColour[part]!; }
    const search = e.retrieval?.byPart?.[part];
    if (search !== undefined) f.textToImageRecall10 = { share: search.textToImage['recall@10'] ?? 0, items: search.queries };
    if (pixelCategory[part] !== undefined) { f.pixelDescribeCategory = pixelCategory[part]; f.pixelDescribeColour = pixelColour[part]!; }
    const pixelSearch = e.pixelSearch?.byPart?.[part];
    if (pixelSearch !== undefined) f.pixelTextToImageRecall10 = { share: pixelSearch.textToImage['recall@10'] ?? 0, items: pixelSearch.queries };
    out[part] = f;
  }
  return out;
}

/** report.html and demo-results.json in the run folder; returns the report's path. */
async function writeDemoReport(plan: DemoPlan, r: { runDir: string; catalogDir: string; result: RunTrainingResult; evaluation: DemoEvaluation }): Promise<string> {
  const { readMetrics } = await import('../../train/metrics.js');
  const { writeReport } = await import('../../eval/report.js');
  const { result, evaluation: { synthetic, retrieval, design, search, recommend } } = r;
  const { flags, bf16, minutes, n } = plan;
  const d = synthetic.describe;
  const reportFile = join(r.runDir, 'report.html');
  writeReport({
    file: reportFile, catalogDir: r.catalogDir, title: 'm6 demo: m6-nano on the synthetic catalog', metrics: readMetrics(join(r.runDir, 'metrics.jsonl')), evaluation: synthetic, ...(retrieval !== undefined ? { retrieval } : {}), ...(search !== undefined ? { search } : {}), ...(design !== undefined ? { design } : {}),
    facts: [
      ['model', `${result.config.name}: ${result.config.layers} layers × ${result.config.dim}, images ${result.config.imageSize}px, vocabulary ${result.config.vocabSize}`],
      ['data', `${n} synthetic products: ${Math.round(NOVEL_COMPOSITION_SHARE * 100)}% of the category × colour × pattern combinations held out whole (val and test), the rest ${SEEN_SPLIT.train * 100}% train / ${SEEN_SPLIT.val * 100}% val / ${SEEN_SPLIT.test * 100}% test; judged on ${plan.holdout === 'val' ? 'validation' : 'test'}; tasks ${plan.tasks.map((t) => t.name).join(' + ')}${flags.augment ? '; random crops and flips' : ''}; loss averaged over ${flags.lossMean}`],
      ['steps', `${result.step} in ${minutes} min budget (${result.stepsPerSecond.toFixed(2)} steps/s, ${Math.round(result.tokensPerSecond)} positions/s${bf16 ? ', bf16' : ', fp32'})`],
      ['loss', `${result.firstLoss.toFixed(3)} → ${result.finalLoss.toFixed(3)}`],
      ['checkpoint', result.checkpoint ?? ''],
      ['evaluation time', formatDuration(synthetic.seconds)],
    ],
  });
  writeFileSync(join(r.runDir, 'demo-results.json'), JSON.stringify({
    holdout: plan.holdout, compositions: r.evaluation.compositions,
    steps: result.step, stepsPerSecond: result.stepsPerSecond, augment: flags.augment, lossMean: flags.lossMean, firstLoss: result.firstLoss, finalLoss: result.finalLoss, bf16, minutes, products: n, tasks: flags.tasks,
    describe: { categoryAccuracy: d.categoryAccuracy, colourAccuracy: d.colourAccuracy, bleu4: d.bleu4, rougeL: d.rougeL, ciderD: d.ciderD, categoryBaseline: d.categoryBaseline, colourBaseline: d.colourBaseline, items: d.items.length },
    answer: synthetic.answer ? { exactMatch: synthetic.answer.exactMatch, noImagePrior: r.evaluation.answerPrior, questions: synthetic.answer.items.length } : null,
    design: design !== undefined ? { items: design.evaluated, metrics: design.metrics, baselines: design.baselines } : null,
    recommend: recommend !== undefined ? { shoppers: recommend.evaluated, metrics: recommend.metrics, baselines: { [recommend.baselineName ?? 'baseline']: recommend.baselines, ...Object.fromEntries((recommend.moreBaselines ?? []).map((b) => [b.name, b.values])) } } : null,
    search: search !== undefined ? { items: search.evaluated, metrics: search.metrics, baselines: search.baselines, notes: search.notes } : null,
    embed: retrieval === undefined ? null : { items: retrieval.items, textToImage: retrieval.textToImage, imageToText: retrieval.imageToText, chanceTextToImage: retrieval.chanceTextToImage, chanceImageToText: retrieval.chanceImageToText },
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
    let said = Date.now();
    const onProgress = (p: { done: number; total: number }) => { if (Date.now() - said >= 30_000) { said = Date.now(); log(`indexing: ${p.done}/${p.total} products (${formatDuration((said - started) / 1000)})`); } };
    const r = await indexCatalog(pipeline, result.data.rows, index, { onExisting: 'skip', batchSize: 1024, onProgress });
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

/** Seen against novel compositions, figure by figure: "seen / novel compositions: describe category 97.1% / 95.0% (n 540 / 460); …". */
function compositionSummary(parts: Record<string, CompositionFigures>): string {
  const seen = parts.seen, novel = parts.novel;
  if (seen === undefined || novel === undefined) return 'seen / novel compositions: the held-out products do not have both';
  const pct = (x: Share | undefined) => (x === undefined ? '—' : `${(100 * x.share).toFixed(1)}%`);
  const pair = (name: string, a: Share | undefined, b: Share | undefined) => (a === undefined && b === undefined ? [] : [`${name} ${pct(a)} / ${pct(b)}`]);
  return `seen / novel compositions (${seen.describeCategory.items} / ${novel.describeCategory.items} products): ${[
    ...pair('describe category', seen.describeCategory, novel.describeCategory),
    ...pair('(pixel neighbour', seen.pixelDescribeCategory, novel.pixelDescribeCategory).map((x) => `${x})`),
    ...pair('colour', seen.describeColour, novel.describeColour),
    ...pair('(pixel neighbour', seen.pixelDescribeColour, novel.pixelDescribeColour).map((x) => `${x})`),
    ...pair('answer', seen.answer, novel.answer),
    ...(seen.answerPrior !== undefined && novel.answerPrior !== undefined ? [`(no-image prior ${(100 * seen.answerPrior).toFixed(1)}% / ${(100 * novel.answerPrior).toFixed(1)}%)`] : []),
    ...pair('design category', seen.designCategory, novel.designCategory),
    ...pair('design colour', seen.designColour, novel.designColour),
    ...pair('text→image recall@10', seen.textToImageRecall10, novel.textToImageRecall10),
    ...pair('(pixel search', seen.pixelTextToImageRecall10, novel.pixelTextToImageRecall10).map((x) => `${x})`),
  ].join('; ')}`;
}
