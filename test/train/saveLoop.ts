// The writer killed by killSave.test.ts: saves checkpoints of a small model in a loop, every step
// twice (the second save replaces the first, as a resumed run re-saving its start does), printing
// "saved N" after each. It does nothing unless M6_SAVE_LOOP_RUN is set: `node --test dist/test/` also loads this file.
import * as torch from '../../src/torch/index.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { M6Model, preset } from '../../src/model/index.js';
import { listCheckpoints, saveCheckpoint, type TrainerState } from '../../src/train/checkpoint.js';
import { makeOptimizer } from '../../src/train/trainer.js';

if (process.env.M6_SAVE_LOOP_RUN !== undefined) {
  const runDir = process.env.M6_SAVE_LOOP_RUN;
  const tokenizer = Tokenizer.train(['a red dress', 'a blue shirt', 'what colour is it?'], { vocabSize: 300, imageCodes: 16 });
  // Wide enough that a save takes a while (the moments a kill must not spoil), small enough to start fast.
  const config = preset('m6-nano', { layers: 2, dim: 64, heads: 2, ffnDim: 256, imageSize: 16, patchSize: 8, stemChannels: 8, maxTextLen: 16, vocabSize: tokenizer.vocabSize, imageCodeStart: tokenizer.imageCodeStart, imageCodes: tokenizer.imageCodes });
  torch.manualSeed(0);
  const model = new M6Model(config);
  const opt = makeOptimizer(model, 1e-3, 0.01);
  torch.scope(() => {
    const target = torch.randint(0, 200, [2, 5]);
    model.forward({ target, labels: target }).loss!.backward();
  });
  opt.step();
  let step = listCheckpoints(runDir).at(-1)?.step ?? 0;
  for (let i = 0; ; i++) {
    if (i % 2 === 0) step++;
    const trainer: TrainerState = {
      version: 1, step, dataPosition: step, seed: 1, gradAccum: 1, batchSize: 2, augment: false, schedule: { lr: 1e-3, warmup: 2, totalSteps: null, minLrRatio: 0.1 },
      nonFiniteSteps: 0, tokensSeen: i, elapsedSeconds: 0, optimizer: opt.stateDict().meta, tasks: [], savedAt: new Date().toISOString(),
    };
    saveCheckpoint(runDir, { model: model.stateDict(), optimizer: opt.stateDict(), config, tokenizer, trainer }, 2);
    process.stdout.write(`saved ${step}\n`);
  }
}
