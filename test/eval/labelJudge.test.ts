// Judging which label a generated description names (exact when the target is the label, else the
// first label mentioned), the accuracy and majority baseline built on it, and the seeded --limit draw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataRow } from '../../src/data/manifest.js';
import { judgeDescriptions, type DescribeRecord } from '../../src/eval/describeEval.js';
import { sampleExamples } from '../../src/eval/evaluation.js';
import { LabelJudge, normaliseLabelText } from '../../src/eval/labelJudge.js';
import type { CatalogItem } from '../../src/eval/syntheticEval.js';

const CLOTHING = ['T-Shirt', 'Shirt', 'Shorts', 'Not sure', 'Pants', 'Longsleeve'];

test('normalising label text: case, hyphens, underscores and punctuation do not matter', () => {
  assert.equal(normaliseLabelText('  Golden-Delicious. '), 'golden delicious');
  assert.equal(normaliseLabelText('GOLDEN_DELICIOUS'), 'golden delicious');
  assert.equal(normaliseLabelText('Not  sure!'), 'not sure');
  assert.equal(normaliseLabelText('Äpple/Päron'), 'äpple päron');
});

test('exact: the whole description must be the label, nothing more', () => {
  const judge = new LabelJudge(CLOTHING);
  assert.equal(judge.exact('t-shirt'), 'T-Shirt');
  assert.equal(judge.exact('T SHIRT.'), 'T-Shirt');
  assert.equal(judge.exact('not sure'), 'Not sure');
  assert.equal(judge.exact('t-shirt shirt'), null);
  assert.equal(judge.exact('shir'), null);
});

test('first mention: leftmost label name, whole words, longest on a tie, plural s allowed', () => {
  const judge = new LabelJudge(CLOTHING);
  assert.equal(judge.firstMentioned('A white t-shirt worn under a shirt'), 'T-Shirt', '"shirt" inside "t-shirt" is not a mention of Shirt');
  assert.equal(judge.firstMentioned('a shirt, then a t-shirt'), 'Shirt');
  assert.equal(judge.firstMentioned('two pairs of pants'), 'Pants');
  assert.equal(judge.firstMentioned('blue shirts'), 'Shirt');
  assert.equal(judge.firstMentioned('shirtsleeve pantsuit'), null, 'no partial words');
  assert.equal(judge.firstMentioned(''), null);
  const grocery = new LabelJudge(['Orange', 'Orange-Juice', 'Bravo-Orange-Juice', 'Golden-Delicious', 'Granny-Smith']);
  assert.equal(grocery.firstMentioned('Orange juice from concentrate'), 'Orange-Juice');
  assert.equal(grocery.firstMentioned('Bravo Orange Juice is made of oranges'), 'Bravo-Orange-Juice');
  assert.equal(grocery.firstMentioned('Golden Delicious: sweeter than Granny Smith'), 'Golden-Delicious');
  assert.throws(() => new LabelJudge(['---', '']), /no label has a name/);
});

test('the rule follows the target: exact when the target is the label, else first mention', () => {
  const judge = new LabelJudge(['Golden-Delicious', 'Granny-Smith']);
  assert.deepEqual(judge.judge('golden delicious', 'Golden-Delicious', 'Golden-Delicious'), { predicted: 'Golden-Delicious', rule: 'exact' });
  assert.deepEqual(judge.judge('golden delicious apple', 'Golden-Delicious', 'Golden-Delicious'), { predicted: null, rule: 'exact' });
  assert.deepEqual(
    judge.judge('Granny-Smith\nA green apple', 'Golden-Delicious\nGolden Delicious has a white juicy pulp', 'Golden-Delicious'),
    { predicted: 'Granny-Smith', rule: 'first-mention' },
  );
});

function record(id: string, generated: string, reference: string): DescribeRecord {
  return { id, image: `${id}.jpg`, reference, generated };
}

function row(id: string, label?: string): DataRow {
  return { id, source: 'm.csv', row: 1, imagePath: `/x/${id}.jpg`, ...(label !== undefined ? { label } : {}) };
}

test('category accuracy from labelled rows: per-item records, accuracy and the majority baseline', () => {
  // Vocabulary from every row, held out or not: 'Pants' only appears in a training row.
  const rows = [row('a', 'T-Shirt'), row('b', 'T-Shirt'), row('c', 'Shirt'), row('d', 'T-Shirt'), row('train', 'Pants'), row('nolabel')];
  const items = [record('a', 't-shirt', 'T-Shirt'), record('b', 'pants', 'T-Shirt'), record('c', 'Shirt.', 'Shirt'), record('d', 'tshirt', 'T-Shirt'), record('nolabel', 'shirt', 'x')];
  const judged = judgeDescriptions(items, { rows });
  assert.equal(judged.metrics.categoryAccuracy, 2 / 4, 'a and c right; b names Pants; d names nothing; the unlabelled item is not counted');
  assert.equal(judged.baselines.categoryAccuracy, 3 / 4);
  assert.deepEqual(items.map((d) => [d.predicted, d.labelOk, d.rule]), [
    ['T-Shirt', true, 'exact'], ['Pants', false, 'exact'], ['Shirt', true, 'exact'], [null, false, 'exact'], [undefined, undefined, undefined],
  ]);
  assert.match(judged.notes.join('\n'), /over 4 labelled item\(s\), 3 labels: the target is the label.*; 1 name no label/);

  const none = judgeDescriptions([record('a', 'x', 'y')], { rows: [row('a')] });
  assert.deepEqual(none.metrics, {});
  assert.match(none.notes[0]!, /no labels .*--label-col/);
});

test('category and colour accuracy on the synthetic catalog use its words and exact truth', () => {
  const item = (id: string, category: string, colour: string): CatalogItem => ({ id, image: `${id}.png`, category, colour, title: '', description: '', qa: [] });
  const catalog = new Map([['p1', item('p1', 't-shirt', 'red')], ['p2', item('p2', 'dress', 'blue')], ['p3', item('p3', 'dress', 'red')]]);
  const items = [record('p1', 'Red Striped T-Shirt', ''), record('p2', 'Blue Dress', ''), record('p3', 'Navy Plain Skirt', '')];
  const judged = judgeDescriptions(items, { catalog, catalogFile: '/c/catalog.jsonl' });
  assert.equal(judged.metrics.categoryAccuracy, 2 / 3);
  assert.equal(judged.metrics.colourAccuracy, 2 / 3);
  assert.equal(judged.baselines.categoryAccuracy, 2 / 3);
  assert.equal(judged.baselines.colourAccuracy, 2 / 3);
  assert.deepEqual(items.map((d) => [d.predicted, d.predictedColour, d.rule]), [['t-shirt', 'red', 'catalog'], ['dress', 'blue', 'catalog'], ['skirt', 'navy', 'catalog']]);
});

test('--limit draws a seeded sample and keeps data order', () => {
  const examples = Array.from({ length: 50 }, (_, i) => ({ id: `item${i}` }));
  const a = sampleExamples(examples, 10, 0);
  assert.equal(a.length, 10);
  assert.deepEqual(sampleExamples(examples, 10, 0), a, 'same seed, same sample');
  const index = a.map((e) => Number(e.id.slice(4)));
  assert.deepEqual(index, [...index].sort((x, y) => x - y), 'data order');
  assert.notDeepEqual(index, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'not simply the first ten');
  assert.notDeepEqual(sampleExamples(examples, 10, 1), a, 'another seed, another sample');
  assert.equal(sampleExamples(examples, undefined).length, 50);
  assert.equal(sampleExamples(examples, 500).length, 50);
});
