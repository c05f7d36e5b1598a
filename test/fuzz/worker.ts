// One fuzz target in a worker thread, for a bounded time: the parent watches a shared run counter
// and ends the worker when one input runs too long (a hang is a failure too, with the input that hung).
// It does nothing outside a worker: `node --test dist/test/` also loads this file.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { InputError } from '../../src/torch/inputError.js';
import { TARGETS } from './targets.js';

export interface FuzzWorkerData { target: string; ms: number; seed: number; dir: string; shared: SharedArrayBuffer }
export type FuzzWorkerResult = { kind: 'done'; runs: number; accepted: number; refused: number } | { kind: 'failed'; runs: number; report: string };

/** Why a refusal is not a clear one, or undefined when it is. */
function judge(err: unknown, namesFile: (e: InputError) => boolean): string | undefined {
  if (!(err instanceof InputError)) return `not an InputError: ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err)}`;
  if (err.message.trim() === '') return `${err.name} with an empty message`;
  if (err.message.includes('\n')) return `${err.name} on more than one line: ${JSON.stringify(err.message)}`;
  if (!namesFile(err)) return `${err.name} does not name the file: ${err.message}`;
  return undefined;
}

if (!isMainThread) await runTarget(workerData as FuzzWorkerData);

async function runTarget({ target, ms, seed, dir, shared }: FuzzWorkerData): Promise<void> {
  const t = TARGETS[target]!;
  const file = join(dir, `items${t.ext}`);
  const counter = new Int32Array(shared, 0, 2);  // [runs started, length of the input now running]
  const current = new Uint8Array(shared, 8);
  let runs = 0, accepted = 0, refused = 0;
  let problem: string | undefined;  // the last (most shrunk) failure, put first in the report
  try {
    await fc.assert(fc.asyncProperty(t.input, async (bytes) => {
      current.set(bytes.subarray(0, current.length));
      Atomics.store(counter, 1, bytes.length);
      Atomics.store(counter, 0, ++runs);
      writeFileSync(file, bytes);
      try {
        await t.read(file);
        accepted++;
      } catch (err) {
        const why = judge(err, t.namesFile);
        if (why !== undefined) throw new Error((problem = why));
        refused++;
      }
    }), { numRuns: 100_000_000, interruptAfterTimeLimit: ms, markInterruptAsFailure: false, seed });
    parentPort!.postMessage({ kind: 'done', runs, accepted, refused } satisfies FuzzWorkerResult);
  } catch (err) {
    parentPort!.postMessage({ kind: 'failed', runs, report: `${problem ?? ''}\n${(err as Error).message.slice(0, 3000)}` } satisfies FuzzWorkerResult);
  }
}
