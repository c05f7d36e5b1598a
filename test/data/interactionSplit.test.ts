import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoLeak, holdOutBaskets, leaveLastOut } from '../../src/data/interactionSplit.js';

const sequences = new Map<string, string[]>([
  ['u1', ['a', 'b', 'c', 'd', 'e']],
  ['u2', ['x', 'y', 'z']],
  ['u3', ['p', 'q']],
]);

test('leave-last-out: val = second-to-last, test = last, train = the rest; short users only train', () => {
  const split = leaveLastOut(sequences);
  assert.deepEqual([...split.train], [['u1', ['a', 'b', 'c']], ['u2', ['x']], ['u3', ['p', 'q']]]);
  assert.deepEqual(split.val, [
    { user: 'u1', history: ['a', 'b', 'c'], target: 'd' },
    { user: 'u2', history: ['x'], target: 'y' },
  ]);
  assert.deepEqual(split.test, [
    { user: 'u1', history: ['a', 'b', 'c', 'd'], target: 'e' },
    { user: 'u2', history: ['x', 'y'], target: 'z' },
  ]);
  assertNoLeak(split, sequences);
  // Splitting copies: editing the split does not edit the sequences.
  split.train.get('u1')!.push('zz');
  assert.equal(sequences.get('u1')!.length, 5);
});

test('no leak: held-out targets never reach train (the check fails when one does)', () => {
  const split = leaveLastOut(sequences);
  for (const c of [...split.val, ...split.test]) {
    const train = split.train.get(c.user)!;
    const seq = sequences.get(c.user)!;
    // The held-out positions are after the train prefix.
    assert.ok(train.length <= seq.length - 2);
    assert.deepEqual(train, seq.slice(0, train.length));
  }
  // A split that trains on the validation item of u1 must be caught, naming the user and position.
  const leaky = { ...split, train: new Map(split.train).set('u1', ['a', 'b', 'c', 'd']) };
  assert.throws(() => assertNoLeak(leaky, sequences), /leak: user 'u1' trains on position 3 \(item 'd'\)/);
  // So must a test target moved into train by hand, and a train that is not the sequence's prefix.
  const all = { ...split, train: new Map(split.train).set('u2', ['x', 'y', 'z']) };
  assert.throws(() => assertNoLeak(all, sequences), /user 'u2'/);
  const shuffled = { ...split, train: new Map(split.train).set('u1', ['a', 'e', 'c']) };
  assert.throws(() => assertNoLeak(shuffled, sequences), /position 1/);
  // A test case whose history reaches past its target is a leak too.
  const future = { ...split, test: split.test.map((c) => (c.user === 'u2' ? { ...c, history: ['x', 'y', 'z'] } : c)) };
  assert.throws(() => assertNoLeak(future, sequences), /u2/);
});

test('baskets are held out whole, by id, deterministically from the seed', () => {
  const baskets = new Map(Array.from({ length: 1000 }, (_v, i) => [`o${i}`, [`a${i}`, `b${i}`]] as [string, string[]]));
  const one = holdOutBaskets(baskets, 0.2, 7);
  const again = holdOutBaskets(new Map([...baskets].reverse()), 0.2, 7);
  assert.equal(one.train.size + one.test.size, 1000);
  assert.ok(one.test.size > 150 && one.test.size < 250, `${one.test.size} held out of 1000`);
  assert.deepEqual([...one.test.keys()].sort(), [...again.test.keys()].sort());
  for (const id of one.test.keys()) assert.ok(!one.train.has(id));
  assert.deepEqual(one.test.get([...one.test.keys()][0]!), baskets.get([...one.test.keys()][0]!));
  const other = holdOutBaskets(baskets, 0.2, 8);
  assert.notDeepEqual([...other.test.keys()].sort(), [...one.test.keys()].sort());
  assert.throws(() => holdOutBaskets(baskets, 1.5, 0), RangeError);
});
