// `m6 data pack` through the CLI, as a user runs it: a synthetic catalog into tar shards and a
// dataset.json; `m6 data inspect` and `m6 train` read the shards (training on them gives the losses
// training on the source gives); bad source rows are skipped and counted; bad flags are one line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableBackends } from '../../src/distributed/index.js';
import { readMetrics, type TrainMetric } from '../../src/train/metrics.js';
import { m6, writeSolidImage, writeTinyConfig } from '../data/fixtures.js';

const backends = availableBackends();

let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-pack-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '24', '--seed', '2', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const shardsIn = (d: string) => readdirSync(d).filter((f) => f.endsWith('.tar')).sort();

test('pack a catalog into shards of 10; inspect reads them; the same rows as the source', async () => {
  const out = join(dir, 'packed');
  const r = await m6(['data', 'pack', '--data', join(dir, 'catalog', 'dataset.json'), '--out', out, '--samples-per-shard', '10']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^wrote 24 samples in 3 shards \\([\\d.]+ MiB\\) and ${out}/dataset\\.json\\n$`));
  assert.deepEqual(shardsIn(out), ['000000.tar', '000001.tar', '000002.tar']);
  const spec = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
  assert.equal(spec.shards, '{000000..000002}.tar');
  assert.deepEqual([spec.textCol, spec.labelCol, spec.idCol, spec.splitCol], [['title', 'description'], 'category', 'id', 'split']);
  const inspect = async (data: string) => JSON.parse((await m6(['data', 'inspect', '--data', data, '--json'])).stdout);
  const [packed, source] = [await inspect(join(out, 'dataset.json')), await inspect(join(dir, 'catalog', 'dataset.json'))];
  assert.equal(packed.kind, 'shards');
  for (const key of ['rows', 'usableRows', 'labels', 'splits', 'imagesDecoded']) assert.deepEqual(packed[key], source[key], key);
  assert.deepEqual({ ...packed.interactions, source: '' }, { ...source.interactions, source: '' }, 'the interactions, copied beside the shards');
  // Packing the shards again writes the same bytes: the same rows, fields and images, and nothing of the clock.
  const again = await m6(['data', 'pack', '--data', join(out, 'dataset.json'), '--out', join(dir, 'again'), '--samples-per-shard', '10']);
  assert.equal(again.status, 0, again.stderr);
  for (const f of shardsIn(out)) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(dir, 'again', f))), `${f}: the same rows write the same bytes`);
  const inPlace = await m6(['data', 'pack', '--data', join(out, 'dataset.json'), '--out', out]);
  assert.equal(inPlace.status, 2);
  assert.match(inPlace.stderr, /--out .* holds the shards being packed: .* pack into another folder/);
});

test('m6 train on the packed catalog (describe, answer, embed, design with its VQ stage): the same split and the same losses as on its source', async () => {
  const out = join(dir, 'packed-train');
  assert.equal((await m6(['data', 'pack', '--data', join(dir, 'catalog', 'dataset.json'), '--out', out, '--samples-per-shard', '7'])).status, 0);
  const config = writeTinyConfig(join(dir, 'tiny.json'), { maxTextLen: 64, imageCodes: 64 });
  const train = (data: string, run: string) => m6(['train', '--data', data, '--split', 'train:0.8,test:0.2', '--config', config, '--batch-size', '4', '--vocab', '400',
    '--workers', '1', '--seed', '3', '--steps', '4', '--tasks', 'describe,answer,embed,design', '--vq-steps', '3', '--out', join(dir, run)]);
  const [a, b] = [await train(join(out, 'dataset.json'), 'run-shards'), await train(join(dir, 'catalog', 'dataset.json'), 'run-source')];
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  const losses = (s: string) => /loss ([\d.]+ → [\d.]+)/.exec(s)?.[1];
  assert.ok(losses(a.stdout) !== undefined, a.stdout);
  assert.equal(losses(a.stdout), losses(b.stdout));
  assert.match(a.stderr, /VQ stage done: held-out PSNR/);
  const perStep = (run: string) => readMetrics(join(dir, run, 'metrics.jsonl')).filter((m): m is TrainMetric => m.kind === 'train').map((m) => m.loss);
  assert.deepEqual(perStep('run-shards'), perStep('run-source'));
  const split = (run: string) => JSON.parse(readFileSync(join(dir, run, 'split.json'), 'utf8'));
  assert.equal(split('run-shards').trainIdsDigest, split('run-source').trainIdsDigest, 'the same rows held out');
  assert.match(split('run-shards').data, /000000\.tar … \(4 shards\)/);
});

test('m6 train --nproc 2 on shards: the one-process losses, and a resume from its checkpoint goes on as one run', { skip: backends.gloo ? false : `c10d Gloo backend not built: ${backends.reason}`, timeout: 300_000 }, async () => {
  const out = join(dir, 'packed-ddp');
  assert.equal((await m6(['data', 'pack', '--data', join(dir, 'catalog', 'dataset.json'), '--out', out, '--samples-per-shard', '5'])).status, 0);
  const config = writeTinyConfig(join(dir, 'tiny-ddp.json'), { maxTextLen: 64 });
  const train = (...args: string[]) => m6(['train', '--data', join(out, 'dataset.json'), '--split', 'train:0.8,test:0.2', '--config', config, '--batch-size', '6', '--vocab', '400',
    '--workers', '0', '--seed', '3', '--tasks', 'describe,answer', '--steps', '6', ...args]);
  const losses = (run: string) => readMetrics(join(dir, run, 'metrics.jsonl')).filter((m): m is TrainMetric => m.kind === 'train').map((m) => m.loss);
  const two = await train('--nproc', '2', '--stop-at', '3', '--save-every', '3', '--out', join(dir, 'ddp'));
  assert.equal(two.status, 0, two.stderr);
  const resumed = await train('--nproc', '2', '--resume', '--out', join(dir, 'ddp'));
  assert.equal(resumed.status, 0, resumed.stderr);
  const one = await train('--out', join(dir, 'ddp-one'));
  assert.equal(one.status, 0, one.stderr);
  const [a, b] = [losses('ddp'), losses('ddp-one')];
  assert.equal(a.length, 6);
  a.forEach((l, i) => assert.ok(Math.abs(l - b[i]!) <= 1e-5 * b[i]!, `step ${i + 1}: 2 ranks ${l}, 1 process ${b[i]}`));
});

test('bad source rows are skipped and counted; --max-shard-bytes closes shards early', async () => {
  const src = join(dir, 'mixed');
  mkdirSync(src);
  for (const i of [1, 2, 3, 4]) await writeSolidImage(join(src, `ok${i}.jpg`), { width: 40, height: 40, rgb: [i * 50, 20, 20] });
  writeFileSync(join(src, 'fake.jpg'), 'not a jpeg');
  writeFileSync(join(src, 'items.csv'), 'image,title\nok1.jpg,one\nmissing.jpg,gone\nfake.jpg,fake\nok2.jpg,two\nok3.jpg,\nok3.jpg,three\nok4.jpg,four\n');
  const out = join(dir, 'mixed-packed');
  const r = await m6(['data', 'pack', '--manifest', join(src, 'items.csv'), '--image-col', 'image', '--text-col', 'title', '--out', out, '--max-shard-bytes', '4k']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^wrote 4 samples in 4 shards .*; 3 bad rows skipped\n$/);
  assert.match(r.stderr, /skipped 1 missing file: .*items\.csv:3: missing file, file .*missing\.jpg, got does not exist/);
  assert.match(r.stderr, /skipped 1 not an image: .*items\.csv:4: not an image, file .*fake\.jpg, expected jpg bytes/);
  assert.match(r.stderr, /skipped 1 empty text: .*items\.csv:6/);
  for (const f of shardsIn(out)) assert.ok(statSync(join(out, f)).size <= 4096, `${f} is within --max-shard-bytes`);
  const inspect = await m6(['data', 'inspect', '--shards', join(out, '{000000..000003}.tar'), '--json']);
  assert.equal(JSON.parse(inspect.stdout).usableRows, 4, inspect.stderr);
});

test('bad flags and patterns are one-line errors', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['data', 'pack', '--data', join(dir, 'catalog', 'dataset.json'), '--out', join(dir, 'x'), '--samples-per-shard', '0'], /--samples-per-shard must be a positive integer, got '0'/],
    [['data', 'pack', '--data', join(dir, 'catalog', 'dataset.json'), '--out', join(dir, 'x'), '--max-shard-bytes', 'lots'], /--max-shard-bytes must be a size of at least 4096 bytes like 1G, 512M or 3000000, got 'lots'/],
    [['data', 'inspect', '--shards', 'x/{3..1}.tar'], /shards 'x\/\{3\.\.1\}\.tar': range \{3\.\.1\} runs backwards: write \{1\.\.3\}/],
    [['data', 'inspect', '--shards', join(dir, 'nowhere', '{0..1}.tar')], /shards: none of the 2 shards can be read/],
  ];
  for (const [args, re] of cases) {
    const r = await m6(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
