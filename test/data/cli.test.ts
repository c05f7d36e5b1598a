// End to end: the m6 data and tokenizer verbs run as a user runs them (node bin/m6.js …).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { m6, tempDir, writeSolidImage } from './fixtures.js';

test('m6 data inspect: text report, exit 0 when usable', async (t) => {
  const dir = tempDir(t);
  await writeSolidImage(join(dir, 'a.jpg'), { width: 30, height: 20 });
  writeFileSync(join(dir, 'items.csv'), 'image,title,label\na.jpg,Red hat,hat\nmissing.jpg,Gone,hat\n');
  const r = await m6(['data', 'inspect', '--manifest', join(dir, 'items.csv'), '--image-col', 'image', '--text-col', 'title', '--label-col', 'label']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /rows\s+2\n/);
  assert.match(r.stdout, /usable rows\s+1 /);
  assert.match(r.stdout, /missing file\s+1\s+e\.g\. missing\.jpg/);
});

test('m6 data inspect --json: machine-readable, same facts', async (t) => {
  const dir = tempDir(t);
  await writeSolidImage(join(dir, 'a.jpg'), { width: 30, height: 20 });
  writeFileSync(join(dir, 'items.jsonl'), '{"image":"a.jpg","title":"Red hat"}\n{"image":"a.jpg","title":"Hat again"}\nnot json\n');
  const r = await m6(['data', 'inspect', join(dir, 'items.jsonl'), '--image-col', 'image', '--text-col', 'title', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.rows, 3);
  assert.equal(report.usableRows, 2);
  assert.equal(report.imagesDecoded, 2);
  assert.equal(report.badRows.byReason[0].reason, 'invalid JSON');
  assert.equal(report.badRows.byReason[0].first.row, 3);
});

test('m6 data inspect: unknown column exits 2 listing the columns', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), 'image,title\na.jpg,Hat\n');
  const r = await m6(['data', 'inspect', '--manifest', join(dir, 'items.csv'), '--text-col', 'name']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /m6: --text-col 'name' is not a column of .*; columns are: 'image', 'title'/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a user error prints no stack trace');
});

test('m6 data inspect: no usable rows exits 1; a missing manifest exits 2', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), 'image\n../../etc/passwd\n');
  const r = await m6(['data', 'inspect', '--manifest', join(dir, 'items.csv'), '--image-col', 'image']);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /path escapes root\s+1/);
  const missing = await m6(['data', 'inspect', '--manifest', join(dir, 'nope.csv'), '--image-col', 'image']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /nope\.csv does not exist/);
});

test('m6 data synth, then inspect it through its dataset.json, then train a tokenizer on it', async (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'catalog');
  const synth = await m6(['data', 'synth', '--out', out, '--n', '30', '--seed', '4', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  assert.match(synth.stdout, /wrote 30 products/);
  const inspect = await m6(['data', 'inspect', '--data', join(out, 'dataset.json'), '--json']);
  assert.equal(inspect.status, 0, inspect.stderr);
  const report = JSON.parse(inspect.stdout);
  assert.equal(report.rows, 30);
  assert.equal(report.usableRows, 30);
  assert.equal(report.imagesDecoded, 30);
  assert.equal(report.interactions.users, 10);
  assert.equal(report.interactions.ordered, true);
  assert.equal(report.baskets.ordered, false);
  assert.ok(report.baskets.users > 5 && report.baskets.users <= 15, `${report.baskets.users} outfits`);
  const tokFile = join(dir, 'tokenizer.json');
  const train = await m6(['tokenizer', 'train', join(out, 'dataset.json'), '--vocab', '400', '--image-codes', '64', '--out', tokFile]);
  assert.equal(train.status, 0, train.stderr);
  assert.match(train.stdout, /64 image codes/);
  const tok = await Tokenizer.load(tokFile);
  assert.equal(tok.imageCodes, 64);
  const title = JSON.parse(readFileSync(join(out, 'catalog.jsonl'), 'utf8').split('\n')[0]!).titleZh as string;
  assert.equal(tok.decode(tok.encode(title)), title);
  const bad = await m6(['data', 'synth', '--out', out, '--size', '100']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--size must be 64, 96 or 128/);
});

test('m6 tokenizer train: from text files; clear errors without text', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a.txt'), 'red dress\nblue shirt\n红色连衣裙\n');
  const tokFile = join(dir, 'tok.json');
  const r = await m6(['tokenizer', 'train', '--text-file', join(dir, 'a.txt'), '--vocab', '300', '--out', tokFile]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(tokFile));
  writeFileSync(join(dir, 'items.csv'), 'image\na.jpg\n');
  const noText = await m6(['tokenizer', 'train', '--manifest', join(dir, 'items.csv'), '--vocab', '300', '--out', tokFile]);
  assert.equal(noText.status, 2);
  assert.match(noText.stderr, /no text to train on: give --text-col/);
  const small = await m6(['tokenizer', 'train', '--text-file', join(dir, 'a.txt'), '--vocab', '100', '--out', tokFile]);
  assert.equal(small.status, 2);
  assert.match(small.stderr, /--vocab must be at least 266/);
});

test('m6 data inspect --interactions: a user-item log alone; a command needing a catalog says so', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'events.csv'), 'user,item,ts,event\nu1,a,2024-01-01,view\nu1,b,2024-01-02,purchase\nu2,a,x,view\nu2,c,3,click\n');
  const r = await m6(['data', 'inspect', '--interactions', join(dir, 'events.csv'), '--time-col', 'ts', '--event-col', 'event', '--events', 'view,purchase']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /interactions +.*events\.csv \(sequences in time order\)/);
  assert.match(r.stdout, /users +1\n/);
  assert.match(r.stdout, /interactions 2 from 2 rows, 1 left out by --events/);
  assert.match(r.stdout, /unparsable time +1/);
  const tok = await m6(['tokenizer', 'train', '--interactions', join(dir, 'events.csv'), '--text-col', 'title', '--vocab', '300', '--out', join(dir, 't.json')]);
  assert.equal(tok.status, 2);
  assert.match(tok.stderr, /needs catalog rows: give --manifest FILE/);
});
