// A per-task dynamic batcher (TGI's router queue, Triton's dynamic batching): requests of one task
// that arrive within `maxWaitMs` of each other run as one call of `run`, at most `maxBatchSize`
// at a time. The queue is bounded: past `maxQueue` waiting entries a submit is shed at once
// (QueueFullError → 429 + Retry-After) rather than queueing without bound. Each entry has a
// deadline: still queued then, it leaves the queue (503); already running, its caller is answered
// (504). An aborted entry (the client went away) leaves the queue, so its work never runs. Once
// every entry of a running batch has been answered (aborted, timed out), the batch's signal fires
// and `run` stops at its next step. A batch that throws fails its own entries, no others.
//
// Each libtorch op is a synchronous JS call, so `run` must give the event loop back between its
// steps (the tasks generate a decode step at a time) for health checks and new requests to be
// served while a batch runs; the batcher also yields (setImmediate) before each batch. Batches of
// all tasks share one Lane: one runs at a time, as the device does.

/** Runs async jobs one at a time, in order. */
export class Lane {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  run<T>(job: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.tail.then(job, job);
    this.tail = result.then(() => undefined, () => undefined).finally(() => { this.pending--; });
    return result;
  }

  /** Jobs queued or running. */
  get size(): number {
    return this.pending;
  }

  /** Resolves when every job given so far has finished. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}

interface CommonBatcherOptions {
  /** A name for errors and metrics (the task). */
  name: string;
  /** Most entries in one call of `run` (with `continuous`: rows running at once). */
  maxBatchSize: number;
  /** How long the first entry of a batch waits for others to join it. */
  maxWaitMs: number;
  /** Most entries waiting (not yet running); a submit past it is shed. */
  maxQueue: number;
  /** Shared with the other tasks' batchers so one batch runs at a time (default: a lane of its own). */
  lane?: Lane;
  /** Told the size of each batch as it starts (with `continuous`: the rows running once new ones join). */
  onBatch?: (size: number) => void;
}

export type BatcherOptions<I, O> = CommonBatcherOptions & (
  /** Fixed batches: one output per input, in order; `signal` fires once no entry of the batch wants its output. */
  | { run: (inputs: I[], signal: AbortSignal) => Promise<O[]>; continuous?: never }
  /**
   * Continuous batching (TGI's): one session runs while there is work, takes the entries that queue
   * meanwhile between its steps (`take`) and answers each as soon as it is done. It returns once it
   * holds no row and `take` gives nothing.
   */
  | { continuous: (session: BatchSession<I, O>) => Promise<void>; run?: never }
);

/** What a continuous runner is handed. */
export interface BatchSession<I, O> {
  /**
   * The entries queued since the last call, at most `room`. Once another task's batch waits for the
   * lane it gives none, so this session drains and lets it run (the first call always takes).
   */
  take(room: number): Array<SessionEntry<I, O>>;
}

/** An entry running in a session. */
export interface SessionEntry<I, O> {
  readonly input: I;
  /** Its caller no longer wants the output (went away, timed out): drop its row. */
  readonly gone: boolean;
  answer(output: O): void;
  fail(err: Error): void;
}

export interface SubmitOptions {
  /** The client is gone: drop the entry. */
  signal?: AbortSignal;
  /** Deadline from submit (default: none). */
  timeoutMs?: number;
}

/** The queue is full: try again after `retryAfterS` seconds. */
export class QueueFullError extends Error {
  constructor(readonly task: string, readonly queued: number, readonly retryAfterS: number) {
    super(`the ${task} queue is full (${queued} requests waiting): retry after ${retryAfterS} s`);
    this.name = 'QueueFullError';
  }
}

/** The entry's deadline passed: `stage` says whether it was still queued (503) or running (504). */
export class DeadlineError extends Error {
  constructor(readonly task: string, readonly stage: 'queued' | 'running', readonly timeoutMs: number) {
    super(stage === 'queued'
      ? `the ${task} request waited ${timeoutMs} ms in the queue without starting (the server is busy): retry later`
      : `the ${task} request did not finish within ${timeoutMs} ms`);
    this.name = 'DeadlineError';
  }
}

/** The caller aborted before an answer. */
export class AbortedError extends Error {
  constructor(readonly task: string) {
    super(`the ${task} request was cancelled by its client`);
    this.name = 'AbortedError';
  }
}

/** The batcher is closed to new work (the server is shutting down). */
export class ClosedError extends Error {
  constructor(readonly task: string) {
    super(`the server is shutting down: the ${task} queue takes no new requests`);
    this.name = 'ClosedError';
  }
}

interface Entry<I, O> {
  input: I;
  resolve: (o: O) => void;
  reject: (e: Error) => void;
  /** Set once answered (resolved, rejected, timed out, aborted): later outcomes are dropped. */
  settled: boolean;
  /** The running batch it belongs to, and what stops that batch. */
  batch: { entries: Array<Entry<I, O>>; stop: AbortController } | undefined;
  cleanup: () => void;
}

/** Stops the entry's batch once none of its entries wants an output. */
function stopIfAbandoned(e: { batch: { entries: Array<{ settled: boolean }>; stop: AbortController } | undefined }, task: string): void {
  if (e.batch !== undefined && e.batch.entries.every((x) => x.settled)) e.batch.stop.abort(new AbortedError(task));
}

export class Batcher<I, O> {
  private readonly queue: Array<Entry<I, O>> = [];
  private readonly lane: Lane;
  private timer: NodeJS.Timeout | undefined;
  /** Set while a batch that queued behind another waits for company: a submit calls it. */
  private joined: (() => void) | undefined;
  /** Batches handed to the lane and not finished. */
  private inFlight = 0;
  private closed = false;
  /** Mean seconds per batch (exponential), for Retry-After. */
  private batchSeconds = 1;
  /** The same, from the batches this batcher has run (0 before the first). */
  private batchMs = 0;
  /** Requests between expect() and submit(). */
  private arriving = 0;

  constructor(private readonly o: BatcherOptions<I, O>) {
    if (!(o.maxBatchSize >= 1 && o.maxQueue >= 0 && o.maxWaitMs >= 0)) throw new RangeError(`batcher ${o.name}: maxBatchSize ≥ 1, maxQueue ≥ 0 and maxWaitMs ≥ 0, got ${o.maxBatchSize}, ${o.maxQueue}, ${o.maxWaitMs}`);
    this.lane = o.lane ?? new Lane();
  }

  /** Entries waiting to run. */
  get depth(): number {
    return this.queue.length;
  }

  /** The output for `input`, once its batch has run. */
  submit(input: I, s: SubmitOptions = {}): Promise<O> {
    if (this.closed) return Promise.reject(new ClosedError(this.o.name));
    if (s.signal?.aborted) return Promise.reject(new AbortedError(this.o.name));
    if (this.queue.length >= this.o.maxQueue) {
      const batchesAhead = Math.ceil((this.queue.length + 1) / this.o.maxBatchSize) + this.inFlight;
      return Promise.reject(new QueueFullError(this.o.name, this.queue.length, Math.max(1, Math.ceil(batchesAhead * this.batchSeconds))));
    }
    return new Promise<O>((resolve, reject) => {
      const entry: Entry<I, O> = { input, resolve, reject, settled: false, batch: undefined, cleanup: () => undefined };
      const fail = (e: Error): void => {
        if (entry.settled) return;
        entry.settled = true;
        entry.cleanup();
        const at = this.queue.indexOf(entry);
        if (at >= 0) this.queue.splice(at, 1);
        reject(e);
        stopIfAbandoned(entry, this.o.name);
      };
      const onAbort = (): void => fail(new AbortedError(this.o.name));
      const deadline = s.timeoutMs !== undefined
        ? setTimeout(() => fail(new DeadlineError(this.o.name, entry.batch !== undefined ? 'running' : 'queued', s.timeoutMs!)), s.timeoutMs).unref()
        : undefined;
      s.signal?.addEventListener('abort', onAbort, { once: true });
      entry.cleanup = () => {
        if (deadline !== undefined) clearTimeout(deadline);
        s.signal?.removeEventListener('abort', onAbort);
      };
      this.queue.push(entry);
      this.joined?.();
      this.schedule();
    });
  }

  /** Starts a batch now when one is full, else waits up to maxWaitMs for more entries. */
  private schedule(): void {
    if (this.queue.length === 0) return;
    if (this.queue.length >= this.o.maxBatchSize || this.o.maxWaitMs === 0) {
      this.flush();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.o.maxWaitMs);
    }
  }

  private flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    // A running session takes what queues between its steps; a second one would only wait behind it.
    if (this.o.continuous !== undefined && this.inFlight > 0) return;
    this.inFlight++;
    // The batch is cut when the lane reaches it, not now: entries that arrive while another batch
    // runs join it, and entries dropped meanwhile (aborted, timed out) are already gone.
    const behind = this.lane.size > 0;
    const job = this.o.continuous !== undefined ? () => this.runSession(this.o.continuous!) : () => this.runBatch(behind);
    void this.lane.run(job).finally(() => {
      this.inFlight--;
      if (this.queue.length > 0 && this.inFlight === 0) {
        if (this.closed) this.flush();
        else this.schedule();
      }
    });
  }

  /**
   * Waits for entries to join a batch that queued behind another, until it is full or for at most
   * maxWaitMs or a tenth of a batch's time, whichever is longer. The clients the batch before
   * answered send their next requests meanwhile: cut at once, this batch would hold only those
   * that arrived while the other ran, and the two groups would go on alternating in half batches
   * (the event loop, free while a batch runs, queues the second group before the first is
   * answered). A tenth: waiting costs at most a tenth of a batch's throughput, half batches half.
   */
  private async gather(): Promise<void> {
    const start = performance.now();
    // A tenth of a batch's time for whoever may come; half of it while requests known to be in the
    // door (expect()) are still reading their inputs. Without the second, 16 clients settled into
    // two alternating batches of 8, each costing nearly what 16 would: half the throughput.
    const short = Math.max(this.o.maxWaitMs, this.batchMs / 10), long = Math.max(this.o.maxWaitMs, this.batchMs / 2);
    while (this.queue.length > 0 && this.queue.length < this.o.maxBatchSize) {
      const left = (this.arriving > 0 ? long : short) - (performance.now() - start);
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.joined?.(), left);
        this.joined = () => { clearTimeout(timer); this.joined = undefined; resolve(); };
      });
    }
  }

  /**
   * Marks a request on its way to submit() (its body still being read, its image decoded): a batch
   * waiting for company waits for it. Call the returned function once it has submitted, or failed.
   */
  expect(): () => void {
    this.arriving++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.arriving--;
      this.joined?.();
    };
  }

  /** A continuous session: entries join between its steps and are answered one by one. */
  private async runSession(runner: (session: BatchSession<I, O>) => Promise<void>): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));   // let the event loop answer what is waiting
    const live = new Set<Entry<I, O>>();
    let first = true;
    const settle = (e: Entry<I, O>, started: number, outcome: { output: O } | { err: Error }): void => {
      live.delete(e);
      if (e.settled) return;
      e.settled = true;
      e.cleanup();
      const ms = performance.now() - started;
      this.batchSeconds = 0.8 * this.batchSeconds + 0.2 * (ms / 1000);
      if ('output' in outcome) e.resolve(outcome.output);
      else e.reject(outcome.err);
    };
    const take = (room: number): Array<SessionEntry<I, O>> => {
      if (!first && this.lane.size > 1 && !this.closed) return [];
      first = false;
      const taken = this.queue.splice(0, Math.max(0, room));
      if (taken.length === 0) return [];
      this.o.onBatch?.(live.size + taken.length);
      const started = performance.now();
      return taken.map((e) => {
        live.add(e);
        e.batch = { entries: [e], stop: new AbortController() };
        return {
          input: e.input,
          get gone() { return e.settled; },
          answer: (output: O) => settle(e, started, { output }),
          fail: (err: Error) => settle(e, started, { err }),
        };
      });
    };
    try {
      await runner({ take });
      // Entries answered elsewhere (aborted, timed out) are the runner's to drop, not to answer.
      const left = [...live].filter((e) => !e.settled).length;
      if (left > 0) throw new Error(`batcher ${this.o.name}: the session ended with ${left} entries unanswered`);
    } catch (err) {
      const failure = err instanceof Error ? err : new Error(String(err));
      for (const e of [...live]) settle(e, performance.now(), { err: failure });
    }
  }

  private async runBatch(behind: boolean): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));   // let the event loop answer what is waiting
    if (behind && !this.closed) await this.gather();
    const batch = this.queue.splice(0, this.o.maxBatchSize);
    if (batch.length === 0) return;
    const running = { entries: batch, stop: new AbortController() };
    for (const e of batch) e.batch = running;
    this.o.onBatch?.(batch.length);
    const started = performance.now();
    let outputs: O[] | undefined;
    let failure: Error | undefined;
    try {
      outputs = await this.o.run!(batch.map((e) => e.input), running.stop.signal);
      if (outputs.length !== batch.length) failure = new Error(`batcher ${this.o.name}: run gave ${outputs.length} outputs for ${batch.length} inputs`);
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    const ms = performance.now() - started;
    this.batchSeconds = 0.8 * this.batchSeconds + 0.2 * (ms / 1000);
    this.batchMs = this.batchMs === 0 ? ms : 0.8 * this.batchMs + 0.2 * ms;
    batch.forEach((e, i) => {
      if (e.settled) return;
      e.settled = true;
      e.cleanup();
      if (failure !== undefined) e.reject(failure);
      else e.resolve(outputs![i]!);
    });
  }

  /** Takes no new entries; resolves when what was queued has run. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.queue.length > 0 || this.inFlight > 0) {
      if (this.inFlight === 0) this.flush();
      await this.lane.idle();
    }
  }
}
