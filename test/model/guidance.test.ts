// Classifier-free guidance in generate: each step draws from u + s·(c − u), the prompted and the
// unprompted logits, with the KV cache and without, greedy, sampled and in beam search.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { preset } from '../../src/model/config.js';
import { M6Model, type TargetKind } from '../../src/model/m6.js';
import { generate, type GenerationPrompt } from '../../src/model/generate.js';
import { applyBan, bannedTokens } from '../../src/model/sampling.js';

const BOS = 1, PAD = 0;
const cfg = preset('m6-nano', { layers: 2, dim: 64, heads: 4, ffnDim: 128, vocabSize: 300, imageCodeStart: 200, imageCodes: 100, maxTextLen: 80, layoutChannels: 0 });

torch.manualSeed(4321);
const model = new M6Model(cfg).eval();
torch.setNumThreads(1);
// Larger weights than the init's: peaked next-token distributions, so prompted and unprompted differ and no argmax is a tie.
torch.noGrad(() => { for (const [name, p] of model.namedParameters()) if (!name.includes('ln')) p.mul_(5); });

/** Token rows right-padded with PAD into a source and its mask. */
function sources(rows: number[][]): GenerationPrompt {
  return torch.scope(() => {
    const S = Math.max(...rows.map((r) => r.length));
    return {
      source: torch.tensor(rows.map((r) => [...r, ...new Array<number>(S - r.length).fill(PAD)]), { dtype: 'int64' }).keep(),
      sourceMask: torch.tensor(rows.map((r) => Array.from({ length: S }, (_, j) => j < r.length))).keep(),
    };
  });
}

// Three prompts of 4, 7 and 2 tokens; the unconditional prompt (an instruction alone) is 3 tokens, one row for all.
const prompt = sources([[11, 40, 73, 5], [12, 90, 33, 61, 8, 140, 5], [150, 5]]);
const unconditional = sources([[11, 12, 5]]);

/** Greedy guided decoding of prompt row b, by full teacher-forced forwards of both prompts at every step. */
function reference(b: number, scale: number, kind: TargetKind, steps: number): number[] {
  return torch.noGrad(() => torch.scope(() => {
    const banned = bannedTokens(cfg, kind, [PAD, BOS]);
    const cond = { source: prompt.source!.narrow(0, b, 1), sourceMask: prompt.sourceMask!.narrow(0, b, 1) };
    const seq: number[] = [];
    for (let t = 0; t < steps; t++) {
      const target = torch.tensor([[BOS, ...seq]], { dtype: 'int64' });
      const last = (p: GenerationPrompt) => model.forward({ ...p, target, targetKind: kind }).logits.select(1, t).float();
      const c = last(cond), u = last(unconditional);
      seq.push((applyBan(u.add(c.sub(u).mul(scale)), banned).argmax(-1).toArray() as number[])[0]!);
    }
    return seq;
  }));
}

test('guidance: each token is the argmax of u + s·(c − u), with the KV cache and without', () => {
  const steps = 6;
  const guidance = { scale: 2.5, unconditional };
  const cached = generate(model, prompt, { maxNewTokens: steps, stopTokens: [], guidance }).sequences;
  const full = generate(model, prompt, { maxNewTokens: steps, stopTokens: [], guidance, useCache: false }).sequences;
  const expected = [0, 1, 2].map((b) => reference(b, 2.5, 'text', steps));
  assert.deepEqual(cached, expected);
  assert.deepEqual(full, expected);
  // The test can fail: unguided decoding writes something else.
  assert.notDeepEqual(generate(model, prompt, { maxNewTokens: steps, stopTokens: [] }).sequences, expected);
});

test('guidance: scale 1 is plain decoding; scale 0 is the unconditional prompt alone', () => {
  const plain = generate(model, prompt, { kind: 'image' }).sequences;
  assert.deepEqual(generate(model, prompt, { kind: 'image', guidance: { scale: 1, unconditional } }).sequences, plain);
  const unprompted = torch.scope(() => generate(model, sources([[11, 12, 5], [11, 12, 5], [11, 12, 5]]), { kind: 'image' }).sequences);
  assert.deepEqual(generate(model, prompt, { kind: 'image', guidance: { scale: 0, unconditional } }).sequences, unprompted);
  assert.notDeepEqual(plain, unprompted);
});

test('guidance: sampled image codes and beam search agree with and without the cache', () => {
  const guidance = { scale: 3, unconditional };
  const sampled = (useCache: boolean) => generate(model, prompt, { kind: 'image', temperature: 0.8, topK: 50, seed: 7, guidance, useCache }).sequences;
  const a = sampled(true);
  assert.deepEqual(sampled(false), a);
  assert.ok(a.every((s) => s.length === 64 && s.every((t) => t >= cfg.imageCodeStart && t < cfg.imageCodeStart + cfg.imageCodes)));
  const beams = (useCache: boolean) => generate(model, prompt, { maxNewTokens: 5, numBeams: 3, guidance, useCache });
  const withCache = beams(true), without = beams(false);
  assert.deepEqual(withCache.sequences, without.sequences);
  withCache.scores.forEach((s, i) => assert.ok(Math.abs(s - without.scores[i]!) < 1e-4));
});

test('guidance: an unconditional prompt of one row per prompt; wrong shapes and scales are named; nothing leaks', () => {
  const perRow = sources([[11, 12, 5], [11, 12, 5], [11, 12, 5]]);
  assert.deepEqual(
    generate(model, prompt, { maxNewTokens: 4, guidance: { scale: 2, unconditional: perRow } }).sequences,
    generate(model, prompt, { maxNewTokens: 4, guidance: { scale: 2, unconditional } }).sequences,
  );
  const before = torch.liveTensors();
  generate(model, prompt, { kind: 'image', temperature: 1, seed: 1, guidance: { scale: 2, unconditional } });
  generate(model, prompt, { maxNewTokens: 4, numBeams: 2, guidance: { scale: 2, unconditional } });
  torch.scope(() => {
    const two = sources([[1, 2], [3, 4]]);
    assert.throws(() => generate(model, prompt, { guidance: { scale: 2, unconditional: two } }), /unconditional prompt has 2 rows; give 1 or one per prompt \(3\)/);
    assert.throws(() => generate(model, prompt, { guidance: { scale: 2, unconditional: { batch: 1 } } }), /both have a source or both have none/);
    assert.throws(() => generate(model, prompt, { guidance: { scale: -1, unconditional } }), /guidance scale must be a number ≥ 0/);
    for (const t of Object.values(two)) if (t instanceof torch.Tensor) t.dispose();
  });
  assert.equal(torch.liveTensors(), before);
});

test('designPromptDropout: m6-nano drops 10% of design prompts; a config from before drops none; out of [0, 1) is named', async () => {
  const { validateConfig } = await import('../../src/model/config.js');
  assert.equal(preset('m6-nano').designPromptDropout, 0.1);
  const old: Partial<typeof cfg> = { ...cfg };
  delete old.designPromptDropout;
  assert.equal(validateConfig(old as typeof cfg).designPromptDropout, 0);
  assert.throws(() => preset('m6-nano', { designPromptDropout: 1 }), /designPromptDropout must be in \[0, 1\), got 1/);
});
