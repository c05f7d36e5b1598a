// The tasks M6 is trained on, each an instruction in plain text to the same model (OFA's recipe:
// the task is named in the source text, so one vocabulary and one head serve every task).
// This table is the one place a task's prompt is spelled; training and the task verbs both read it.

export type TaskName = 'describe' | 'answer' | 'design' | 'embed';

export interface TaskInfo {
  /** The source text for tasks whose input is only an image (describe); answer's source is the question itself. */
  instruction: string;
  /** Most target tokens generated at inference. */
  maxNewTokens: number;
  /** Why the task cannot be trained yet, when it cannot. */
  unavailable?: string;
}

export const TASKS: Readonly<Record<TaskName, TaskInfo>> = Object.freeze({
  describe: { instruction: ' what does the image describe?', maxNewTokens: 64 },
  answer: { instruction: '', maxNewTokens: 16 },
  design: {
    instruction: ' what is the complete image? caption:',
    maxNewTokens: 64,
    unavailable: 'needs the VQ image tokenizer trained first as a stage of `m6 train` (src/model/vq.ts exists; the stage that trains it and turns images into codes is not wired into training yet)',
  },
  embed: { instruction: ' does the image match the text?', maxNewTokens: 1, unavailable: 'the contrastive/matching objective is not implemented yet' },
});
