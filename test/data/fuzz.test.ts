// The manifest and dataset spec readers under a fuzzer (fast-check: random bytes and text, and valid
// seed files mutated: bits flipped, bytes cut, duplicated and inserted, the format's tokens spliced
// in), a few seconds each: no crash, no hang, every refusal a one-line InputError naming the file.
// The harness and targets live in test/fuzz/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz } from '../fuzz/harness.js';

const MS = 3000;

for (const [target, seed] of [['csv', 1], ['jsonl', 2], ['spec', 3]] as const) {
  test(`fuzz ${target}: ${MS / 1000} s of random and mutated files, every refusal a clear InputError`, async (t) => {
    const f = await fuzz(target, { ms: MS, seed });
    t.diagnostic(`${target}: ${f.runs} executions (${f.accepted} accepted, ${f.refused} refused with an InputError)`);
    assert.ok(f.runs > 100, `only ${f.runs} executions`);
  });
}
