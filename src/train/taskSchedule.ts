// A curriculum over the task mixture (T5/OFA-style task scheduling): a task with a start
// (TaskSource.start, a share of the training) takes no rows until that share has passed. Built to
// let describe learn garment shape before the other tasks join; in the fp32 demo's ~2,000 steps it
// did not pay off (README, "What holds shape back in the mixture"), so no default uses it. A
// step-bounded run knows each join step up front; a time-bounded one joins a task at the first step
// past its share of the budget, and the trainer state records the step, so a resumed run replays
// the same batches.
import type { Batch, DataLoader, TaskSource } from '../data/loader.js';

/** The loader's batches as the training loop takes them, restarted where a task joins mid-run. */
export class ScheduledBatches {
  /** Task → the loader batch it joined at (trainer state's `taskStarts`). */
  readonly joined: Record<string, number>;
  private readonly pending: TaskSource[];
  private stream: AsyncGenerator<Batch>;

  /**
   * `position`: the loader batch to start from (step × gradAccum). `totalBatches`: the run's length
   * in loader batches when it is bounded by steps (every start is fixed now), null when by time.
   */
  constructor(private readonly loader: DataLoader, tasks: readonly TaskSource[], position: number, totalBatches: number | null, joined: Readonly<Record<string, number>> = {}) {
    this.joined = { ...joined };
    this.pending = tasks.filter((t) => (t.start ?? 0) > 0 && this.joined[t.name] === undefined);
    if (totalBatches !== null) {
      for (const t of this.pending) this.joined[t.name] = Math.round(t.start! * totalBatches);
      this.pending.length = 0;
    }
    for (const [name, at] of Object.entries(this.joined)) loader.joinAt(name, at);
    this.stream = endless(loader, position);
  }

  /** The tasks still waiting for their share of a time budget. */
  get waiting(): readonly string[] {
    return this.pending.map((t) => t.name);
  }

  /**
   * At the top of a step of a time-bounded run: tasks whose share of the budget has passed join at
   * loader batch `position`. Returns their names (empty: nothing changed).
   */
  async advance(position: number, timeFraction: number): Promise<string[]> {
    const due = this.pending.filter((t) => t.start! <= timeFraction);
    if (due.length === 0) return [];
    for (const t of due) {
      this.joined[t.name] = position;
      this.loader.joinAt(t.name, position);
      this.pending.splice(this.pending.indexOf(t), 1);
    }
    // The batches prepared ahead were planned without them: plan again from here.
    await this.stream.return(undefined);
    this.stream = endless(this.loader, position);
    return due.map((t) => t.name);
  }

  get batches(): AsyncGenerator<Batch> {
    return this.stream;
  }

  async close(): Promise<void> {
    await this.stream.return(undefined);
  }
}

/** Loader batches from `start` on, without end (the loader plans in finite chunks). */
async function* endless(loader: DataLoader, start: number, chunk = 256): AsyncGenerator<Batch> {
  for (let at = start; ; at += chunk) yield* loader.batches({ steps: chunk, startStep: at });
}
