// The package `m6`: what a TypeScript program uses m6 through. `import { loadPipeline } from 'm6'`
// for a trained run; runTraining for training one; the dataset specs the two share; the model and
// its config; and the tensor library as the `torch` namespace (also `m6/torch`).
export {
  loadPipeline, Pipeline, PipelineError, PIPELINE_TASKS, RunFolderError,
  type PipelineTask, type PipelineOptions, type TextOptions, type AnswerOptions, type AnswerInput, type TextRequest,
  type DesignCallOptions, type DesignedImage, type DesignOutput, type EmbedInput, type EmbedResult, type TextResult, type TextDelta, type ImageInput,
  type RecommendOptions, type RecommendResult, type RecommendedItem,
} from './pipelines/index.js';
export { runTraining, TrainingSetupError, type RunTrainingOptions, type RunTrainingResult } from './train/runTraining.js';
export { train, type TrainOptions, type TrainResult, type TrainStatus } from './train/trainer.js';
export { parseTaskList, type TaskRequest } from './tasks/taskData.js';
export { TASKS, DESIGN_SAMPLING, type TaskName } from './tasks/instructions.js';
export { loadDatasetSpecFile, resolveDatasetSpec, DatasetSpecError, type DatasetSpec, type DatasetSpecInput } from './data/datasetSpec.js';
export { Tokenizer } from './data/tokenizer.js';
export { M6Model, PRESETS, preset, validateConfig, ConfigError, type M6Config } from './model/index.js';
export { InputError } from './torch/inputError.js';
export { readInteractions, type InteractionsSpec, type InteractionLog } from './data/interactions.js';
export { ItemVocabulary } from './data/itemVocabulary.js';
export * as torch from './torch/index.js';
