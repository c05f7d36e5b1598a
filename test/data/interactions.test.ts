import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadRowLog } from '../../src/data/badRows.js';
import { DatasetSpecError, loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { formatInspectReport, inspectDataset } from '../../src/data/inspect.js';
import { describeInteractions, parseTime, readInteractions, type InteractionsSpec } from '../../src/data/interactions.js';
import { readDataset } from '../../src/data/manifest.js';
import { tempDir } from './fixtures.js';

function events(file: string, extra: Partial<InteractionsSpec> = {}): InteractionsSpec {
  return { file, format: 'events', userCol: 'user', itemCol: 'item', ...extra };
}

test('times: numbers and ISO dates; anything else is undefined', () => {
  assert.equal(parseTime('17'), 17);
  assert.equal(parseTime('2024-05-01'), Date.parse('2024-05-01'));
  assert.equal(parseTime('2024-05-01T12:30:00Z'), Date.parse('2024-05-01T12:30:00Z'));
  assert.equal(parseTime('yesterday'), undefined);
  assert.equal(parseTime('May 1 2024'), undefined);
  assert.equal(parseTime(''), undefined);
});

test('events: a stable sort on time, file order breaking ties, consecutive repeats collapsed', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'events.csv');
  writeFileSync(file, [
    'user,item,time,event',
    'u1,b,2,view',
    'u1,a,1,view',
    'u1,c,2,click',      // ties with b at time 2: file order puts b first
    'u1,c,3,cart',       // c again right after c: one step
    'u1,a,4,view',       // a again, not consecutive: a new step
    'u2,x,2024-01-02,view',
    'u2,y,2024-01-01T10:00:00Z,purchase',
  ].join('\n') + '\n');
  const log = await readInteractions(events(file, { timeCol: 'time', eventCol: 'event' }));
  assert.equal(log.ordered, true);
  assert.equal(log.rows, 7);
  assert.equal(log.bad.total, 0);
  assert.deepEqual(log.sequences.get('u1'), ['a', 'b', 'c', 'a']);
  assert.deepEqual(log.sequences.get('u2'), ['y', 'x']);
  assert.deepEqual(describeInteractions(log), { users: 2, items: 5, interactions: 6, length: { min: 2, median: 3, max: 4 } });
});

test('events filter keeps only the named events; they need an event column', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'events.tsv');
  writeFileSync(file, 'user\titem\tstep\tevent\nu1\ta\t1\tview\nu1\tb\t2\tclick\nu1\tc\t3\tpurchase\n');
  const log = await readInteractions(events(file, { delimiter: '\t', timeCol: 'step', eventCol: 'event', events: ['click', 'purchase'] }));
  assert.deepEqual(log.sequences.get('u1'), ['b', 'c']);
  assert.equal(log.rows, 2);
  assert.equal(log.filtered, 1);
  await assert.rejects(readInteractions(events(file, { delimiter: '\t', events: ['click'] })), DatasetSpecError);
});

test('no time column: each user is a basket, a set in first-appearance order', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'outfits.jsonl');
  writeFileSync(file, ['{"outfit":"o1","item":"top"}', '{"outfit":"o1","item":"skirt"}', '{"outfit":"o2","item":"dress"}', '{"outfit":"o1","item":"top"}'].join('\n') + '\n');
  const log = await readInteractions(events(file, { userCol: 'outfit' }));
  assert.equal(log.ordered, false);
  assert.deepEqual([...log.sequences], [['o1', ['top', 'skirt']], ['o2', ['dress']]]);
});

test('bad rows are counted with file, row and field, and skipped', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'events.csv');
  writeFileSync(file, 'user,item,time\nu1,a,1\n,b,2\nu1,,3\nu1,c,soon\nu1,d\nu1,e,5\n');
  const bad = new BadRowLog();
  const log = await readInteractions(events(file, { timeCol: 'time' }), { bad });
  assert.equal(log.bad, bad);
  assert.deepEqual(log.sequences.get('u1'), ['a', 'e']);
  assert.equal(log.rows, 2);
  assert.equal(bad.count('missing value'), 2);
  assert.equal(bad.count('unparsable time'), 1);
  assert.equal(bad.count('wrong field count'), 1);
  const time = bad.summary().find((s) => s.reason === 'unparsable time')!.examples[0]!;
  assert.deepEqual({ source: time.source, row: time.row, field: time.field, got: time.got }, { source: file, row: 5, field: 'time', got: "'soon'" });
  const user = bad.summary().find((s) => s.reason === 'missing value')!.examples[0]!;
  assert.deepEqual({ row: user.row, field: user.field }, { row: 3, field: 'user' });
});

test('a wrong column name is an error naming the columns there are', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'events.csv');
  writeFileSync(file, 'customer,sku\nu1,a\n');
  await assert.rejects(readInteractions(events(file)), (err: Error) => err instanceof DatasetSpecError && /--user-col 'user' is not a column/.test(err.message) && /'customer', 'sku'/.test(err.message));
});

test('sequences: `user item item …` per line, bad lines counted', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'Beauty.txt');
  writeFileSync(file, '1 1 2 3\n2 4  5\t6\n\n3\n1 7\n');
  const log = await readInteractions({ file, format: 'sequences', userCol: 'user', itemCol: 'item' });
  assert.equal(log.ordered, true);
  assert.deepEqual([...log.sequences], [['1', ['1', '2', '3', '7']], ['2', ['4', '5', '6']]]);
  assert.equal(log.rows, 3);
  assert.equal(log.bad.count('missing value'), 1);
  assert.equal(log.bad.summary()[0]!.examples[0]!.row, 4);
  await assert.rejects(readInteractions({ file: join(dir, 'absent.txt'), format: 'sequences', userCol: 'user', itemCol: 'item' }), /absent\.txt does not exist/);
});

test('dataset spec: interactions keys, the format sniffed, and no manifest needed', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'Beauty.txt'), '1 1 2 3\n');
  writeFileSync(join(dir, 'log.txt'), 'user,item\nu,a\n');
  const seq = resolveDatasetSpec({ interactions: 'Beauty.txt' }, dir);
  assert.equal(seq.manifest, undefined);
  assert.deepEqual(seq.interactions, { file: join(dir, 'Beauty.txt'), format: 'sequences', userCol: 'user', itemCol: 'item' });
  assert.equal(resolveDatasetSpec({ interactions: 'log.txt' }, dir).interactions!.format, 'events');
  assert.equal(resolveDatasetSpec({ interactions: 'x.jsonl' }, dir).interactions!.format, 'events');
  const ev = resolveDatasetSpec({ manifest: 'catalog.csv', interactions: 'events.tsv', userCol: 'shopper', timeCol: 'ts', eventCol: 'event', events: 'click, cart' }, dir);
  assert.deepEqual(ev.interactions, { file: join(dir, 'events.tsv'), format: 'events', delimiter: '\t', userCol: 'shopper', itemCol: 'item', timeCol: 'ts', eventCol: 'event', events: ['click', 'cart'] });
  assert.deepEqual(resolveDatasetSpec({ interactions: 'e.csv', eventCol: 'e', events: ['a', 'b'] }, dir).interactions!.events, ['a', 'b']);
  assert.throws(() => resolveDatasetSpec({ interactions: 'e.csv', events: 'click' }, dir), /--event-col/);
  assert.throws(() => resolveDatasetSpec({ interactions: 'e.csv', interactionsFormat: 'rows' }, dir), /events .* or sequences/);
  assert.throws(() => resolveDatasetSpec({ interactions: 'Beauty.txt', timeCol: 't' }, dir), /event tables only/);
  assert.throws(() => resolveDatasetSpec({}, dir), /--manifest FILE .* or --interactions FILE/);
  assert.throws(() => resolveDatasetSpec({ manifest: 'a.csv', imageFolder: 'imgs' }, dir), /not both/);
});

test('dataset spec file: interactions and baskets resolve against the file; unknown keys still fail', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'dataset.json');
  writeFileSync(file, JSON.stringify({ interactions: 'events.jsonl', user_col: 'shopper', time_col: 'step', baskets: { file: 'outfits.jsonl', userCol: 'outfit' } }));
  const spec = resolveDatasetSpec(loadDatasetSpecFile(file));
  assert.equal(spec.interactions!.file, join(dir, 'events.jsonl'));
  assert.equal(spec.interactions!.userCol, 'shopper');
  assert.deepEqual(spec.baskets, { file: join(dir, 'outfits.jsonl'), format: 'events', userCol: 'outfit', itemCol: 'item', baskets: true });
  writeFileSync(file, JSON.stringify({ interactions: 'events.jsonl', shopperCol: 'shopper' }));
  assert.throws(() => loadDatasetSpecFile(file), /unknown key 'shopperCol'/);
});

test('commands that need catalog rows fail clearly on an interactions-only spec', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'Beauty.txt'), '1 1 2 3\n');
  const spec = resolveDatasetSpec({ interactions: 'Beauty.txt' }, dir);
  await assert.rejects(readDataset(spec), (err: Error) => err instanceof DatasetSpecError && /needs catalog rows: give --manifest FILE/.test(err.message) && /Beauty\.txt holds interactions only/.test(err.message));
});

test('inspect reports users, items, interactions, lengths, order and bad rows', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'Beauty.txt'), '1 1 2 3\n2 2 3 4 5 6\n3\n4 1 9\n');
  writeFileSync(join(dir, 'outfits.csv'), 'basket,item\no1,a\no1,b\no2,a\n');
  const report = await inspectDataset(resolveDatasetSpec({ interactions: 'Beauty.txt', baskets: 'outfits.csv' }, dir));
  assert.equal(report.kind, 'interactions');
  assert.equal(report.usable, true);
  const { source, ...rest } = report.interactions!;
  assert.equal(source, join(dir, 'Beauty.txt'));
  assert.deepEqual(rest, { users: 3, items: 7, interactions: 10, rows: 3, filtered: 0, length: { min: 2, median: 3, max: 5 }, ordered: true, badRows: 1 });
  assert.equal(report.baskets!.ordered, false);
  assert.equal(report.baskets!.users, 2);
  assert.equal(report.badRows.total, 1);
  const text = formatInspectReport(report);
  assert.match(text, /interactions +.*Beauty\.txt \(sequences in time order\)/);
  assert.match(text, /length +min 2 +median 3 +max 5/);
  assert.match(text, /baskets +.*\(baskets \(unordered sets\)\)/);
});
