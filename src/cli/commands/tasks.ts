// The task verbs on a trained run folder: `m6 describe --run R IMAGE…` and
// `m6 answer --run R [--image IMG] "question"…`. Each loads the model once and handles many inputs;
// an input that fails (an unreadable image) is reported on its own line and the rest go on
// (exit 1 when any failed).
import type { Command } from 'commander';
import { TASKS } from '../../tasks/instructions.js';
import type { TextResult } from '../../pipelines/index.js';
import { UsageError } from '../errors.js';
import { numberFlag } from '../flags.js';
import { openPipeline } from '../openPipeline.js';

interface Printed { input: string; image?: string; text?: string; error?: string }

function print(rows: Printed[], json: boolean): void {
  if (json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  for (const r of rows) {
    if (r.error !== undefined) console.error(`${r.input}: error: ${r.error}`);
    else console.log(`${r.input}\t${r.text}`);
  }
}

function finish(rows: Printed[]): void {
  const failed = rows.filter((r) => r.error !== undefined).length;
  if (failed > 0) throw new UsageError(`${failed} of ${rows.length} inputs failed (see above)`, 1);
}

export function registerTasks(program: Command): void {
  program
    .command('describe <images...>')
    .description('describe product images with a trained run: one line per image (file, tab, text)')
    .requiredOption('--run <dir>', 'run folder of m6 train (its newest checkpoint) or one checkpoint folder')
    .option('--max-tokens <n>', 'most tokens per description', String(TASKS.describe.maxNewTokens))
    .option('--beams <n>', 'beam search width (1: greedy)', '1')
    .option('--json', 'print a JSON array of {input, text | error}')
    .action(async (images: string[], flags: { run: string; maxTokens: string; beams: string; json?: boolean }) => {
      const maxNewTokens = numberFlag('--max-tokens', flags.maxTokens, { integer: true, min: 1 });
      const numBeams = numberFlag('--beams', flags.beams, { integer: true, min: 1 });
      using m6 = await openPipeline(flags.run, 'describe');
      const results = await m6.describe(images, { maxNewTokens, numBeams });
      const rows = results.map((r: TextResult, i): Printed => (r.ok ? { input: images[i]!, text: r.text } : { input: images[i]!, error: r.error }));
      print(rows, flags.json === true);
      finish(rows);
    });

  program
    .command('answer <questions...>')
    .description('answer questions about a product (with --image) or in general, with a trained run')
    .requiredOption('--run <dir>', 'run folder of m6 train (its newest checkpoint) or one checkpoint folder')
    .option('--image <file>', 'the product image the questions are about')
    .option('--max-tokens <n>', 'most tokens per answer', String(TASKS.answer.maxNewTokens))
    .option('--json', 'print a JSON array of {input, image, text | error}')
    .action(async (questions: string[], flags: { run: string; image?: string; maxTokens: string; json?: boolean }) => {
      const maxNewTokens = numberFlag('--max-tokens', flags.maxTokens, { integer: true, min: 1 });
      using m6 = await openPipeline(flags.run, 'answer');
      const results = await m6.answer(questions, { maxNewTokens, ...(flags.image !== undefined ? { image: flags.image } : {}) });
      const rows = results.map((r, i): Printed => ({
        input: questions[i]!, ...(flags.image !== undefined ? { image: flags.image } : {}), ...(r.ok ? { text: r.text } : { error: r.error }),
      }));
      print(rows, flags.json === true);
      finish(rows);
    });
}
