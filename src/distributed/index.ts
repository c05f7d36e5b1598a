// Scale-out over torch c10d: `import { dist } from './distributed/index.js'`, then
// `const pg = await dist.init({ rank, worldSize, masterAddr, masterPort })` (or torchrun's RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and `await pg.allReduce(t, 'avg')`.
export {
  init, resolveInitOptions, availableBackends, ProcessGroup,
  type Backend, type ReduceOp, type InitOptions, type DistError, type AllToAllOptions, type AllToAllResult,
} from './processGroup.js';
export * as dist from './processGroup.js';
export { GradReducer, planBuckets, DEFAULT_REDUCER_OPTIONS, type ReducerOptions, type BucketPlan, type ParamSpec } from './reducer.js';
export { planTraining, activationBytes, expertLayout, STRATEGIES, BYTES, DEFAULT_PLAN_OPTIONS, DEFAULT_TOKENS_PER_PARAM, type PlanOptions, type TrainingPlan, type StrategyPlan, type Strategy, type DeviceMemory } from './plan.js';
export { GPUS, gpuSpec, type GpuSpec } from './gpus.js';
