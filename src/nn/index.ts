export { Module, ModuleList, StateDictError, type ModuleOptions } from './module.js';
export { Linear, Embedding } from './linear.js';
export { LayerNorm, RMSNorm, GroupNorm } from './norm.js';
export { Conv2d, ConvTranspose2d, type ConvOptions } from './conv.js';
export { GELU, SiLU, ReLU, Tanh, Sigmoid, Dropout, Sequential, type Layer } from './activation.js';
export { MultiheadAttention, KvCache, type AttentionCall } from './attention.js';
export * as init from './init.js';
