import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as torch from '../../src/torch/index.js';

test('shape mismatch: a JS Error naming the operator and the shapes', () => {
  assert.throws(() => torch.ones([2, 3]).matmul(torch.ones([4, 5])),
    (e: Error) => /aten::matmul/.test(e.message) && /\[2, 3\] float32/.test(e.message) && /\[4, 5\] float32/.test(e.message) && !/frame #/.test(e.message));
  assert.throws(() => torch.ones([2]).add(torch.ones([3])), /aten::add\.Tensor: The size of tensor a \(2\) must match .* \[self: \[2\] float32, other: \[3\] float32\]/);
});

test('wrong dtype', () => {
  assert.throws(() => torch.nn.embedding(torch.tensor([0.5]), torch.ones([3, 2])), /aten::embedding.*(Long|Int)/);
  assert.throws(() => torch.ones([2]).matmul(torch.ones([2], { dtype: 'float64' })), /aten::matmul.*float64/);
});

test('out-of-range index', () => {
  assert.throws(() => torch.ones([3]).indexSelect(0, torch.tensor([5n])), /aten::index_select.*(out of range|index out of)/i);
  assert.throws(() => torch.ones([3]).index(3), /index 3 is out of range for dimension 0 of size 3/);
  assert.throws(() => torch.ones([3]).transpose(0, 4), /aten::transpose.*Dimension out of range/);
});

test('using a disposed tensor', () => {
  const t = torch.ones([2]);
  t.dispose();
  assert.throws(() => torch.ones([2]).add(t), /disposed/);
});

test('bad arguments from JS', () => {
  assert.throws(() => torch.zeros([2.5]), /expected an integer/);
  assert.throws(() => torch.tensor([1]).to('float8' as torch.DType), /unknown dtype 'float8'/);
  assert.throws(() => torch.manualSeed(-1), /non-negative integer/);
});

test('the process survives errors: a child process hitting every error exits 0', () => {
  const script = `
    const torch = await import(${JSON.stringify(new URL('../../src/torch/index.js', import.meta.url).href)});
    let caught = 0;
    const cases = [
      () => torch.ones([2, 3]).matmul(torch.ones([4, 5])),
      () => torch.ones([3]).indexSelect(0, torch.tensor([99n])),
      () => torch.ones([2]).view(3),
      () => torch.call('aten::nope', '', []),
      () => { const t = torch.ones([1]); t.dispose(); t.add(1); },
    ];
    for (const c of cases) { try { c(); } catch { caught++; } }
    console.log(caught);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '5');
});

test('an InputError is one line whatever it quotes: line breaks and control bytes are escaped', async () => {
  const { InputError } = await import('../../src/torch/inputError.js');
  const quoted = (() => { try { JSON.parse('{"a":\n\u0000}'); return ''; } catch (e) { return (e as Error).message; } })();
  const err = new InputError(`items.json is not valid JSON: ${quoted}\r\n\ttab`);
  assert.ok(!/[\n\r\u0000]/.test(err.message), err.message);
  assert.match(err.message, /^items\.json is not valid JSON: .*\\r\\n\ttab$/);
});
