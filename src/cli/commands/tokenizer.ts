// `m6 tokenizer train <spec> --vocab N --out tokenizer.json`: learn the byte-level BPE from the
// text of a dataset (its --text-col columns) and/or plain text files, and write it in Hugging
// Face's tokenizer.json format.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { BpeTrainer } from '../../data/bpe.js';
import { DatasetSpecError } from '../../data/datasetSpec.js';
import { readDataset } from '../../data/manifest.js';
import { DEFAULT_IMAGE_CODES, DEFAULT_TASK_TOKENS, Tokenizer } from '../../data/tokenizer.js';
import { addDatasetOptions, datasetSpecFromFlags, type DatasetFlags } from '../datasetOptions.js';
import { UsageError } from '../errors.js';

function nonNegativeInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a non-negative integer, got '${value}'`);
  return n;
}

export function registerTokenizer(program: Command): void {
  const tokenizer = program.command('tokenizer').description('train and try the text tokenizer');

  addDatasetOptions(
    tokenizer
      .command('train [spec]')
      .description('train a byte-level BPE on a dataset\'s text and write tokenizer.json (Hugging Face format)')
      .requiredOption('--vocab <n>', 'text vocabulary size: special + task tokens + 256 bytes + merges')
      .requiredOption('--out <file>', 'where to write tokenizer.json')
      .option('--text-file <files...>', 'plain UTF-8 text files to train on as well (or instead of a dataset)')
      .option('--image-codes <n>', 'reserved <img_k> tokens for the VQ image tokenizer', String(DEFAULT_IMAGE_CODES))
      .option('--task-tokens <tokens>', 'special task tokens, comma-separated', DEFAULT_TASK_TOKENS.join(','))
      .option('--min-frequency <n>', 'stop merging when the best pair is rarer than this', '2'),
  ).action(async (spec: string | undefined, flags: DatasetFlags & { vocab: string; out: string; textFile?: string[]; imageCodes: string; taskTokens: string; minFrequency: string }) => {
    const { vocab, out, textFile, imageCodes, taskTokens, minFrequency, ...datasetFlags } = flags;
    const trainer = new BpeTrainer();
    let texts = 0;
    const started = Date.now();
    const hasDataset = spec !== undefined || Object.values(datasetFlags).some((v) => v !== undefined);
    if (hasDataset) {
      const resolved = datasetSpecFromFlags(datasetFlags, spec);
      if (resolved.textCols.length === 0 && resolved.textFileCols.length === 0) {
        throw new UsageError('the dataset has no text to train on: give --text-col NAME[,NAME…] (or --text-file-col)');
      }
      try {
        const dataset = await readDataset(resolved);
        for (const row of dataset.rows) {
          if (row.text !== undefined) {
            trainer.feed(row.text);
            texts++;
          }
        }
        if (dataset.bad.total > 0) console.error(`skipped ${dataset.bad.total} bad rows (see m6 data inspect)`);
      } catch (err) {
        if (err instanceof DatasetSpecError) throw new UsageError(err.message);
        throw err;
      }
    }
    for (const file of textFile ?? []) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read --text-file ${file}: ${(err as Error).message}`);
      }
      for (const line of text.split('\n')) {
        trainer.feed(line + '\n');
        texts++;
      }
    }
    if (texts === 0) throw new UsageError('nothing to train on: give a dataset with --text-col, or --text-file FILE');
    let tok: Tokenizer;
    try {
      tok = Tokenizer.fromTrainer(trainer, {
        vocabSize: nonNegativeInt('--vocab', vocab),
        imageCodes: nonNegativeInt('--image-codes', imageCodes),
        taskTokens: taskTokens.split(',').map((t) => t.trim()).filter((t) => t.length > 0),
        minFrequency: nonNegativeInt('--min-frequency', minFrequency),
      });
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    await tok.save(out);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const merged = tok.textVocabSize - tok.specialTokens.length - 256;
    console.log(`wrote ${out}: ${tok.vocabSize} tokens (${tok.specialTokens.length} special, 256 bytes, ${merged} merges, ${tok.imageCodes} image codes) from ${texts} texts in ${seconds}s`);
  });
}
