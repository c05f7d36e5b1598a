// `m6 train`: train one multitask M6 on a dataset into a run folder (checkpoints, metrics.jsonl,
// tokenizer.json, config.json). Ctrl-C stops after the current step and saves a checkpoint;
// `--resume` continues exactly where a run stopped.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
// Only torch-free modules at the top: every `m6` verb loads this file, and libtorch loads when a
// training command runs (the import()s below), not for `m6 data …`.
import { PRESETS, type M6Config } from '../../model/config.js';
import { parseTaskList } from '../../tasks/taskData.js';
import { latestCheckpoint } from '../../train/checkpointFiles.js';
import { ProgressLine } from '../../train/progress.js';
import { DEFAULT_VQ_STEPS } from '../../train/vqFiles.js';
import { DEFAULT_LOSS_MEAN, LOSS_MEANS, type LossMean } from '../../train/lossMean.js';
import type { RunTrainingOptions, RunTrainingResult } from '../../train/runTraining.js';
import { addDatasetOptions, datasetSpecFromFlags, type DatasetFlags } from '../datasetOptions.js';
import { asUsageError, UsageError } from '../errors.js';
import { fileReadProblem } from '../../torch/inputError.js';
import { numberFlag } from '../flags.js';
import { inDistributedJob, joinTrainingGroup, launchRequested, launchTraining, type LaunchFlags } from '../trainLaunch.js';

export interface TrainFlags extends DatasetFlags, LaunchFlags {
  out: string;
  expertParallel?: boolean;
  profileOps?: string;
  profileShapes?: boolean;
  preset: string;
  config?: string;
  tasks: string;
  steps?: string;
  minutes?: string;
  stopAt?: string;
  batchSize: string;
  gradAccum: string;
  lr: string;
  warmup?: string;
  minLrRatio: string;
  weightDecay: string;
  clipNorm: string;
  bf16?: boolean;
  seed: string;
  evalEvery: string;
  evalBatches: string;
  saveEvery: string;
  keep: string;
  maxNonfinite: string;
  augment?: boolean;
  lossMean: LossMean;
  workers?: string;
  tokenizer?: string;
  vocab: string;
  resume?: string | boolean;
  progressEvery: string;
  debugNonfiniteSteps?: string;
  vq?: string;
  vqSteps: string;
  vqMinutes?: string;
}

/** `--tasks` less the `vq` entry (the image tokenizer is a stage, not a task the model trains on). */
export function splitVqTask(list: string): { tasks: string; vq: boolean } {
  const parts = list.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const vq = parts.filter((p) => p.split(':')[0] === 'vq');
  if (vq.some((p) => p !== 'vq')) throw new UsageError(`--tasks: '${vq.find((p) => p !== 'vq')}': vq is a training stage and takes no weight`);
  return { tasks: parts.filter((p) => p.split(':')[0] !== 'vq').join(','), vq: vq.length > 0 };
}

const CONFIG_KEYS = new Set<string>(Object.keys(PRESETS['m6-nano']!));

/** --config FILE: a JSON object of M6Config fields (and optionally "preset"). */
export function readConfigFile(file: string): { preset?: string; overrides: Partial<M6Config> } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--config ${file} ${fileReadProblem(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`--config ${file}: expected a JSON object of config fields, got ${Array.isArray(json) ? 'an array' : typeof json}`);
  const { preset, ...rest } = json as Record<string, unknown>;
  const unknown = Object.keys(rest).filter((k) => !CONFIG_KEYS.has(k));
  if (unknown.length) throw new UsageError(`--config ${file}: unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')}; fields are: preset, ${[...CONFIG_KEYS].join(', ')}`);
  if (preset !== undefined && typeof preset !== 'string') throw new UsageError(`--config ${file}: "preset" must be a preset name, got ${JSON.stringify(preset)}`);
  // Each field takes the type the presets give it: "layers": "two" is named here, with the file, not later without it.
  const nano = PRESETS['m6-nano']! as unknown as Record<string, unknown>;
  const mistyped = Object.entries(rest).find(([k, v]) => typeof v !== typeof nano[k] || (typeof v === 'number' && !Number.isFinite(v)));
  if (mistyped !== undefined) throw new UsageError(`--config ${file}: "${mistyped[0]}" must be a ${typeof nano[mistyped[0]]}, got ${JSON.stringify(mistyped[1])}`);
  return { ...(preset !== undefined ? { preset } : {}), overrides: rest as Partial<M6Config> };
}

export function addTrainOptions(cmd: Command): Command {
  return addDatasetOptions(cmd)
    .requiredOption('--out <dir>', 'run folder: checkpoints/, metrics.jsonl, tokenizer.json, config.json')
    .option('--preset <name>', `model preset: ${Object.keys(PRESETS).join(', ')}`, 'm6-nano')
    .option('--config <file>', 'JSON of config fields over the preset (may name "preset")')
    .option('--tasks <list>', 'tasks and mixture weights from describe, answer, design, embed, denoise, recommend (shoppers’ next items, from the data’s interactions) (and vq: the image tokenizer alone), e.g. describe:2,answer:1; @share keeps a task out of the mixture for that share of the training (steps, or the --minutes budget), e.g. describe,answer@0.3 (embed takes no rows from the others: its pairs come as a group of --batch-size in every batch, and its weight scales its loss)', 'describe,answer')
    .option('--steps <n>', 'optimizer steps (the schedule\'s length)')
    .option('--minutes <m>', 'wall-clock budget; with no --steps the schedule is fitted to it')
    .option('--stop-at <step>', 'stop with a checkpoint at this step (the schedule still plans for --steps)')
    .option('--batch-size <n>', 'examples per batch: the global batch, split between the ranks of a data-parallel run (so --nproc N gives each rank 1/N of it and trains the same model as one process would)', '16')
    .option('--grad-accum <n>', 'batches per optimizer step', '1')
    .option('--lr <x>', 'peak learning rate', '1e-3')
    .option('--warmup <n>', 'linear warmup steps (default: 5% of --steps, at most 200; 50 with --minutes)')
    .option('--min-lr-ratio <x>', 'cosine decay floor as a fraction of --lr', '0.1')
    .option('--weight-decay <x>', 'AdamW weight decay (matrices only)', '0.01')
    .option('--clip-norm <x>', 'clip gradients to this global norm', '1')
    .option('--bf16', 'bf16 autocast (weights stay fp32)')
    .option('--seed <n>', 'seed of the weights, the data order and dropout', '0')
    .option('--eval-every <n>', 'held-out loss every N steps (0: only at the end)', '0')
    .option('--eval-batches <n>', 'batches per task in each eval', '4')
    .option('--save-every <n>', 'checkpoint every N steps (0: only at the end)', '0')
    .option('--keep <n>', 'checkpoints kept (the newest)', '3')
    .option('--max-nonfinite <n>', 'consecutive NaN/Inf steps that stop the run', '20')
    .option('--augment', 'random resized crops and horizontal flips of training images')
    .addOption(new Option('--loss-mean <how>', "how the generative loss averages: 'tokens' (every target token weighs the same) or 'rows' (every example weighs the same, so each task's share of the loss is its mixture weight)").choices(LOSS_MEANS).default(DEFAULT_LOSS_MEAN))
    .option('--workers <n>', 'image decoding threads (0: main thread; default one fewer than the cores, 1 to 4)')
    .option('--tokenizer <file>', 'reuse this tokenizer.json instead of training one on the data: m6\'s, or any Hugging Face byte-level BPE file (GPT-2, Llama-3, Qwen…), to which m6\'s tokens are added')
    .option('--vocab <n>', 'text vocabulary of the tokenizer trained on the data', '2000')
    .option('--resume [checkpoint]', 'continue from the newest checkpoint in --out (or this checkpoint folder)')
    .option('--progress-every <seconds>', 'progress line interval when stderr is not a terminal', '10')
    .option('--vq <file_or_run>', 'design: use this VQ image tokenizer (a vq.safetensors, or a run folder of --tasks vq) instead of training one')
    .option('--vq-steps <n>', 'steps of the VQ image tokenizer stage (--tasks vq, or design when the run has no VQ yet)', String(DEFAULT_VQ_STEPS))
    .option('--vq-minutes <m>', 'a time budget for the VQ stage: it stops at --vq-steps or this, whichever comes first')
    .addOption(new Option('--debug-nonfinite-steps <steps>', 'tests: make the loss NaN at these steps').hideHelp())
    .option('--nproc <n>', 'data parallel: start N ranks on this host (torchrun-style: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK; the cores split between them); a rank that fails stops the job')
    .option('--nnodes <n>', 'hosts in the job, each running the same command with its --node-rank (default 1)')
    .option('--node-rank <n>', "this host's place among --nnodes (default 0)")
    .option('--master-addr <host>', 'where rank 0 serves the rendezvous (default 127.0.0.1; needed with --nnodes > 1)')
    .option('--master-port <port>', 'its port (default: a free one on one host, 29500 with --nnodes > 1)')
    .option('--expert-parallel', 'with --nproc N: split the experts of every MoE layer over the N ranks (each holds 1/N; tokens travel to their experts by all-to-all); the rest stays data parallel')
    .option('--profile-ops <steps>', 'time these many steps (after 3 of warm-up) op by op inside libtorch: a table by op family (matmul, conv, norms, …; forward and backward) and the time outside libtorch, printed and written to op-profile.json')
    .option('--profile-shapes', 'with --profile-ops: one row per op and input shapes')
    .option('--max-restarts <k>', 'after a failure, restart every rank from the last checkpoint (--resume), up to K times (default 0)');
}

/** Validated flags → what runTraining takes (everything but the log and progress sinks). */
export function trainOptionsFromFlags(flags: TrainFlags, log: (m: string) => void): RunTrainingOptions {
  const int = (name: string, v: string, min = 0) => numberFlag(name, v, { integer: true, min });
  const steps = flags.steps !== undefined ? int('--steps', flags.steps, 1) : null;
  const minutes = flags.minutes !== undefined ? numberFlag('--minutes', flags.minutes, { positive: true }) : null;
  const stages = splitVqTask(flags.tasks);
  const vqOnly = stages.vq && stages.tasks === '';
  if (steps === null && minutes === null && flags.resume === undefined && !vqOnly) throw new UsageError('give --steps N and/or --minutes M: how long to train');
  const {
    out, preset: presetFlag, config, tasks, stopAt, batchSize, gradAccum, lr, warmup, minLrRatio, weightDecay, clipNorm, bf16, seed,
    evalEvery, evalBatches, saveEvery, keep, maxNonfinite, augment, lossMean, workers, tokenizer, vocab, resume, progressEvery: _p, debugNonfiniteSteps,
    steps: _s, minutes: _m, vq, vqSteps, vqMinutes, nproc: _n, nnodes: _nn, nodeRank: _nr, masterAddr: _ma, masterPort: _mp, maxRestarts: _mr, expertParallel, profileOps, profileShapes, ...datasetFlags
  } = flags;
  const fromFile = config !== undefined ? readConfigFile(config) : { overrides: {} };
  const presetName = fromFile.preset ?? presetFlag;
  if (!(presetName in PRESETS)) throw new UsageError(`--preset: unknown preset '${presetName}'; presets are ${Object.keys(PRESETS).join(', ')}`);
  let taskList;
  try {
    taskList = vqOnly ? [] : parseTaskList(stages.tasks);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let resumeFrom: string | undefined;
  const resumeFallback = resume === true;
  if (resume !== undefined && resume !== false) {
    resumeFrom = typeof resume === 'string' ? resume : latestCheckpoint(out);
    if (resumeFrom === undefined) throw new UsageError(`--resume: no checkpoint in ${out}/checkpoints to resume from`);
  } else if (latestCheckpoint(out) !== undefined && !vqOnly) {
    throw new UsageError(`${out} already holds checkpoints (newest ${latestCheckpoint(out)}): pass --resume to continue that run, or choose another --out`);
  }
  const injected = debugNonfiniteSteps !== undefined ? new Set(debugNonfiniteSteps.split(',').map((s) => int('--debug-nonfinite-steps', s))) : undefined;
  return {
    runDir: out,
    data: datasetSpecFromFlags(datasetFlags),
    tasks: taskList,
    preset: presetName,
    overrides: fromFile.overrides,
    ...(tokenizer !== undefined ? { tokenizerFile: tokenizer } : {}),
    vocab: int('--vocab', vocab, 1),
    ...(resumeFrom !== undefined ? { resumeFrom, resumeFallback } : {}),
    vq: {
      requested: stages.vq, steps: int('--vq-steps', vqSteps, 1), seed: int('--seed', seed), bf16: bf16 === true,
      ...(vq !== undefined ? { from: vq } : {}),
      ...(vqMinutes !== undefined ? { seconds: 60 * numberFlag('--vq-minutes', vqMinutes, { positive: true }) } : {}),
    },
    loop: {
      steps, minutes,
      ...(stopAt !== undefined ? { stopAt: int('--stop-at', stopAt, 1) } : {}),
      batchSize: int('--batch-size', batchSize, 1),
      gradAccum: int('--grad-accum', gradAccum, 1),
      lr: numberFlag('--lr', lr, { min: 0 }),
      warmup: warmup !== undefined ? int('--warmup', warmup) : steps !== null ? Math.max(1, Math.min(200, Math.round(0.05 * steps))) : 50,
      minLrRatio: numberFlag('--min-lr-ratio', minLrRatio, { min: 0 }),
      weightDecay: numberFlag('--weight-decay', weightDecay, { min: 0 }),
      clipNorm: numberFlag('--clip-norm', clipNorm, { positive: true }),
      bf16: bf16 === true,
      seed: int('--seed', seed),
      evalEvery: int('--eval-every', evalEvery),
      evalBatches: int('--eval-batches', evalBatches, 1),
      saveEvery: int('--save-every', saveEvery),
      keepCheckpoints: int('--keep', keep, 1),
      maxNonFinite: int('--max-nonfinite', maxNonfinite, 1),
      augment: augment === true,
      lossMean,
      ...(workers !== undefined ? { workers: int('--workers', workers) } : {}),
      ...(injected !== undefined ? { injectNonFinite: injected } : {}),
      ...(expertParallel === true ? { expertParallel: true } : {}),
      ...(profileOps !== undefined ? { profileOps: { steps: int('--profile-ops', profileOps, 1), shapes: profileShapes === true } } : {}),
    },
    log,
  };
}

/**
 * Runs training with Ctrl-C handling: the first SIGINT stops after the current step and saves a
 * checkpoint; a second one quits at once without saving.
 */
export async function runWithInterrupt(options: RunTrainingOptions): Promise<RunTrainingResult> {
  // A rank of a data-parallel job joins its group first; SIGTERM (what a launcher or a scheduler sends) then stops it as Ctrl-C does.
  const group = await joinTrainingGroup();
  const signals: NodeJS.Signals[] = group !== undefined || process.env.M6_LAUNCHED === '1' ? ['SIGINT', 'SIGTERM'] : ['SIGINT'];
  const stop = new AbortController();
  let presses = 0;
  const onSigint = (): void => {
    presses++;
    if (presses === 1) {
      options.progress?.log('m6: stopping after this step and saving a checkpoint (Ctrl-C again to quit without saving)');
      stop.abort();
    } else {
      process.stderr.write('m6: quit without saving\n');
      process.exit(130);
    }
  };
  for (const s of signals) process.on(s, onSigint);
  try {
    const { runTraining } = await import('../../train/runTraining.js');
    return await runTraining({ ...options, loop: { ...options.loop, stop: stop.signal, ...(group !== undefined ? { group } : {}) } });
  } catch (err) {
    // A failed collective (a peer died, a timeout) is the job's failure, not a bug here: one line, exit 1.
    if (group !== undefined && /^ERR_M6_DIST/.test(String((err as { code?: unknown }).code))) throw new UsageError(`rank ${group.rank}: ${(err as Error).message}`, 1);
    throw asUsageError(err);
  } finally {
    for (const s of signals) process.off(s, onSigint);
    await group?.destroy().catch(() => { /* a failed collective tore it down */ });
  }
}

/** `--tasks vq`: the VQ image tokenizer alone, shaped for the model the run will train (Ctrl-C stops it unsaved). */
async function runVqStageOnly(options: RunTrainingOptions): Promise<string> {
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.on('SIGINT', onSigint);
  try {
    const { preset } = await import('../../model/config.js');
    const { runVqOnly } = await import('../../train/vqStage.js');
    let imageCodes = options.overrides.imageCodes ?? PRESETS[options.preset]!.imageCodes;
    if (options.tokenizerFile !== undefined) {
      const { Tokenizer } = await import('../../data/tokenizer.js');
      const tok = await Tokenizer.load(options.tokenizerFile);
      // A foreign file gets the preset's block when training adds m6's tokens (runTraining).
      if (tok.hasModelTokens) imageCodes = tok.imageCodes;
    }
    // Only the image fields matter to the VQ (size, patch grid, codebook, target positions); the text
    // vocabulary is not known until a tokenizer is trained, so the config holds just the image codes.
    const config = preset(options.preset, { ...options.overrides, vocabSize: imageCodes, imageCodeStart: 0, imageCodes });
    const { file, info } = await runVqOnly({ runDir: options.runDir, data: options.data, config, stage: options.vq ?? {}, log: options.log, stop: stop.signal });
    return `VQ image tokenizer: ${file}${info.psnr !== undefined ? ` (${info.psnrOn} PSNR ${info.psnr.toFixed(2)} dB)` : ''}`;
  } catch (err) {
    throw asUsageError(err);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function registerTrain(program: Command): void {
  addTrainOptions(program.command('train').description('train one multitask M6 (describe, answer, design, …) on a dataset into a run folder; --tasks vq trains the image tokenizer alone'))
    .action(async (flags: TrainFlags) => {
      if (launchRequested(flags)) {
        if (splitVqTask(flags.tasks).tasks === '') throw new UsageError('--tasks vq trains the image tokenizer in one process: leave out --nproc');
        trainOptionsFromFlags(flags, () => {});  // bad flags fail here, before any rank starts
        // The ranks run this same command line (bin/m6.js and its arguments), less the launcher's flags.
        await launchTraining(flags, process.argv[1]!, process.argv.slice(2), flags.out, (m) => process.stderr.write(m + '\n'));
        return;
      }
      // Rank 0 of a data-parallel job speaks for it; the others stay quiet unless they fail.
      const job = inDistributedJob();
      const leader = job === undefined || job.rank === 0;
      const progress = new ProgressLine(process.stderr, numberFlag('--progress-every', flags.progressEvery, { min: 0 }) * 1000, leader);
      const options = trainOptionsFromFlags(flags, leader ? (m) => progress.log(m) : () => {});
      if (options.tasks.length === 0) {
        if (job !== undefined) throw new UsageError('--tasks vq trains the image tokenizer in one process: run it without WORLD_SIZE/RANK');
        console.log(await runVqStageOnly(options));
        return;
      }
      const result = await runWithInterrupt(leader ? { ...options, progress } : options);
      const summary = `${result.message}; loss ${result.firstLoss.toFixed(3)} → ${result.finalLoss.toFixed(3)}, ${result.stepsPerSecond.toFixed(2)} steps/s, ${Math.round(result.tokensPerSecond)} tok/s` +
        (result.nonFiniteSteps > 0 ? `, ${result.nonFiniteSteps} NaN/Inf steps skipped` : '');
      if (result.status === 'non-finite') throw new UsageError(summary, 1);
      if (result.status === 'interrupted') throw new UsageError(summary, 130);
      if (leader) console.log(summary);
    });
}
