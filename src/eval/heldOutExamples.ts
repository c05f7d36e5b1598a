// A few of a run's own held-out examples per task, for the playground to offer as inputs: rows of
// the data the run trained on (RUN/split.json records its dataset spec) that are in a held-out split
// and that the run did not train on — the rows `m6 eval` scores. Built as `m6 eval` builds them
// (buildTaskData, then a seeded draw by id), so the examples are what the run was judged on.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { rowSourceOf, type DatasetSpec } from '../data/datasetSpec.js';
import type { Example } from '../data/loader.js';
import { designPromptOf } from '../tasks/designPrompt.js';
import { buildTaskData, isEvalRow, type TaskData } from '../tasks/taskData.js';
import { readRunSplit, SPLIT_FILE } from '../train/runSplit.js';
import { sampleExamples } from './evaluation.js';

export type ExampleTask = 'describe' | 'answer' | 'design' | 'search';

/** One example input; which fields it has depends on its task. */
export interface HeldOutExample {
  /** The data row's id (an answer example is one question of its row). */
  id: string;
  imagePath?: string;
  /** describe, answer: what the data says (the reference); search: the query text (the row's caption). */
  text?: string;
  question?: string;
  prompt?: string;
}

export interface RunExamples {
  tasks: Partial<Record<ExampleTask, HeldOutExample[]>>;
  /** The folder the data's images are under: an image outside it is never served. */
  imageRoot?: string;
  /** Why there are no examples, when there are none. */
  reason?: string;
}

/** The folder a dataset's images are under (the manifest's folder when no image root is set). */
export function imageRootOf(spec: DatasetSpec): string {
  return spec.imageRoot ?? (spec.manifest !== undefined ? dirname(spec.manifest) : spec.shards !== undefined ? dirname(spec.shards[0]!) : spec.imageFolder!);
}

/** The dataset spec the run trained on, or why it is not known. */
export function runDataSpec(runDir: string): DatasetSpec | { reason: string } {
  const recorded = readRunSplit(runDir);
  if (recorded === undefined) return { reason: `${runDir} records no split (${SPLIT_FILE}): its held-out rows are not known` };
  const spec = recorded.split.spec;
  if (spec === undefined) return { reason: `${runDir}/${SPLIT_FILE} does not record the dataset spec (the run predates it): retrain to get held-out examples` };
  const data = spec.manifest ?? spec.shards?.[0] ?? spec.imageFolder!;
  if (!existsSync(data)) return { reason: `the run's data ${data} is not there (moved or deleted)` };
  return spec;
}

/** Up to `perTask` held-out examples of each task the data has, drawn by a seeded hash of their ids. */
export async function heldOutExamples(runDir: string, o: { perTask?: number; seed?: number } = {}): Promise<RunExamples> {
  const spec = runDataSpec(runDir);
  if ('reason' in spec) return { tasks: {}, reason: spec.reason };
  const trainedOn = readRunSplit(runDir)!.trainedOn;
  const data = await buildTaskData(spec, (['describe', 'answer', 'design'] as const).map((name) => ({ name, weight: 1 })));
  const rowId = (e: { id: string }) => e.id.replace(/#.*$/, '');
  const draw = <T extends { id: string }>(items: readonly T[]): T[] => sampleExamples(items.filter((e) => !trainedOn(rowId(e))), o.perTask ?? 4, o.seed ?? 0);
  const heldOut = data.rows.filter((r) => isEvalRow(r) && r.caption !== undefined);
  const byId = new Map(data.rows.map((r) => [r.id, r]));
  const image = (path: string | undefined) => (path !== undefined ? { imagePath: path } : {});
  const tasks: RunExamples['tasks'] = {
    describe: draw(examplesOf(data, 'describe')).map((e) => ({ id: e.id, ...image(e.imagePath), text: e.target ?? '' })),
    answer: draw(examplesOf(data, 'answer')).map((e) => ({ id: rowId(e), ...image(e.imagePath), question: e.source ?? '', text: e.target ?? '' })),
    design: draw(examplesOf(data, 'design')).map((e) => ({ id: e.id, prompt: designPromptOf(byId.get(e.id)!) ?? '' })),
    search: draw(heldOut).map((r) => ({ id: r.id, ...image(r.imagePath), text: r.caption! })),
  };
  const none = Object.values(tasks).every((list) => list.length === 0);
  return { tasks, imageRoot: imageRootOf(spec), ...(none ? { reason: `${rowSourceOf(spec)} has no held-out rows the run did not train on` } : {}) };
}

/** A task's held-out examples as m6 eval finds them (a data set of held-out rows only included). */
function examplesOf(data: TaskData, task: string): readonly Example[] {
  return (data.eval.find((t) => t.name === task) ?? data.heldOutOnly.find((t) => t.name === task))?.examples ?? [];
}
