// design-codes.json, the run's cache of each design image's VQ codes: reused when it belongs to the
// same VQ file, and when damaged (not JSON, a code list of the wrong length, a code outside the
// codebook) said so in one line naming the file and entry, then computed again: never trusted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { VqTokenizer } from '../../src/model/vq.js';
import { saveSafetensors } from '../../src/io/index.js';
import { DESIGN_CODES_FILE, imageCodes } from '../../src/tasks/designCodes.js';
import { tempDir, writeSolidImage } from '../data/fixtures.js';

test('a damaged design-codes.json is named, with what was expected, and recomputed', async (t) => {
  const dir = tempDir(t, 'm6-codes-');
  torch.manualSeed(0);
  const vq = new VqTokenizer({ imageSize: 16, channels: [8, 8, 8, 8], normGroups: 4, codeDim: 4, codebookSize: 16 });
  const vqFile = join(dir, 'vq.safetensors');
  saveSafetensors(vqFile, vq.stateDict());
  const images = [join(dir, 'a.png'), join(dir, 'b.png')];
  await writeSolidImage(images[0]!, { width: 16, height: 16, format: 'png' });
  await writeSolidImage(images[1]!, { width: 16, height: 16, rgb: [10, 200, 30], format: 'png' });
  const opts = (said: string[]) => ({ runDir: dir, imageSize: 16, log: (m: string) => said.push(m) });
  const fresh = await imageCodes(vq, vqFile, images, opts([]));
  assert.equal(fresh.cached, 0);
  const again = await imageCodes(vq, vqFile, images, opts([]));
  assert.equal(again.cached, 2, 'an intact cache is used');
  const file = join(dir, DESIGN_CODES_FILE);
  const good = JSON.parse(readFileSync(file, 'utf8')) as { codes: Record<string, string> };
  const withCodes = (codes: Int32Array) => JSON.stringify({ ...good, codes: { ...good.codes, [images[1]!]: Buffer.from(codes.buffer).toString('base64') } });
  const damages: Array<[string, string, RegExp]> = [
    ['cut', readFileSync(file, 'utf8').slice(0, 40), /not JSON: /],
    ['short', withCodes(new Int32Array(3)), /codes of .*b\.png: 12 bytes, expected 4 int32 codes \(16 bytes\)/],
    ['out of range', withCodes(Int32Array.from([0, 1, 99, 2])), /codes of .*b\.png: code 99 at 2, expected codes in \[0, 16\)/],
    ['negative', withCodes(Int32Array.from([0, -1, 2, 2])), /code -1 at 1/],
    ['no codes', JSON.stringify({ ...good, codes: [] }), /expected "codes": \{image path: base64 int32 codes\}/],
    ['not the format', '[1, 2]', /expected an object with format "m6-design-codes"/],
  ];
  for (const [what, text, re] of damages) {
    writeFileSync(file, text);
    const said: string[] = [];
    const r = await imageCodes(vq, vqFile, images, opts(said));
    assert.equal(r.cached, 0, `${what}: nothing trusted`);
    assert.equal(r.codes.size, 2, `${what}: nothing lost`);
    assert.deepEqual([...r.codes.get(images[1]!)!], [...fresh.codes.get(images[1]!)!], what);
    const warning = said.find((m) => m.startsWith('warning:'));
    assert.ok(warning !== undefined && warning.includes(file) && re.test(warning) && !warning.includes('\n'), `${what}: ${said.join(' | ')}`);
  }
  vq.dispose();
});
