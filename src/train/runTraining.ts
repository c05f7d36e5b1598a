// A whole training run from validated options: data → task examples → tokenizer (trained on the
// tasks' text unless one is given) → config → model → the loop, with resume from a checkpoint.
// `m6 train` parses flags into RunTrainingOptions and `m6 demo` builds them in code; both end here.
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../io/index.js';
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import type { DatasetSpec } from '../data/datasetSpec.js';
import { Tokenizer } from '../data/tokenizer.js';
import { M6Model, preset, type M6Config } from '../model/index.js';
import { buildTaskData, packAnswerPairs, taskTexts, validationSets, type TaskData, type TaskRequest } from '../tasks/taskData.js';
import { encodePairs, packFits, type TaskSource } from '../data/loader.js';
import { ITEM_ID_DROPOUT, ITEM_TITLE_TOKENS, ITEMS_FILE, itemTitleTokens, type RecommendData } from '../tasks/recommendData.js';
import { ItemVocabulary } from '../data/itemVocabulary.js';
import { checkCheckpoint, loadCheckpointWeights, newestCompleteCheckpoint, readCheckpointTensors, readRunJson } from './checkpoint.js';
import { ProgressLine } from './progress.js';
import { textLimits, train, type TrainOptions, type TrainResult } from './trainer.js';
import { DEFAULT_LOSS_MEAN } from './lossMean.js';
import { designVqStage, type VqStageOptions } from './vqStage.js';
import { InputError } from '../torch/inputError.js';
import type { ProcessGroup } from '../distributed/index.js';
import { extendRunSplit, readRunSplit, setDigest, SPLIT_FILE, writeRunSplit, type RunSplit } from './runSplit.js';

export interface RunTrainingOptions {
  runDir: string;
  data: DatasetSpec;
  tasks: TaskRequest[];
  preset: string;
  /** Config fields over the preset (from --config FILE). */
  overrides: Partial<M6Config>;
  /** A tokenizer.json to reuse; otherwise one is trained on the tasks' text. */
  tokenizerFile?: string;
  /** Text vocabulary of a freshly trained tokenizer (specials + bytes + merges). */
  vocab: number;
  /** A checkpoint folder to continue from. */
  resumeFrom?: string;
  /** resumeFrom is the run's newest checkpoint, not one the user named: when it is damaged, continue from the newest complete one. */
  resumeFallback?: boolean;
  /** The VQ image tokenizer stage: run when design is trained or `requested` (--tasks vq). */
  vq?: Partial<VqStageOptions> & { requested?: boolean };
  loop: Omit<TrainOptions, 'runDir' | 'model' | 'tokenizer' | 'tasks' | 'evalTasks' | 'resume' | 'progress'>;
  /** Where messages go (skipped tasks, what was built). */
  log: (message: string) => void;
  progress?: ProgressLine;
  /**
   * Train until this moment (ms since the epoch) instead of for `loop.minutes`: the time budget is
   * what is left when the loop starts, after the data, the tokenizer and the VQ stage took theirs.
   */
  trainUntil?: number;
}

export class TrainingSetupError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingSetupError';
  }
}

export interface RunTrainingResult extends TrainResult {
  data: TaskData;
  config: M6Config;
}

/** A resumed run keeps the split it started with, and adds the training rows of data that now splits otherwise (it trains on them from here). */
function checkResumedSplit(o: RunTrainingOptions, data: TaskData): void {
  const recorded = readRunSplit(o.runDir);
  if (recorded === undefined) {
    o.log(`warning: ${o.runDir} records no split (${SPLIT_FILE}: trained before runs recorded one); m6 eval cannot check it for training rows`);
    return;
  }
  const added = extendRunSplit(o.runDir, recorded, data.rows);
  if (added > 0) o.log(`warning: ${added} training rows of the data are new to this run; ${join(o.runDir, SPLIT_FILE)} now counts them as trained on`);
}

/** The tokenizer of a new run: the --tokenizer file (with m6's tokens added to a foreign one), or one trained on the training rows' texts. */
async function freshTokenizer(o: RunTrainingOptions, data: TaskData, imageCodes: number): Promise<{ tokenizer: Tokenizer; learnt: RunSplit['tokenizer'] }> {
  if (o.tokenizerFile !== undefined) {
    const loaded = await Tokenizer.load(o.tokenizerFile);
    // A foreign file (Llama-3, Qwen…) lacks what the model needs: m6's specials, task tokens and
    // image codes join it as added tokens, and the run's tokenizer.json is that file plus them.
    if (loaded.hasModelTokens) return { tokenizer: loaded, learnt: { file: o.tokenizerFile } };
    const tokenizer = loaded.withModelTokens({ imageCodes });
    o.log(`${o.tokenizerFile} has no m6 tokens: added ${tokenizer.vocabSize - loaded.vocabSize} (specials, task tokens, ${tokenizer.imageCodes} image codes) after its ${loaded.vocabSize} ids`);
    return { tokenizer, learnt: { file: o.tokenizerFile } };
  }
  const texts = taskTexts(data);
  const started = Date.now();
  const tokenizer = Tokenizer.train(texts, { vocabSize: o.vocab, imageCodes });
  o.log(`trained a tokenizer on ${texts.length} texts of the training rows: ${tokenizer.textVocabSize} text tokens + ${tokenizer.imageCodes} image codes (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  return { tokenizer, learnt: { texts: texts.length, digest: setDigest(texts) } };
}

/** The item table's size in the config of a new run that trains recommend: one row per item, titles when the items have any. */
function itemOverrides(data: TaskData, overrides: Partial<M6Config>): Partial<M6Config> {
  const rd = data.recommend;
  if (rd === undefined) return {};
  const titled = rd.items.titles.some((t) => t !== undefined);
  // The table's size is the data's; how much of a title it keeps and the id dropout may come from --config.
  return { items: rd.items.vocabulary.size, itemTextLen: overrides.itemTextLen ?? (titled ? ITEM_TITLE_TOKENS : 0), itemIdDropout: overrides.itemIdDropout ?? (titled ? ITEM_ID_DROPOUT : 0) };
}

/** A resumed run's items must be the data's: the item table's rows are indexed by them. */
function checkResumedItems(runDir: string, rd: RecommendData): void {
  const file = join(runDir, ITEMS_FILE);
  let saved: ItemVocabulary;
  try {
    saved = ItemVocabulary.fromJSON(readRunJson(file), file);
  } catch (err) {
    throw new TrainingSetupError(`cannot resume recommend training: ${(err as Error).message}`);
  }
  const now = rd.items.vocabulary;
  if (saved.size !== now.size || saved.ids.some((id, i) => now.ids[i] !== id)) {
    throw new TrainingSetupError(`cannot resume recommend training: the data's ${now.size} items differ from the ${saved.size} in ${file} (the item table is indexed by them); start a new run`);
  }
}

/** A new run's item table: titles tokenised into it, and the learnt vectors of cold items zeroed (they are scored by title alone). */
function initItems(model: M6Model, tokenizer: Tokenizer, rd: RecommendData): void {
  const items = model.items!;
  if (model.cfg.itemTextLen > 0) items.setText(itemTitleTokens(tokenizer, rd.items.titles, model.cfg.itemTextLen));
  const cold: number[] = [];
  rd.items.warm.forEach((w, i) => { if (w === 0) cold.push(i); });
  items.clearIds(cold);
}

/**
 * The training mixture as the loader reads it: a packAnswers model trains answer on packs of each
 * product's questions (M6Config.packAnswers); everything else, and the data a run hands back for
 * evaluation, keeps one question per example.
 */
function packedAnswers(train: TaskSource[], config: M6Config, tokenizer: Tokenizer, log: (m: string) => void): TaskSource[] {
  if (!config.packAnswers) return train;
  const limits = textLimits(config);
  return train.map((t) => {
    if (t.name !== 'answer') return t;
    const examples = packAnswerPairs(t.examples, (pairs) => packFits(encodePairs(tokenizer, pairs, limits), limits));
    log(`answer: ${t.examples.length} training questions packed into ${examples.length} rows, one pass over each image for all its questions (packAnswers)`);
    return { ...t, examples };
  });
}

/**
 * Runs `fn` on rank 0 of a data-parallel run, then on the others (which find what rank 0 wrote and
 * reuse it: the VQ image tokenizer, its design codes); in one process, just runs it.
 */
async function leaderFirst<T>(group: ProcessGroup | undefined, fn: () => Promise<T>): Promise<T> {
  if (group === undefined || group.worldSize === 1) return fn();
  const result = group.rank === 0 ? await fn() : undefined;
  await group.barrier();
  return group.rank === 0 ? result! : fn();
}

/**
 * What a resumed run starts from: the checkpoint's tokenizer, config, data order, schedule, optimizer
 * state and weights. `--resume` with no folder named takes the newest complete checkpoint (a damaged
 * newest one is skipped, saying so); a folder the user named is used or refused, never swapped.
 */
async function resumedState(o: RunTrainingOptions, data: TaskData, writes: boolean): Promise<{
  tokenizer: Tokenizer; config: M6Config; loop: RunTrainingOptions['loop']; resume: NonNullable<TrainOptions['resume']> & { dir: string }; weights: Map<string, torch.Tensor>;
}> {
  // A folder the user named is checked as thoroughly as the fallback checks the newest: damage is named before training starts.
  const { dir, meta } = o.resumeFallback === true ? await newestCompleteCheckpoint(o.runDir, o.log) : { dir: o.resumeFrom!, meta: await checkCheckpoint(o.resumeFrom!) };
  const t = meta.trainer;
  // The data order and the schedule are part of the state: a resumed run keeps the checkpoint's.
  const loop = { ...o.loop, seed: t.seed, batchSize: t.batchSize, gradAccum: t.gradAccum, augment: t.augment ?? false, lossMean: t.lossMean ?? DEFAULT_LOSS_MEAN, lr: t.schedule.lr, warmup: t.schedule.warmup, minLrRatio: t.schedule.minLrRatio };
  // Compared as trained: a packAnswers run's answer rows are its packs.
  const now = packedAnswers(data.train, meta.config, meta.tokenizer, () => {}).map((s) => ({ name: s.name, weight: s.weight ?? 1, examples: s.examples.length, ...(s.start !== undefined ? { start: s.start } : {}) }));
  if (JSON.stringify(now) !== JSON.stringify(t.tasks)) {
    o.log(`warning: the tasks/data differ from the checkpoint's (${JSON.stringify(t.tasks)} then, ${JSON.stringify(now)} now): training goes on, but not as an exact continuation`);
  }
  if (writes) checkResumedSplit(o, data);
  if (data.recommend !== undefined) checkResumedItems(o.runDir, data.recommend);
  const tensors = readCheckpointTensors(dir, t);
  o.log(`resuming from ${dir} (step ${t.step})`);
  return { tokenizer: meta.tokenizer, config: meta.config, loop, resume: { trainer: t, optimizer: tensors.optimizer, dir }, weights: tensors.model };
}

/** "800 val, 800 test held out", or "1600 held out" where the data does not say which. */
function heldOutCounts(set: TaskSource): string {
  const val = set.examples.filter((e) => e.heldOut === 'val').length;
  return val === 0 ? `${set.examples.length} held out` : `${val} val, ${set.examples.length - val} test held out`;
}

/** The tasks' examples, with what was skipped and what each task has said in the log; no training data is an error. */
async function readTrainingData(o: RunTrainingOptions): Promise<TaskData> {
  const data = await buildTaskData(o.data, o.tasks);
  for (const line of data.skipped) o.log(line);
  if (data.badRows > 0) o.log(`${data.badRows} bad rows of the dataset were skipped (see m6 data inspect)`);
  if (data.train.length === 0) throw new TrainingSetupError(`no task has training data (asked for ${o.tasks.map((t) => t.name).join(', ')}); see the messages above`);
  o.log(`tasks: ${data.train.map((t, i) => `${t.name} (${t.examples.length} train, ${heldOutCounts(data.eval[i]!)}, weight ${t.weight ?? 1})`).join('; ')}`);
  return data;
}

export async function runTraining(o: RunTrainingOptions): Promise<RunTrainingResult> {
  mkdirSync(o.runDir, { recursive: true });
  // Data parallel: every rank builds the same data, tokenizer and model (all deterministic); rank 0 alone writes the run's files.
  const writes = o.loop.group === undefined || o.loop.group.rank === 0;
  const data = await readTrainingData(o);

  let tokenizer: Tokenizer;
  let config: M6Config;
  let resume: TrainOptions['resume'];
  let loop = o.loop;
  let resumeWeights: Map<string, torch.Tensor> | undefined;
  if (o.resumeFrom !== undefined) {
    ({ tokenizer, config, loop, resume, weights: resumeWeights } = await resumedState(o, data, writes));
  } else {
    const base = preset(o.preset);
    const made = await freshTokenizer(o, data, o.overrides.imageCodes ?? base.imageCodes);
    tokenizer = made.tokenizer;
    const learnt = made.learnt;
    if (writes) {
      const split = writeRunSplit(o.runDir, o.data, data.rows, learnt);
      o.log(`split: ${split.trainRows} training rows, ${split.heldOutRows} held out (recorded in ${join(o.runDir, SPLIT_FILE)})`);
      await tokenizer.save(join(o.runDir, 'tokenizer.json'));
      if (data.recommend !== undefined) writeFileAtomic(join(o.runDir, ITEMS_FILE), JSON.stringify(data.recommend.items.vocabulary.toJSON()) + '\n');
    }
    // The vocabulary is the tokenizer's: the config follows it (one head over text and image codes).
    try {
      config = preset(o.preset, { ...o.overrides, ...itemOverrides(data, o.overrides), vocabSize: tokenizer.vocabSize, imageCodeStart: tokenizer.imageCodeStart, imageCodes: tokenizer.imageCodes });
    } catch (err) {
      throw new TrainingSetupError((err as Error).message);
    }
  }
  if (writes) writeFileAtomic(join(o.runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  // Design's targets are VQ codes: the tokenizer is trained (or loaded) first and the codes attached.
  if (o.vq?.requested === true || data.train.some((t) => t.name === 'design')) {
    const coded = await leaderFirst(o.loop.group, () => designVqStage({ runDir: o.runDir, config, data, stage: o.vq, log: o.log, ...(o.loop.stop !== undefined ? { stop: o.loop.stop } : {}) }));
    data.train = coded.train;
    data.eval = coded.eval;
  }

  const validation = validationSets(data.eval);
  if (validation.note !== undefined) o.log(validation.note);
  torch.manualSeed(loop.seed);
  const model = new M6Model(config);
  const rd = data.recommend;
  // The recommend softmax ranks among items with training interactions (objectives.ts).
  const itemCandidates = rd !== undefined ? torch.keep(torch.tensor(rd.items.warm, { dtype: 'bool' })) : undefined;
  try {
    if (resumeWeights !== undefined) {
      try {
        loadCheckpointWeights(model, resume!.dir!, resumeWeights);
      } finally {
        for (const t of resumeWeights.values()) t.dispose();
      }
    } else if (rd !== undefined) initItems(model, tokenizer, rd);
    o.log(`model ${config.name}: ${(model.numParameters() / 1e6).toFixed(2)}M parameters, ${config.layers} layers × ${config.dim}, images ${config.imageSize}px, vocabulary ${config.vocabSize}`);
    if (config.designPromptDropout > 0 && data.train.some((t) => t.name === 'design')) {
      o.log(`design: ${Math.round(config.designPromptDropout * 100)}% of prompts dropped for the bare instruction, so designs can be sampled with classifier-free guidance (designPromptDropout)`);
    }
    if (o.trainUntil !== undefined) loop = { ...loop, minutes: Math.max(0.05, (o.trainUntil - Date.now()) / 60_000) };
    const result = await train({
      ...loop, runDir: o.runDir, model, tokenizer, tasks: packedAnswers(data.train, config, tokenizer, o.log), evalTasks: validation.sets, ...(itemCandidates !== undefined ? { itemCandidates } : {}),
      ...(resume !== undefined ? { resume } : {}), ...(o.progress !== undefined ? { progress: o.progress } : {}),
    });
    if (resume !== undefined) for (const t of Object.values(resume.optimizer.tensors)) t.dispose();
    return { ...result, data, config };
  } finally {
    itemCandidates?.dispose();
    model.dispose();
  }
}
