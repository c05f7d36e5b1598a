// The choice of how the generative loss averages, apart from objectives.ts so that the CLI can name
// it without loading the engine.

/**
 * How a batch's generative loss averages over its target tokens.
 * - 'tokens': every target token weighs the same (the token-mean of GPT, OFA and Hugging Face). In a
 *   multitask batch a task's share of the objective is then its share of the tokens: a design row's
 *   64 image codes outweigh a one-word answer 64 to 1.
 * - 'rows': every row weighs the same (each row's token-mean, averaged over rows), so a task's share
 *   of the objective is its share of the rows, i.e. its mixture weight.
 */
export type LossMean = 'tokens' | 'rows';
export const LOSS_MEANS: readonly LossMean[] = ['tokens', 'rows'];
/** What `m6 train` uses unless told, and what a checkpoint from before the choice trained with. */
export const DEFAULT_LOSS_MEAN: LossMean = 'tokens';
