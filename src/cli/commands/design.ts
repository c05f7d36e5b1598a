// `m6 design --run R "prompt"… --n 4 --out DIR [--seed S] [--temperature T --top-k K --top-p P] [--json]`:
// product images from text with a run trained on design. The run (model, tokenizer, VQ) loads once;
// each prompt gets n sampled images written as PNG files, one line per file (prompt, tab, path).
// A bad prompt (empty, too long) is reported on its own line and the rest go on (exit 1 when any failed).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { asUsageError, UsageError } from '../errors.js';
import { openPipeline } from '../openPipeline.js';
import { addSamplingOptions, samplingFromFlags, type SamplingFlags } from '../samplingOptions.js';
import { numberFlag } from '../flags.js';

interface DesignFlags extends SamplingFlags {
  run: string;
  n: string;
  out: string;
  seed: string;
  json?: boolean;
}

interface Printed { input: string; files?: string[]; error?: string }

/** A short file-name part from a prompt: lower-case ASCII words joined by '-', at most 40 characters. */
export function promptSlug(prompt: string): string {
  return prompt.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '');
}

export function registerDesign(program: Command): void {
  addSamplingOptions(program
    .command('design <prompts...>')
    .description('design product images from text prompts with a run trained on design: n PNG files per prompt')
    .requiredOption('--run <dir>', 'run folder of m6 train (its newest checkpoint and vq.safetensors) or one checkpoint folder')
    .requiredOption('--out <dir>', 'folder for the PNG files (created if missing)')
    .option('--n <count>', 'images per prompt', '4')
    .option('--seed <n>', 'sampling seed: the same seed and prompt give the same images', '0'))
    .option('--json', 'print a JSON array of {input, files | error}')
    .action(async (prompts: string[], flags: DesignFlags) => {
      const n = numberFlag('--n', flags.n, { integer: true, min: 1 });
      const seed = numberFlag('--seed', flags.seed, { integer: true, min: 0 });
      const sampling = samplingFromFlags(flags);
      const out = resolve(flags.out);
      using m6 = await openPipeline(flags.run, 'design');
      const results = await m6.design(prompts, { n, seed, ...sampling }).catch((err: unknown) => { throw asUsageError(err); });
      mkdirSync(out, { recursive: true });
      const rows: Printed[] = results.map((r, i) => {
        if (!r.ok) return { input: prompts[i]!, error: r.error };
        const slug = promptSlug(prompts[i]!);
        const files = r.images.map((image, k) => {
          const file = join(out, `${String(i + 1).padStart(2, '0')}${slug ? `-${slug}` : ''}-${k + 1}.png`);
          writeFileSync(file, image.png);
          return file;
        });
        return { input: prompts[i]!, files };
      });
      if (flags.json === true) console.log(JSON.stringify(rows, null, 2));
      else for (const r of rows) {
        if (r.error !== undefined) console.error(`${r.input}: error: ${r.error}`);
        else for (const f of r.files!) console.log(`${r.input}\t${f}`);
      }
      const failed = rows.filter((r) => r.error !== undefined).length;
      if (failed > 0) throw new UsageError(`${failed} of ${rows.length} prompts failed (see above)`, 1);
    });
}
