export { Optimizer, OptimizerStateError, type ParamGroup, type ParamGroupSpec, type OptimizerState } from './optimizer.js';
export { AdamW, type AdamWHyper } from './adamw.js';
export { SGD, type SgdHyper } from './sgd.js';
export { clipGradNorm } from './clip.js';
export { constant, warmupCosine, lrFactor, timeLrFactor, inverseSqrt, applySchedule, type LrSchedule } from './schedule.js';
