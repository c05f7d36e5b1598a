// `m6 embed --run R (--image IMG… | --text T…)`: vectors of the embed task, one per input, in the
// space where an image and the text that describes it lie close (cosine = dot product: the vectors
// are unit length). Loads the run once; a bad input is reported on its own and the rest go on.
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { openPipeline } from '../openPipeline.js';

interface EmbedFlags { run: string; image?: string[]; text?: string[]; json?: boolean }

export function registerEmbed(program: Command): void {
  program
    .command('embed')
    .description('embed product images and/or texts with a trained run: one unit vector per input')
    .requiredOption('--run <dir>', 'run folder of m6 train (its newest checkpoint) or one checkpoint folder')
    .option('--image <files...>', 'images to embed')
    .option('--text <texts...>', 'texts to embed (queries, titles)')
    .option('--json', 'print a JSON array of {input, kind, vector | error}')
    .action(async (flags: EmbedFlags) => {
      const images = flags.image ?? [], texts = flags.text ?? [];
      if (images.length === 0 && texts.length === 0) throw new UsageError('give --image FILE… and/or --text TEXT…: what to embed');
      using m6 = await openPipeline(flags.run, 'embed');
      const results = [
        ...(await m6.embed({ images })).map((r, i) => ({ input: images[i]!, kind: 'image', r })),
        ...(await m6.embed({ texts })).map((r, i) => ({ input: texts[i]!, kind: 'text', r })),
      ];
      const round = (v: Float32Array) => Array.from(v, (x) => Number(x.toFixed(6)));
      if (flags.json === true) {
        console.log(JSON.stringify(results.map(({ input, kind, r }) => (r.ok ? { input, kind, vector: round(r.vector) } : { input, kind, error: r.error }))));
      } else {
        for (const { input, kind, r } of results) {
          if (r.ok) console.log(`${kind}\t${input}\t${round(r.vector).join(' ')}`);
          else console.error(`${input}: error: ${r.error}`);
        }
      }
      const failed = results.filter((x) => !x.r.ok).length;
      if (failed > 0) throw new UsageError(`${failed} of ${results.length} inputs failed (see above)`, 1);
    });
}
