// Using a trained run: `loadPipeline(run)` and what its tasks take and give.
export {
  loadPipeline, Pipeline, PipelineError, PIPELINE_TASKS,
  type PipelineTask, type PipelineOptions, type TextOptions, type AnswerOptions, type AnswerInput, type TextRequest, type ReadyTextRequest,
  type DesignCallOptions, type DesignedImage, type DesignOutput, type EmbedInput, type EmbedResult, type TextResult, type TextDelta, type ImageInput,
} from './pipeline.js';
export { RunFolderError } from './runFolder.js';
export type { ContinuousTexts, ReadyTextPrompt } from './text.js';
export type { RecommendOptions, RecommendResult, RecommendedItem } from './recommend.js';
