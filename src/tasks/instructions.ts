// The tasks M6 is trained on, each an instruction in plain text to the same model (OFA's recipe:
// the task is named in the source text, so one vocabulary and one head serve every task).
// This table is the one place a task's prompt is spelled; training and the task verbs both read it.
import type { SamplingOptions } from '../model/sampling.js';

export type TaskName = 'describe' | 'answer' | 'design' | 'embed' | 'denoise' | 'recommend' | 'complement' | 'search';

export interface TaskInfo {
  /** The source text for tasks whose input is only an image (describe); answer's source is the question itself. */
  instruction: string;
  /** Most target tokens generated at inference. */
  maxNewTokens: number;
  /** Why the task cannot be trained yet, when it cannot. */
  unavailable?: string;
  /** An evaluation-only task judged on another task's held-out examples (search: embed's image–caption pairs). */
  examplesOf?: TaskName;
}

export const TASKS: Readonly<Record<TaskName, TaskInfo>> = Object.freeze({
  describe: { instruction: ' what does the image describe?', maxNewTokens: 64 },
  answer: { instruction: '', maxNewTokens: 16 },
  // The source is the instruction then the prompt (designPrompt.ts); the target is the image's VQ
  // codes, exactly grid² of them (the VQ tokenizer is trained first: src/train/vqStage.ts).
  design: { instruction: ' what is the complete image? caption:', maxNewTokens: 64 },
  // embed is contrastive, not generated: its source is the caption itself (see src/train/objectives.ts).
  embed: { instruction: '', maxNewTokens: 0 },
  // Text-only rows (BART/OFA text infilling): the source is the text with spans masked, the target the whole text.
  denoise: { instruction: ' what is the complete text of "{}"?', maxNewTokens: 96 },
  // A shopper's items follow the instruction as item positions (M6Model.recommendQueries); each step's query scores every item.
  recommend: { instruction: ' which item does the shopper want next?', maxNewTokens: 0 },
  // Complements are served from co-occurrence and the recommend task's item vectors, not trained: an evaluation-only name.
  complement: { instruction: '', maxNewTokens: 0, unavailable: 'complements are not trained: they come from co-occurrence in baskets and the recommend task\'s item vectors (m6 eval --tasks complement judges them)' },
  // Search is the embed task's vectors in a catalog index (src/search/), not trained of its own: an evaluation-only name.
  search: { instruction: '', maxNewTokens: 0, examplesOf: 'embed', unavailable: 'search is not trained of its own: it is the embed task\'s vectors in a catalog index (train embed; m6 eval --tasks search judges it)' },
});

/**
 * How design samples its image codes unless told otherwise. Image codes are drawn, never taken
 * greedily (argmax repeats the commonest code: a flat background). top-k 100 of the codebook with
 * the nucleus at 0.95 keeps the draw among codes the model finds plausible for the position, so the
 * images vary without noise. Temperature 0.6: the Fréchet distance to real images (realism and
 * variety together) is lowest there (the README's "Why these defaults" gives the measurements).
 */
export const DESIGN_SAMPLING: Readonly<Required<SamplingOptions>> = Object.freeze({ temperature: 0.6, topK: 100, topP: 0.95 });

/**
 * The classifier-free guidance scale design samples with when the model was trained with prompts
 * dropped (M6Config.designPromptDropout): chosen on the validation split (README, "Why these defaults").
 */
export const DESIGN_GUIDANCE = 3;
