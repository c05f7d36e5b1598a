// What is fuzzed, each as a reader of one file: the manifest readers (CSV and JSONL, through
// readDataset with the columns a catalog uses), the dataset spec file (YAML/JSON, then resolved),
// and the safetensors header. A reader may accept a file or refuse it; a refusal must be an
// InputError (what the CLI prints as one line) with a one-line message, naming the file where the
// reader is the one that opened it; anything else (a TypeError, a RangeError from deep inside) is a bug.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { readDataset } from '../../src/data/manifest.js';
import { readSafetensorsHeader } from '../../src/io/safetensorsHeader.js';
import { InputError } from '../../src/torch/inputError.js';
import { fixtures } from '../helpers.js';
import { fileBytes } from './mutate.js';

export interface FuzzTarget {
  /** The fuzzed file's extension (readers pick their format by it). */
  ext: string;
  input: fc.Arbitrary<Uint8Array>;
  /** Reads the file; resolves when it is accepted, throws when it is refused. */
  read(file: string): Promise<unknown>;
  /** Whether every refusal must name the file (false where a later stage checks values, not the file). */
  namesFile: (err: InputError) => boolean;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');

const CSV_SEEDS = [
  'image,title,label,id\na.jpg,Red hat,hat,1\n"b.jpg","A ""quoted"", title",shirt,2\nc.jpg,,hat,3\n',
  'image\ttitle\tlabel\tid\na.jpg\tBlue dress\tdress\t9\n',
  '\ufeffimage;title;label;id\r\nx/y.png;Caf\u00e9 \u4f60\u597d;hat;1\r\n',
].map(utf8);
const CSV_TOKENS = [',', ';', '\t', '|', '"', '""', '\n', '\r\n', 'image', 'title', 'label', 'id', '../', '/', 'a.jpg', ' '];

const JSONL_SEEDS = [
  '{"image":"a.jpg","title":"Hat","label":"hat","id":"1"}\n{"image":"b.jpg","title":"Cap","label":"cap","id":2,"tags":["x",{"y":null}]}\n',
  '{"image":"c.jpg","title":"\\u00e9\\ud83d\\ude00","label":"hat","id":"3","qa":[{"question":"q","answer":"a"}]}\n\n[1]\nnull\n',
].map(utf8);
const JSONL_TOKENS = ['{', '}', '[', ']', '"', ':', ',', '\n', 'null', 'true', '1e999', '-0', '"image"', '"title"', '"label"', '"id"', '\\u0000', '\\ud800', '"__proto__"', '{"a":'];

const SPEC_SEEDS = [
  'manifest: sub/items.csv\nimage-root: pics\nimage_col: image\ntextCol: [title, description]\nsplit: {train: 0.9, test: 0.1}\n',
  'manifest: items.tsv\nformat: tsv\ncolumns: image,id\njoin: {file: classes.csv, on: id=Class ID}\ntext_file_col: desc\nlabel_col: Class Name\nsplit_seed: 3\n',
  'interactions: events.csv\nuser_col: user\nitem_col: item\ntime_col: ts\nevent_col: kind\nevents: [buy, view]\nbaskets: {file: outfits.csv, userCol: outfit}\n',
  'image_folder: photos\nsplit: train:0.8,val:0.1,test:0.1\nsplit_seed: 7\n',
].map(utf8);
const SPEC_TOKENS = [': ', '- ', '[', ']', '{', '}', ',', '\n', '  ', '&a ', '*a', '<<: *a\n', '!!str ', '!!binary ', '!!js/function ', '---\n', '...\n', '|\n', '>\n', '"', "'", '# ', '\t', '? ', '~', 'null', '1e999', '0x1f', '.nan',
  'manifest', 'split', 'join', 'baskets', 'columns', 'delimiter', 'format', 'text_col', 'split_group_col', 'interactions', 'image_folder', 'train:0.9', '=', 'tab'];

/** A safetensors file by hand (8-byte length, JSON header, data), as the seeds and structured inputs need. */
function safetensors(header: unknown, data: number, lengthDelta = 0): Uint8Array {
  const json = utf8(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Math.max(0, json.length + lengthDelta)));
  return Buffer.concat([len, json, Buffer.alloc(data)]);
}
const ST_SEEDS = [
  readFileSync(join(fixtures, 'reference.safetensors')),
  safetensors({ __metadata__: { format: 'pt' }, w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] }, b: { dtype: 'BF16', shape: [3], data_offsets: [24, 30] } }, 30),
  safetensors({ e: { dtype: 'I64', shape: [0], data_offsets: [0, 0] }, s: { dtype: 'BOOL', shape: [], data_offsets: [0, 1] } }, 1),
];
const ST_TOKENS = ['{', '}', '"dtype"', '"shape"', '"data_offsets"', '"F32"', '"F8"', '[', ']', '-1', '1e20', '9007199254740993', 'null', '"__metadata__"', ':', ','];

/** A structured safetensors input: a header of random entries (valid-looking or not), a length field that may lie, data of any size. */
function structuredSafetensors(): fc.Arbitrary<Uint8Array> {
  const entry = fc.oneof(
    fc.record({
      dtype: fc.oneof(fc.constantFrom('F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'U64'), fc.jsonValue()),
      shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 64 }), { maxLength: 4 }), fc.jsonValue()),
      data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -8, max: 512 }), fc.integer({ min: -8, max: 512 })), fc.jsonValue()),
    }, { requiredKeys: [] }),
    fc.jsonValue(),
  );
  return fc.tuple(fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constant('__metadata__')), entry, { maxKeys: 6 }), fc.integer({ min: 0, max: 600 }), fc.oneof(fc.constant(0), fc.integer({ min: -16, max: 16 })))
    .map(([header, data, delta]) => safetensors(header, data, delta));
}

export const TARGETS: Record<string, FuzzTarget> = {
  csv: {
    ext: '.csv',
    input: fileBytes(CSV_SEEDS, CSV_TOKENS),
    read: (file) => readDataset(resolveDatasetSpec({ manifest: file, imageCol: 'image', textCol: 'title', labelCol: 'label', idCol: 'id', split: 'train:0.9,test:0.1' })),
    namesFile: (err) => /items\.csv/.test(err.message),
  },
  jsonl: {
    ext: '.jsonl',
    input: fileBytes(JSONL_SEEDS, JSONL_TOKENS),
    read: (file) => readDataset(resolveDatasetSpec({ manifest: file, imageCol: 'image', textCol: 'title', labelCol: 'label', idCol: 'id' })),
    namesFile: (err) => /items\.jsonl/.test(err.message),
  },
  spec: {
    ext: '.yaml',
    input: fileBytes(SPEC_SEEDS, SPEC_TOKENS),
    // Reading the file names it in every refusal; resolving checks values that a flag may have set too.
    read: async (file) => resolveDatasetSpec(loadDatasetSpecFile(file)),
    namesFile: (err) => /items\.yaml/.test(err.message) || !/^dataset spec /.test(err.message),
  },
  safetensors: {
    ext: '.safetensors',
    input: fc.oneof({ weight: 3, arbitrary: fileBytes(ST_SEEDS, ST_TOKENS, 4096) }, { weight: 1, arbitrary: structuredSafetensors() }),
    read: async (file) => readSafetensorsHeader(file),
    namesFile: (err) => /items\.safetensors/.test(err.message),
  },
};

/** The harness's own check: a reader that never returns on one input must be reported as a hang, with that input. */
TARGETS.hang = {
  ext: '.txt',
  input: fc.constantFrom(utf8('fine'), utf8('spin')),
  read: async (file) => { if (readFileSync(file, 'utf8') === 'spin') for (;;) { /* hangs */ } },
  namesFile: () => true,
};

