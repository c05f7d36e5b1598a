// m6's tensor library: `import * as torch from './torch/index.js'`.
import { initRuntime } from './runtime.js';

export { Tensor, tensor, zeros, ones, empty, full, arange, linspace, eye, randn, rand, randint,
  zerosLike, onesLike, fullLike, randnLike, emptyLike, cat, stack, where, einsum, baddbmm, addmm, matmul, call, callAsync, type CallResult,
  type Scalar, type TensorOrScalar, type Shape, type NestedArray, type NestedInput, type IndexSpec, type TensorOptions, type ReduceOpts } from './tensor.js';
export { type DType, DTYPES, isFloatingDtype, dtypeBytes } from './dtype.js';
export { type Device, cudaAvailable, cudaDeviceCount } from './device.js';
export { scope, scopeAsync, keep, liveTensors, liveTensorBytes } from './scope.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled, backward } from './autograd.js';
export { autocast, type AutocastOptions } from './autocast.js';
export { manualSeed, setNumThreads, getNumThreads, engineInfo, keepLargeAllocations, type EngineInfo } from './runtime.js';
export { hasOp } from './ops.js';
export { gradcheck, type GradcheckResult } from './gradcheck.js';
export * as nn from './functional.js';

initRuntime();
export { startOpProfile, stopOpProfile, profileOps, opFamily, byFamily, type OpTiming, type FamilyTiming } from './profiler.js';
export { probeBf16Matmul, type Bf16Probe } from './bf16Probe.js';
