// The safetensors header parser under a fuzzer (fast-check: valid files mutated, random bytes, and
// headers of random entries with a length field that may lie), a few seconds: no crash, no hang,
// every refusal a one-line SafetensorsError naming the file. The harness lives in test/fuzz/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz } from '../fuzz/harness.js';

test('fuzz the safetensors header: 3 s of random and mutated files, every refusal a clear InputError', async (t) => {
  const f = await fuzz('safetensors', { ms: 3000, seed: 4 });
  t.diagnostic(`safetensors: ${f.runs} executions (${f.accepted} accepted, ${f.refused} refused with an InputError)`);
  assert.ok(f.runs > 100, `only ${f.runs} executions`);
});

test('the fuzz harness reports a reader that hangs, with the input it hung on', async () => {
  await assert.rejects(fuzz('hang', { ms: 3000, seed: 1, hangMs: 800 }), /hang: run \d+ has not finished in 800 ms \(a hang\); its input \(4 bytes\) begins "spin"/);
});
