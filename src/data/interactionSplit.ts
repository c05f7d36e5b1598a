// Held-out interactions for judging a recommender. Sequences follow the leave-one-out protocol of
// SASRec and S3-Rec: each user's last item is the test target, the one before it the validation
// target, and training sees only what came before both. Baskets (no order) are held out whole.
import { unitHash } from './random.js';

export interface HeldOutCase { user: string; history: string[]; target: string }

export interface InteractionSplit {
  /** What may be trained on: each user's sequence without its last two items (users with < 3 items: all of them, and no held-out case). */
  train: Map<string, string[]>;
  /** target = second-to-last item, history = the items before it. */
  val: HeldOutCase[];
  /** target = last item, history = every item before it (the validation item included, as S3-Rec does). */
  test: HeldOutCase[];
}

export function leaveLastOut(sequences: ReadonlyMap<string, readonly string[]>): InteractionSplit {
  const train = new Map<string, string[]>();
  const val: HeldOutCase[] = [];
  const test: HeldOutCase[] = [];
  for (const [user, seq] of sequences) {
    const n = seq.length;
    // Too short to hold two items out and still train on one: all of it trains.
    if (n < 3) {
      train.set(user, seq.slice());
      continue;
    }
    train.set(user, seq.slice(0, n - 2));
    val.push({ user, history: seq.slice(0, n - 2), target: seq[n - 2]! });
    test.push({ user, history: seq.slice(0, n - 1), target: seq[n - 1]! });
  }
  return { train, val, test };
}

/** Throws (a plain Error naming the user and position) if any val/test target interaction is inside `train` — i.e. train[user] is not a strict prefix of the user's sequence ending before the held-out positions. */
export function assertNoLeak(split: InteractionSplit, sequences: ReadonlyMap<string, readonly string[]>): void {
  const heldOut = new Map<string, number>();
  for (const c of split.val) heldOut.set(c.user, Math.max(heldOut.get(c.user) ?? 0, 2));
  for (const c of split.test) heldOut.set(c.user, Math.max(heldOut.get(c.user) ?? 0, 1));
  for (const [user, train] of split.train) {
    const seq = sequences.get(user);
    if (seq === undefined) throw new Error(`leak check: train has user '${user}', who has no sequence`);
    const held = heldOut.get(user) ?? 0;
    const end = seq.length - held;
    if (train.length > end) {
      throw new Error(`leak: user '${user}' trains on position ${end} (item '${train[end]}'), which is held out (the sequence has ${seq.length} items, the last ${held} held out)`);
    }
    for (let i = 0; i < train.length; i++) {
      if (train[i] !== seq[i]) throw new Error(`leak check: user '${user}' train position ${i} is '${train[i]}', the sequence has '${seq[i]}' there: train must be a prefix of the sequence`);
    }
  }
  const check = (cases: readonly HeldOutCase[], what: string, fromEnd: number): void => {
    for (const c of cases) {
      const seq = sequences.get(c.user);
      if (seq === undefined) throw new Error(`leak check: ${what} case of unknown user '${c.user}'`);
      const pos = seq.length - fromEnd;
      if (seq[pos] !== c.target) throw new Error(`leak check: user '${c.user}' ${what} target '${c.target}' is not the item at position ${pos} ('${seq[pos]}')`);
      if (c.history.length !== pos || c.history.some((it, i) => it !== seq[i])) {
        throw new Error(`leak: user '${c.user}' ${what} history is not the ${pos} items before position ${pos}`);
      }
      const trained = split.train.get(c.user)?.length ?? 0;
      if (trained > pos) throw new Error(`leak: user '${c.user}' ${what} target at position ${pos} ('${c.target}') is inside train (${trained} items)`);
    }
  };
  check(split.val, 'val', 2);
  check(split.test, 'test', 1);
}

/** Whole baskets held out by id: a basket lands in test when its seeded hash is below `fraction`. Stable when baskets are added or reordered. */
export function holdOutBaskets(baskets: ReadonlyMap<string, readonly string[]>, fraction: number, seed: number): { train: Map<string, string[]>; test: Map<string, string[]> } {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`holdOutBaskets: fraction must be in [0, 1], got ${fraction}`);
  const train = new Map<string, string[]>();
  const test = new Map<string, string[]>();
  for (const [id, items] of baskets) (unitHash(id, seed) < fraction ? test : train).set(id, items.slice());
  return { train, test };
}
