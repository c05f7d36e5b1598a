export { PRESETS, preset, validateConfig, ConfigError, isMoeLayer, gridSize, imagePositions, activeExperts, type M6Config } from './config.js';
export { M6Model, contrastiveLoss, Block, ImageStem, prefixLmMask, type M6Input, type PairLayout, type PairMaskOptions, type M6Output, type MoeStats, type TargetKind } from './m6.js';
export { MoeLayer, Ffn, type MoeOptions, type MoeOutput, type Routing } from './moe.js';
export { modelStats, type ModelStats } from './inspect.js';
export { generate, generateStream, type GenerateOptions, type GenerateResult, type GenerationPrompt, type TokenEvent, type FinishReason } from './generate.js';
