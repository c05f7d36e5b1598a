import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assignSplit, DatasetSpecError, loadDatasetSpecFile, parseDelimiter, parseSplitFractions, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { unitHash } from '../../src/data/random.js';
import { tempDir } from './fixtures.js';

test('split fractions parse from a string or an object and must add up to 1', () => {
  assert.deepEqual(parseSplitFractions('train:0.9,test:0.1'), [{ name: 'train', fraction: 0.9 }, { name: 'test', fraction: 0.1 }]);
  assert.deepEqual(parseSplitFractions({ train: 0.8, val: 0.2 }), [{ name: 'train', fraction: 0.8 }, { name: 'val', fraction: 0.2 }]);
  assert.throws(() => parseSplitFractions('train:0.9,test:0.2'), /add up to 1/);
  assert.throws(() => parseSplitFractions('train=0.9'), /name:fraction/);
  assert.throws(() => parseSplitFractions('train:-0.5,test:1.5'), />= 0/);
});

test('splits are stable per row id: order and other rows do not matter', () => {
  const split = parseSplitFractions('train:0.9,test:0.1');
  const ids = Array.from({ length: 4000 }, (_v, i) => `item-${i}`);
  const first = new Map(ids.map((id) => [id, assignSplit(id, split, 5, unitHash)]));
  const reversed = ids.slice().reverse().slice(0, 1000);
  for (const id of reversed) assert.equal(assignSplit(id, split, 5, unitHash), first.get(id));
  const test = [...first.values()].filter((s) => s === 'test').length;
  assert.ok(test > 300 && test < 500, `test split got ${test} of 4000`);
  const otherSeed = ids.filter((id) => assignSplit(id, split, 6, unitHash) !== first.get(id)).length;
  assert.ok(otherSeed > 0, 'another --split-seed should move some rows');
});

test('delimiters by name or character', () => {
  assert.equal(parseDelimiter('tab'), '\t');
  assert.equal(parseDelimiter(';'), ';');
  assert.throws(() => parseDelimiter('::'), DatasetSpecError);
});

test('flags resolve: TSV by extension, image root defaults to the manifest folder', () => {
  const spec = resolveDatasetSpec({ manifest: 'data/items.tsv', imageCol: 'img', imageExt: 'jpg', textCol: 'title, description', split: 'train:0.5,test:0.5', splitSeed: '3' }, '/work');
  assert.equal(spec.manifest, '/work/data/items.tsv');
  assert.equal(spec.delimiter, '\t');
  assert.equal(spec.imageRoot, '/work/data');
  assert.equal(spec.imageExt, '.jpg');
  assert.deepEqual(spec.textCols, ['title', 'description']);
  assert.equal(spec.splitSeed, 3);
  assert.equal(resolveDatasetSpec({ manifest: 'a.jsonl' }, '/w').format, 'jsonl');
});

test('conflicting or missing sources are errors that say what to do', () => {
  assert.throws(() => resolveDatasetSpec({}), /exactly one of --manifest/);
  assert.throws(() => resolveDatasetSpec({ manifest: 'a.csv', imageFolder: 'x' }), /exactly one of/);
  assert.throws(() => resolveDatasetSpec({ manifest: 'a.csv', split: 'train:1', splitCol: 's' }), /not both/);
  assert.throws(() => resolveDatasetSpec({ manifest: 'a.csv', splitSeed: 'x' }), /--split-seed must be an integer/);
  assert.throws(() => resolveDatasetSpec({ manifest: 'a.csv', join: 'b.csv' }), /--join-on/);
});

test('a YAML spec file: kebab or camel keys, paths relative to the file', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'data.yaml');
  writeFileSync(file, 'manifest: sub/items.csv\nimage-root: pics\nimage_col: image\ntextCol: [title, description]\nsplit: {train: 0.9, test: 0.1}\n');
  const spec = resolveDatasetSpec(loadDatasetSpecFile(file), '/elsewhere');
  assert.equal(spec.manifest, join(dir, 'sub/items.csv'));
  assert.equal(spec.imageRoot, join(dir, 'pics'));
  assert.deepEqual(spec.textCols, ['title', 'description']);
  assert.deepEqual(spec.split?.map((s) => s.name), ['train', 'test']);
});

test('a JSON spec file with an unknown key lists the known keys', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'data.json');
  writeFileSync(file, JSON.stringify({ manifest: 'a.csv', imageColumn: 'x' }));
  assert.throws(() => loadDatasetSpecFile(file), (err: Error) => err instanceof DatasetSpecError && /unknown key 'imageColumn'/.test(err.message) && /imageCol/.test(err.message));
  writeFileSync(file, '{not json');
  assert.throws(() => loadDatasetSpecFile(file), /not valid JSON/);
  assert.throws(() => loadDatasetSpecFile(join(dir, 'missing.json')), /dataset spec .*missing\.json does not exist/);
});

test('a malformed YAML spec, or a value of the wrong type, is one line naming the file and key', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'data.yaml');
  const refused = (text: string, re: RegExp) => {
    writeFileSync(file, text);
    assert.throws(() => resolveDatasetSpec(loadDatasetSpecFile(file)), (e: Error) => e instanceof DatasetSpecError && e.message.includes(file) && re.test(e.message) && !e.message.includes('\n'), text);
  };
  refused('manifest: [unclosed\n  image_col: x\n', /is not valid YAML: /);
  refused('manifest: a.csv\n\tbad: tab\n', /is not valid YAML: /);
  refused('- a list\n', /must be an object of settings/);
  refused('manifest: {a: 1}\n', /'manifest' must be a string, got \{"a":1\}/);
  refused('manifest: a.csv\ntext_col: {title: 1}\n', /'text_col' must be a string or a list of strings/);
  refused('manifest: a.csv\nsplit: [0.9, 0.1]\n', /'split' must be name:fraction pairs/);
  refused('manifest: a.csv\njoin: {on: a=b}\n', /'join' must be a file path, or an object with a "file" path/);
  writeFileSync(file, 'manifest: a.csv\nid_col: 2024\ntext_col: [title, 7]\n');
  const spec = resolveDatasetSpec(loadDatasetSpecFile(file));
  assert.equal(spec.idCol, '2024');
  assert.deepEqual(spec.textCols, ['title', '7']);
  mkdirSync(join(dir, 'folder.yaml'));
  assert.throws(() => loadDatasetSpecFile(join(dir, 'folder.yaml')), /dataset spec .*folder\.yaml is a folder, expected a file/);
});
