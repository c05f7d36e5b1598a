// What each task's batcher runs. Describe and answer batch continuously: their requests join one
// running generation between its decode steps and are answered as each finishes (TGI's continuous
// batching). The other tasks run a batch of queued jobs as one pipeline call per group of jobs with
// the same options (designs of one seed and n), results in order.
import type { DesignOutput, EmbedResult, Pipeline, PipelineTask, ReadyTextRequest, TextResult } from '../pipelines/index.js';
import type { SamplingOptions } from '../model/sampling.js';
import { Batcher, Lane, type BatchSession, type SessionEntry } from './batcher.js';
import type { BatchSettings } from './settings.js';

export interface DescribeJob { pixels: Float32Array; maxNewTokens?: number }
export interface AnswerJob { question: string; pixels?: Float32Array; maxNewTokens?: number }
export interface DesignJob { prompt: string; n: number; seed: number; sampling: SamplingOptions & { guidance?: number } }
export type EmbedJob = { text: string } | { pixels: Float32Array };
/** A recommend query's model work: a history (item indices) to score, or an item to compare every item with. */
export type RecommendJob = { history: readonly number[] } | { similarTo: number };

export interface TaskBatchers {
  describe?: Batcher<DescribeJob, TextResult>;
  answer?: Batcher<AnswerJob, TextResult>;
  design?: Batcher<DesignJob, DesignOutput>;
  embed?: Batcher<EmbedJob, EmbedResult>;
  /** Scores for every item (items.ids order), one array per job. */
  recommend?: Batcher<RecommendJob, Float32Array>;
}

/** Runs `fn` once per group of inputs with the same key, and puts the outputs back in input order. */
async function byGroup<I, O>(inputs: I[], signal: AbortSignal, key: (i: I) => string, fn: (group: I[]) => Promise<O[]>): Promise<O[]> {
  const groups = new Map<string, number[]>();
  inputs.forEach((input, i) => {
    const k = key(input);
    const g = groups.get(k);
    if (g === undefined) groups.set(k, [i]);
    else g.push(i);
  });
  const out: O[] = new Array(inputs.length);
  for (const idx of groups.values()) {
    // Each group's compute holds the event loop: let health checks and new requests in between.
    if (idx !== groups.values().next().value) await new Promise<void>((r) => setImmediate(r));
    signal.throwIfAborted();
    const results = await fn(idx.map((i) => inputs[i]!));
    idx.forEach((i, k) => { out[i] = results[k]!; });
  }
  return out;
}

/**
 * Runs a continuous text session: before each decode step, rows whose callers went away are
 * dropped and the requests that queued meanwhile join (up to `maxRows` running); each row is
 * answered the step it finishes. A join that fails (a bad prompt) fails only its own requests.
 */
async function runTextSession<J>(pipeline: Pipeline, session: BatchSession<J, TextResult>, maxRows: number, request: (job: J) => ReadyTextRequest): Promise<void> {
  const texts = pipeline.continuousText();
  const rows = new Map<number, SessionEntry<J, TextResult>>();
  try {
    for (;;) {
      for (const [id, e] of rows) if (e.gone) { texts.drop(id); rows.delete(id); }
      const joining = session.take(maxRows - rows.size);
      if (joining.length > 0) {
        try {
          texts.join(joining.map((e) => pipeline.readyPrompt(request(e.input)))).forEach((id, i) => rows.set(id, joining[i]!));
        } catch (err) {
          for (const e of joining) e.fail(err instanceof Error ? err : new Error(String(err)));
        }
      }
      if (texts.size === 0) return;
      for (const { id, result } of texts.step()) { rows.get(id)?.answer(result); rows.delete(id); }
      // The event loop answers health checks and reads new requests between steps.
      await new Promise<void>((r) => setImmediate(r));
    }
  } finally {
    texts.dispose();
  }
}

/** A batcher for every task the run serves, all on one lane (one batch at a time on the device). */
export function taskBatchers(pipeline: Pipeline, s: BatchSettings, onBatch: (task: PipelineTask, size: number) => void): { batchers: TaskBatchers; lane: Lane } {
  const lane = new Lane();
  const common = (name: PipelineTask) => ({ name, maxBatchSize: s.maxBatchSize, maxWaitMs: s.maxWaitMs, maxQueue: s.maxQueue, lane, onBatch: (n: number) => onBatch(name, n) });
  const batchers: TaskBatchers = {};
  const maxTokens = (j: { maxNewTokens?: number }) => (j.maxNewTokens !== undefined ? { maxNewTokens: j.maxNewTokens } : {});
  if (pipeline.supports('describe')) {
    batchers.describe = new Batcher<DescribeJob, TextResult>({
      ...common('describe'),
      continuous: (session) => runTextSession(pipeline, session, s.maxBatchSize, (j) => ({ task: 'describe', pixels: j.pixels, ...maxTokens(j) })),
    });
  }
  if (pipeline.supports('answer')) {
    batchers.answer = new Batcher<AnswerJob, TextResult>({
      ...common('answer'),
      continuous: (session) => runTextSession(pipeline, session, s.maxBatchSize, (j) => ({ task: 'answer', question: j.question, ...(j.pixels !== undefined ? { pixels: j.pixels } : {}), ...maxTokens(j) })),
    });
  }
  if (pipeline.supports('design')) {
    // Seeded by (seed, prompt): jobs with the same n, seed and sampling share a call with no change to their images.
    batchers.design = new Batcher({
      ...common('design'),
      run: (jobs, signal) => byGroup(jobs, signal, (j) => JSON.stringify([j.n, j.seed, j.sampling]), (g) => pipeline.design(g.map((j) => j.prompt), { n: g[0]!.n, seed: g[0]!.seed, ...g[0]!.sampling, signal })),
    });
  }
  if (pipeline.supports('embed')) {
    batchers.embed = new Batcher({
      ...common('embed'),
      run: (jobs, signal) => byGroup(jobs, signal, (j) => ('text' in j ? 'text' : 'image'), (g) => ('text' in g[0]!
        ? pipeline.embed({ texts: g.map((j) => (j as { text: string }).text) })
        : pipeline.embed({ images: g.map((j) => (j as { pixels: Float32Array }).pixels) }))),
    });
  }
  if (pipeline.supports('recommend')) {
    // Histories score as one batch; a similarity is one row of the run's item-vector matrix (built once, on the first).
    batchers.recommend = new Batcher({
      ...common('recommend'),
      run: (jobs, signal) => byGroup(jobs, signal, (j) => ('history' in j ? 'history' : 'similar'), async (g) => ('history' in g[0]!
        ? pipeline.scoreHistories(g.map((j) => (j as { history: readonly number[] }).history), { batchSize: g.length })
        : g.map((j) => pipeline.itemSimilarities((j as { similarTo: number }).similarTo)))),
    });
  }
  return { batchers, lane };
}
