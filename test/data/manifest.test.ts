import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { formatBadRow } from '../../src/data/badRows.js';
import { isRoot } from '../helpers.js';
import { join } from 'node:path';
import { DatasetSpecError, resolveDatasetSpec, type DatasetSpecInput } from '../../src/data/datasetSpec.js';
import { readDataset, resolveInsideRoot, sniffDelimiter } from '../../src/data/manifest.js';
import { tempDir } from './fixtures.js';

async function read(dir: string, input: DatasetSpecInput) {
  return readDataset(resolveDatasetSpec(input, dir));
}

test('CSV with a header: image, joined text, label, quoted fields with commas', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), 'id,image,title,description,label\n1,a.jpg,Red dress,"Soft, light cotton",dress\n2,b.jpg,Blue shirt,,shirt\n');
  const ds = await read(dir, { manifest: 'items.csv', imageCol: 'image', textCol: 'title,description', labelCol: 'label', idCol: 'id' });
  assert.equal(ds.totalRows, 2);
  assert.equal(ds.rows.length, 2);
  assert.deepEqual(ds.columns, ['id', 'image', 'title', 'description', 'label']);
  assert.equal(ds.rows[0]!.text, 'Red dress\nSoft, light cotton');
  assert.equal(ds.rows[1]!.text, 'Blue shirt');
  assert.equal(ds.rows[0]!.imagePath, join(dir, 'a.jpg'));
  assert.equal(ds.rows[0]!.id, '1');
  assert.equal(ds.rows[0]!.row, 2);
  assert.equal(ds.bad.total, 0);
});

test('TSV, and a .csv file that is really tab-separated (sniffed)', async (t) => {
  const dir = tempDir(t);
  const body = 'question\tanswer\nis it big?\t"it is 5"" wide, yes"\nwhat colour?\tred\n';
  writeFileSync(join(dir, 'qa.tsv'), body);
  writeFileSync(join(dir, 'qa.csv'), body);
  for (const name of ['qa.tsv', 'qa.csv']) {
    const ds = await read(dir, { manifest: name, textCol: 'question,answer' });
    assert.equal(ds.rows.length, 2, name);
    assert.equal(ds.rows[0]!.text, 'is it big?\nit is 5" wide, yes');
  }
  assert.equal(sniffDelimiter('a;b;c'), ';');
  assert.equal(sniffDelimiter('"a,b"\tc'), '\t');
  assert.equal(sniffDelimiter('single'), undefined);
});

test('header-less list file with --columns (grocery style: "path, 0, 0")', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'train.txt'), 'train/Fruit/Apple/a_001.jpg, 0, 0\ntrain/Fruit/Pear/p_001.jpg, 1, 0\n');
  const ds = await read(dir, { manifest: 'train.txt', columns: 'image,fine,coarse', imageCol: 'image', labelCol: 'fine' });
  assert.equal(ds.rows.length, 2);
  assert.equal(ds.rows[1]!.label, '1');
  assert.equal(ds.rows[1]!.imagePath, join(dir, 'train/Fruit/Pear/p_001.jpg'));
  assert.equal(ds.rows[0]!.row, 1, 'no header: the first line is row 1');
});

test('join a class table and read description files as text', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'desc'));
  writeFileSync(join(dir, 'desc/apple.txt'), 'A crisp apple.\n');
  writeFileSync(join(dir, 'classes.csv'), 'Class Name (str),Class ID (int),Description Path (str)\nApple,0,/desc/apple.txt\nPear,1,/desc/missing.txt');
  writeFileSync(join(dir, 'list.txt'), 'a.jpg, 0\nb.jpg, 1\nc.jpg, 7\n');
  const ds = await read(dir, { manifest: 'list.txt', columns: 'image,id', imageCol: 'image', join: 'classes.csv', joinOn: 'id=Class ID (int)', labelCol: 'Class Name (str)', textFileCol: 'Description Path (str)' });
  assert.equal(ds.rows.length, 1);
  assert.equal(ds.rows[0]!.label, 'Apple');
  assert.equal(ds.rows[0]!.text, 'A crisp apple.');
  assert.equal(ds.bad.count('missing file'), 1);
  assert.equal(ds.bad.count('unknown label'), 1);
  const unknown = ds.bad.summary().find((s) => s.reason === 'unknown label')!.examples[0]!;
  assert.equal(unknown.row, 3);
  assert.equal(unknown.got, "'7'");
});

test('JSONL: nested values become JSON text; bad lines are counted, not fatal', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'c.jsonl'), '{"id":"a","title":"Hat","tags":["x"],"n":3}\nnot json\n[1,2]\n\n{"id":"b","title":""}\n');
  const ds = await read(dir, { manifest: 'c.jsonl', textCol: 'title', idCol: 'id' });
  assert.equal(ds.totalRows, 4);
  assert.deepEqual(ds.rows.map((r) => r.id), ['a']);
  assert.equal(ds.bad.count('invalid JSON'), 2);
  assert.equal(ds.bad.count('empty text'), 1);
  assert.deepEqual(ds.columns, ['id', 'title', 'tags', 'n']);
});

test('bad input: unknown column is an error listing the columns that exist', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), 'image,title\na.jpg,Hat\n');
  await assert.rejects(read(dir, { manifest: 'items.csv', imageCol: 'image', textCol: 'name' }), (err: Error) => {
    assert.ok(err instanceof DatasetSpecError);
    assert.match(err.message, /--text-col 'name' is not a column of .*items\.csv; columns are: 'image', 'title'/);
    return true;
  });
});

test('bad input: wrong delimiter names the delimiter the header seems to use', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.tsv'), 'image;title\na.jpg;Hat\n');
  await assert.rejects(read(dir, { manifest: 'items.tsv', imageCol: 'image' }), /columns are: 'image;title'; the header looks ';'-delimited, not tab-delimited: try --delimiter ;/);
  // Header-less with the wrong delimiter: every row has the wrong field count, reported per row.
  writeFileSync(join(dir, 'list.txt'), 'a.jpg;1\nb.jpg;2\n');
  const ds = await read(dir, { manifest: 'list.txt', columns: 'image,label', delimiter: ',', imageCol: 'image' });
  assert.equal(ds.rows.length, 0);
  assert.equal(ds.bad.count('wrong field count'), 2);
});

test('bad input: invalid UTF-8 in one row skips that row only, naming row and field', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'items.csv');
  writeFileSync(file, Buffer.concat([Buffer.from('title,label\nGood,a\n'), Buffer.from([0x42, 0xff, 0xfe, 0x2c, 0x62, 0x0a]), Buffer.from('Caf\u00e9 \u4f60\u597d,c\n')]));
  const ds = await read(dir, { manifest: 'items.csv', textCol: 'title', labelCol: 'label' });
  assert.deepEqual(ds.rows.map((r) => r.text), ['Good', 'Caf\u00e9 \u4f60\u597d']);
  assert.equal(ds.bad.count('invalid UTF-8'), 1);
  const bad = ds.bad.summary()[0]!.examples[0]!;
  assert.equal(bad.row, 3);
  assert.equal(bad.field, 'title');
});

test('bad input: missing manifest and empty manifest are clear errors', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(read(dir, { manifest: 'nope.csv', textCol: 'x' }), /manifest .*nope\.csv does not exist/);
  writeFileSync(join(dir, 'empty.csv'), '');
  await assert.rejects(read(dir, { manifest: 'empty.csv', textCol: 'x' }), /is empty: expected a header line/);
});

test('bad input: an image path escaping --image-root is refused', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), 'image\n../../etc/passwd\nok/a.jpg\n/abs/b.jpg\n..\\..\\win.jpg\n');
  const ds = await read(dir, { manifest: 'items.csv', imageCol: 'image', imageRoot: 'images' });
  assert.deepEqual(ds.rows.map((r) => r.imagePath), [join(dir, 'images/ok/a.jpg'), join(dir, 'images/abs/b.jpg')]);
  assert.equal(ds.bad.count('path escapes root'), 2);
  assert.equal(ds.bad.summary()[0]!.examples[0]!.got, "'../../etc/passwd'");
  assert.equal(resolveInsideRoot('/r', 'a/../../x'), undefined);
  assert.equal(resolveInsideRoot('/r', 'a/../b'), '/r/b');
});

test('image ids get --image-ext; missing values are bad rows', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), 'image,label\nabc,x\nabc.jpg,y\n,z\ndef,\n');
  const ds = await read(dir, { manifest: 'items.csv', imageCol: 'image', imageExt: '.jpg', labelCol: 'label' });
  assert.deepEqual(ds.rows.map((r) => r.imagePath), [join(dir, 'abc.jpg'), join(dir, 'abc.jpg')]);
  assert.equal(ds.bad.count('missing value'), 2);
});

test('split column and --split fractions', async (t) => {
  const dir = tempDir(t);
  const lines = ['id,text,part', ...Array.from({ length: 200 }, (_v, i) => `r${i},t${i},${i % 2 ? 'train' : 'test'}`)];
  writeFileSync(join(dir, 'items.csv'), lines.join('\n'));
  const bycol = await read(dir, { manifest: 'items.csv', textCol: 'text', splitCol: 'part', idCol: 'id' });
  assert.equal(bycol.rows.filter((r) => r.split === 'test').length, 100);
  const byfrac = await read(dir, { manifest: 'items.csv', textCol: 'text', split: 'train:0.75,test:0.25', idCol: 'id' });
  const again = await read(dir, { manifest: 'items.csv', textCol: 'text', split: 'train:0.75,test:0.25', idCol: 'id' });
  assert.deepEqual(byfrac.rows.map((r) => r.split), again.rows.map((r) => r.split));
  const test = byfrac.rows.filter((r) => r.split === 'test').length;
  assert.ok(test > 25 && test < 80, `test split ${test}/200`);
});

test('class-per-folder tree: labels from folder names, non-images reported', async (t) => {
  const dir = tempDir(t);
  for (const c of ['hat', 'shoe']) mkdirSync(join(dir, c, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'hat/1.jpg'), 'x');
  writeFileSync(join(dir, 'hat/sub/2.png'), 'x');
  writeFileSync(join(dir, 'shoe/3.JPG'), 'x');
  writeFileSync(join(dir, 'shoe/notes.txt'), 'x');
  writeFileSync(join(dir, 'stray.jpg'), 'x');
  const ds = await read(dir, { imageFolder: '.' });
  assert.deepEqual(ds.rows.map((r) => [r.id, r.label]), [['hat/1.jpg', 'hat'], ['hat/sub/2.png', 'hat'], ['shoe/3.JPG', 'shoe']]);
  assert.equal(ds.bad.count('not an image'), 1);
  await assert.rejects(read(dir, { imageFolder: 'nope' }), /does not exist/);
});

test('a BOM and Windows line endings are handled', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), '\uFEFFimage,title\r\na.jpg,Red hat\r\nb.jpg,"Two\r\nlines"\r\n');
  const ds = await read(dir, { manifest: 'items.csv', imageCol: 'image', textCol: 'title' });
  assert.deepEqual(ds.columns, ['image', 'title']);
  assert.deepEqual(ds.rows.map((r) => r.text), ['Red hat', 'Two\r\nlines']);
  assert.equal(ds.rows[1]!.imagePath, join(dir, 'b.jpg'));
});

test('--split-group-col: every row of a group lands in one split; a row without a group is a bad row; it needs --split', async (t) => {
  const dir = tempDir(t);
  const lines = ['id,title,sender'];
  for (let i = 0; i < 200; i++) lines.push(`${i},item ${i},${i === 7 ? '' : `s${i % 20}`}`);
  writeFileSync(join(dir, 'items.csv'), lines.join('\n') + '\n');
  const ds = await read(dir, { manifest: 'items.csv', textCol: 'title', idCol: 'id', split: 'train:0.5,test:0.5', splitSeed: 3, splitGroupCol: 'sender' });
  assert.equal(ds.rows.length, 199);
  assert.equal(ds.bad.total, 1);
  assert.equal(ds.bad.summary()[0]!.examples[0]!.field, 'sender');
  const splitOf = new Map<string, Set<string>>();
  for (const r of ds.rows) {
    const sender = `s${Number(r.id) % 20}`;
    splitOf.set(sender, (splitOf.get(sender) ?? new Set()).add(r.split!));
  }
  assert.equal(splitOf.size, 20);
  assert.ok([...splitOf.values()].every((s) => s.size === 1), 'no sender is on both sides');
  const sides = new Set([...splitOf.values()].map((s) => [...s][0]));
  assert.deepEqual([...sides].sort(), ['test', 'train'], 'both sides get groups');
  // Without the group column the same rows split by their own ids: senders straddle the split.
  const byId = await read(dir, { manifest: 'items.csv', textCol: 'title', idCol: 'id', split: 'train:0.5,test:0.5', splitSeed: 3 });
  const straddle = new Map<string, Set<string>>();
  for (const r of byId.rows) straddle.set(`s${Number(r.id) % 20}`, (straddle.get(`s${Number(r.id) % 20}`) ?? new Set()).add(r.split!));
  assert.ok([...straddle.values()].some((s) => s.size === 2));
  assert.throws(() => resolveDatasetSpec({ manifest: join(dir, 'items.csv'), splitGroupCol: 'sender' }), (e: Error) => e instanceof DatasetSpecError && /give --split too/.test(e.message));
  await assert.rejects(read(dir, { manifest: 'items.csv', textCol: 'title', split: 'train:0.5,test:0.5', splitGroupCol: 'family' }), /--split-group-col 'family' is not a column/);
});

test('bad input: invalid UTF-8 in a JSONL row and in a text file is a bad row naming the file and row', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'c.jsonl'), Buffer.concat([Buffer.from('{"id":"a","title":"Hat"}\n{"id":"b","title":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n{"id":"c","title":"Cap"}\n')]));
  const ds = await read(dir, { manifest: 'c.jsonl', textCol: 'title', idCol: 'id' });
  assert.deepEqual(ds.rows.map((r) => r.id), ['a', 'c']);
  const [bad] = ds.bad.summary()[0]!.examples;
  assert.deepEqual([bad!.reason, bad!.row, bad!.expected], ['invalid UTF-8', 2, 'UTF-8 text']);
  assert.match(formatBadRow(bad!), /c\.jsonl:2: invalid UTF-8, expected UTF-8 text, got bytes 7b22/);
  mkdirSync(join(dir, 'txt'));
  writeFileSync(join(dir, 'txt/good.txt'), 'Fine words.');
  writeFileSync(join(dir, 'txt/latin1.txt'), Buffer.from([0x43, 0x61, 0x66, 0xe9]));
  writeFileSync(join(dir, 'items.csv'), 'id,desc\na,good.txt\nb,latin1.txt\n');
  const withFiles = await read(dir, { manifest: 'items.csv', idCol: 'id', textFileCol: 'desc', textRoot: 'txt' });
  assert.deepEqual(withFiles.rows.map((r) => r.id), ['a']);
  const utf = withFiles.bad.summary()[0]!.examples[0]!;
  assert.match(formatBadRow(utf), /items\.csv:3: invalid UTF-8, field 'desc', file .*latin1\.txt, expected UTF-8 text/);
});

test('bad input: a text file that is a folder or unreadable is reported as that, not as missing', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'txt/folder.txt'), { recursive: true });
  writeFileSync(join(dir, 'txt/locked.txt'), 'secret');
  chmodSync(join(dir, 'txt/locked.txt'), 0o000);
  writeFileSync(join(dir, 'items.csv'), 'id,desc\na,folder.txt\nb,locked.txt\nc,gone.txt\n');
  const ds = await read(dir, { manifest: 'items.csv', idCol: 'id', textFileCol: 'desc', textRoot: 'txt' });
  const lines = ds.bad.summary().flatMap((s) => s.examples).map(formatBadRow);
  assert.ok(lines.some((l) => /items\.csv:2: unreadable file, field 'desc', file .*folder\.txt, got is a folder, expected a file/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /items\.csv:4: missing file, .*gone\.txt, got does not exist/.test(l)), lines.join('\n'));
  if (isRoot) t.diagnostic('running as root, which reads a mode-000 file: permission denied is checked end to end in test/cli/badFiles.test.ts (as nobody)');
  else assert.ok(lines.some((l) => /items\.csv:3: unreadable file, .*locked\.txt, got cannot be read: permission denied/.test(l)), lines.join('\n'));
  mkdirSync(join(dir, 'dir.csv'));
  await assert.rejects(read(dir, { manifest: 'dir.csv', textCol: 'x' }), /manifest .*dir\.csv is a folder, expected a file/);
});

test('a price column is read as a number (empty: none; not a number: a bad row named by file, row and field); attribute columns are kept by name', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), 'id,image,title,price,colour,pattern\n1,a.jpg,Red dress,39.99,red,plain\n2,b.jpg,Blue shirt,,blue,\n3,c.jpg,Hat,cheap,green,striped\n4,d.jpg,Boot, 120 ,black,plain\n');
  const ds = await read(dir, { manifest: 'items.csv', imageCol: 'image', textCol: 'title', idCol: 'id', priceCol: 'price', attributeCol: 'colour,pattern' });
  assert.deepEqual(ds.rows.map((r) => [r.id, r.price, r.attributes]), [
    ['1', 39.99, { colour: 'red', pattern: 'plain' }],
    ['2', undefined, { colour: 'blue' }],
    ['4', 120, { colour: 'black', pattern: 'plain' }],
  ]);
  assert.equal(ds.bad.total, 1);
  const [bad] = ds.bad.summary();
  assert.equal(bad!.reason, 'not a number');
  assert.match(formatBadRow(bad!.examples[0]!), /items\.csv:4: not a number.*field 'price'.*'cheap'/);
  await assert.rejects(read(dir, { manifest: 'items.csv', imageCol: 'image', textCol: 'title', priceCol: 'cost' }), /--price-col.*'cost'/);
});
