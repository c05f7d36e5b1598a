// Which label a generated description names, for category accuracy on labelled data (clothing's
// "T-Shirt", grocery's "Golden-Delicious"). Two rules, chosen per item by what the model was
// trained to write:
//   - exact: the target text IS the label (clothing: describe → "T-Shirt"), so the description is
//     right only when, normalised, it is that label's name and nothing else;
//   - first mention: the target text says more than the label (grocery: name + product
//     description), so the prediction is the label whose name the text mentions first (leftmost;
//     on a tie the longest name, so "t-shirt" is not read as "shirt").
// Normalising makes "Golden-Delicious", "golden delicious" and "GOLDEN_DELICIOUS." the same name.

export type LabelRule = 'exact' | 'first-mention';

/** Lower case, NFKC, '-', '_' and '/' as spaces, other punctuation dropped, spaces collapsed. */
export function normaliseLabelText(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[-_/]+/g, ' ')
    .replace(/[^\p{L}\p{N}\s]+/gu, '')
    .replace(/\s+/g, ' ')
    .trim();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface LabelJudgement {
  /** The label the text names under `rule`, or null when it names none. */
  predicted: string | null;
  rule: LabelRule;
}

export class LabelJudge {
  /** Normalised name → label (the first label seen with that name). */
  private readonly byName = new Map<string, string>();
  private readonly patterns: Array<{ label: string; length: number; pattern: RegExp }> = [];

  constructor(labels: Iterable<string>) {
    for (const label of labels) {
      const name = normaliseLabelText(label);
      if (name === '' || this.byName.has(name)) continue;
      this.byName.set(name, label);
      // Whole words of the normalised text, with an optional plural s ("shorts" names "Short" too).
      this.patterns.push({ label, length: name.length, pattern: new RegExp(`(?:^| )${escapeRegExp(name)}s?(?= |$)`, 'u') });
    }
    if (this.byName.size === 0) throw new RangeError('LabelJudge: no label has a name left after normalising (letters or digits)');
  }

  get labels(): string[] {
    return [...this.byName.values()];
  }

  /** The label whose normalised name the normalised text equals, or null. */
  exact(text: string): string | null {
    return this.byName.get(normaliseLabelText(text)) ?? null;
  }

  /** The label named first in the text (leftmost; the longest name on a tie), or null. */
  firstMentioned(text: string): string | null {
    const norm = normaliseLabelText(text);
    let best: { label: string; at: number; length: number } | null = null;
    for (const { label, length, pattern } of this.patterns) {
      const m = pattern.exec(norm);
      if (m === null) continue;
      const at = m.index + (m[0].startsWith(' ') ? 1 : 0);
      if (best === null || at < best.at || (at === best.at && length > best.length)) best = { label, at, length };
    }
    return best?.label ?? null;
  }

  /** Judges a generated text for an item whose training target was `target` and whose label is `label`. */
  judge(generated: string, target: string, label: string): LabelJudgement {
    if (normaliseLabelText(target) === normaliseLabelText(label)) return { predicted: this.exact(generated), rule: 'exact' };
    return { predicted: this.firstMentioned(generated), rule: 'first-mention' };
  }
}
