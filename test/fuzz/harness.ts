// Runs a fuzz target (test/fuzz/targets.ts) in a worker thread for `ms`, watching that no single
// input runs longer than `hangMs` (a hang cannot be interrupted from inside: the worker is ended).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FuzzWorkerData, FuzzWorkerResult } from './worker.js';

export interface FuzzFigures { runs: number; accepted: number; refused: number }

const INPUT_BYTES = 1 << 16;

export async function fuzz(target: string, o: { ms: number; seed: number; hangMs?: number }): Promise<FuzzFigures> {
  const dir = mkdtempSync(join(tmpdir(), `m6-fuzz-${target}-`));
  const shared = new SharedArrayBuffer(8 + INPUT_BYTES);
  const counter = new Int32Array(shared, 0, 2);
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { target, ms: o.ms, seed: o.seed, dir, shared } satisfies FuzzWorkerData });
  try {
    return await new Promise<FuzzFigures>((resolve, reject) => {
      let seen = -1, since = Date.now();
      const watch = setInterval(() => {
        const now = Atomics.load(counter, 0);
        if (now !== seen) { seen = now; since = Date.now(); return; }
        // Before its first run the worker is loading its modules: that may take longer than one input should.
        if (Date.now() - since < (now === 0 ? 60_000 : o.hangMs ?? 5000)) return;
        const len = Atomics.load(counter, 1);
        const input = Buffer.from(new Uint8Array(shared, 8, Math.min(len, INPUT_BYTES))).subarray(0, 512);
        reject(new Error(`${target}: run ${now} has not finished in ${o.hangMs ?? 5000} ms (a hang); its input (${len} bytes) begins ${JSON.stringify(input.toString('latin1'))}`));
      }, 100);
      worker.on('message', (m: FuzzWorkerResult) => {
        clearInterval(watch);
        if (m.kind === 'done') resolve({ runs: m.runs, accepted: m.accepted, refused: m.refused });
        else reject(new Error(`${target}: failed after ${m.runs} runs:\n${m.report}`));
      });
      worker.on('error', (err) => { clearInterval(watch); reject(err); });
      worker.on('exit', (code) => { clearInterval(watch); reject(new Error(`${target}: the fuzz worker exited (${code}) without a result`)); });
    });
  } finally {
    await worker.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
}
