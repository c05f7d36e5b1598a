// The image-sampling flags of the verbs that design (`m6 design`, and `m6 eval` for its design task),
// so they spell, default and check them the same way.
import type { Command } from 'commander';
import type { SamplingOptions } from '../model/sampling.js';
import { DESIGN_GUIDANCE, DESIGN_SAMPLING } from '../tasks/instructions.js';
import { UsageError } from './errors.js';
import { numberFlag } from './flags.js';

export interface SamplingFlags {
  temperature?: string;
  topK?: string;
  topP?: string;
  guidance?: string;
}

/** Sampling of image codes: SamplingOptions and the classifier-free guidance scale. */
export interface DesignSampling extends SamplingOptions {
  guidance?: number;
}

export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--temperature <t>', `sampling temperature of the image codes (default ${DESIGN_SAMPLING.temperature})`)
    .option('--top-k <k>', `sample among the k likeliest codes (default ${DESIGN_SAMPLING.topK}; 0: all)`)
    .option('--top-p <p>', `nucleus sampling: the likeliest codes holding probability p (default ${DESIGN_SAMPLING.topP})`)
    .option('--guidance <s>', `classifier-free guidance: codes drawn from u + s·(c − u) of the prompted and unprompted logits, at twice the compute (default ${DESIGN_GUIDANCE} for a run trained with design prompts dropped, else 1 = none)`);
}

/** The flags given, checked; the ones left out are left out (the defaults apply downstream). */
export function samplingFromFlags(flags: SamplingFlags): DesignSampling {
  const sampling: DesignSampling = {
    ...(flags.temperature !== undefined ? { temperature: numberFlag('--temperature', flags.temperature, { positive: true }) } : {}),
    ...(flags.topK !== undefined ? { topK: numberFlag('--top-k', flags.topK, { integer: true, min: 0 }) } : {}),
    ...(flags.topP !== undefined ? { topP: numberFlag('--top-p', flags.topP, { positive: true }) } : {}),
    ...(flags.guidance !== undefined ? { guidance: numberFlag('--guidance', flags.guidance, { min: 0 }) } : {}),
  };
  if (sampling.topP !== undefined && sampling.topP > 1) throw new UsageError(`--top-p must be in (0, 1], got '${flags.topP}'`);
  return sampling;
}
