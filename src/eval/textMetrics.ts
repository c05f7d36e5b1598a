// Caption metrics as the COCO caption evaluation defines them: corpus BLEU-4, ROUGE-L (F with β=1.2)
// and CIDEr-D (tf-idf n-gram cosine with clipping and a length penalty, ×10). Each candidate is
// scored against one or more references.

/** Lower-cased word tokens; CJK characters count one token each (no spaces in Chinese). */
export function tokenizeForMetrics(s: string): string[] {
  return s.toLowerCase().match(/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]|[\p{L}\p{N}]+/gu) ?? [];
}

function ngrams(tokens: string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join('\u0001');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

export interface ScoredPair { candidate: string; references: string[] }

/** Corpus BLEU (Papineni et al.): clipped n-gram precisions, geometric mean, brevity penalty against the closest reference length. */
export function bleu(pairs: ScoredPair[], maxN = 4): number {
  const matched = new Array(maxN).fill(0), total = new Array(maxN).fill(0);
  let candLen = 0, refLen = 0;
  for (const { candidate, references } of pairs) {
    const c = tokenizeForMetrics(candidate);
    const refs = references.map(tokenizeForMetrics);
    candLen += c.length;
    // The reference length closest to the candidate's (ties: the shorter), as in the reference implementation.
    refLen += refs.map((r) => r.length).reduce((best, l) => (Math.abs(l - c.length) < Math.abs(best - c.length) || (Math.abs(l - c.length) === Math.abs(best - c.length) && l < best) ? l : best), Infinity);
    for (let n = 1; n <= maxN; n++) {
      const cg = ngrams(c, n);
      const maxRef = new Map<string, number>();
      for (const r of refs) for (const [g, k] of ngrams(r, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, k));
      for (const [g, k] of cg) matched[n - 1] += Math.min(k, maxRef.get(g) ?? 0);
      total[n - 1] += Math.max(0, c.length - n + 1);
    }
  }
  if (candLen === 0) return 0;
  let logSum = 0;
  for (let n = 0; n < maxN; n++) {
    if (matched[n] === 0) return 0;
    logSum += Math.log(matched[n] / total[n]);
  }
  const bp = candLen >= refLen ? 1 : Math.exp(1 - refLen / candLen);
  return bp * Math.exp(logSum / maxN);
}

function lcs(a: string[], b: string[]): number {
  const prev = new Array(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(prev[j], prev[j - 1]);
      diag = up;
    }
  }
  return prev[b.length];
}

/** ROUGE-L of one candidate: max LCS precision and recall over references, F-measure with β = 1.2. Averaged over pairs. */
export function rougeL(pairs: ScoredPair[], beta = 1.2): number {
  if (!pairs.length) return 0;
  let sum = 0;
  for (const { candidate, references } of pairs) {
    const c = tokenizeForMetrics(candidate);
    let p = 0, r = 0;
    for (const ref of references.map(tokenizeForMetrics)) {
      const l = lcs(c, ref);
      if (c.length) p = Math.max(p, l / c.length);
      if (ref.length) r = Math.max(r, l / ref.length);
    }
    sum += p > 0 && r > 0 ? ((1 + beta ** 2) * p * r) / (r + beta ** 2 * p) : 0;
  }
  return sum / pairs.length;
}

/** CIDEr-D (Vedantam et al.) of the whole set: the mean of the per-pair scores. */
export function ciderD(pairs: ScoredPair[], o: { maxN?: number; sigma?: number } = {}): number {
  const scores = ciderDScores(pairs, o);
  return scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : 0;
}

/**
 * CIDEr-D of each pair, as the COCO caption evaluation's `Cider` computes it (test/eval/ciderReference.test.ts
 * checks it against that code's outputs): document frequencies from the references of the whole set.
 */
export function ciderDScores(pairs: ScoredPair[], o: { maxN?: number; sigma?: number } = {}): number[] {
  const maxN = o.maxN ?? 4, sigma = o.sigma ?? 6;
  if (!pairs.length) return [];
  const refsTok = pairs.map((p) => p.references.map(tokenizeForMetrics));
  const df = new Map<string, number>();
  for (const refs of refsTok) {
    const seen = new Set<string>();
    for (const r of refs) for (let n = 1; n <= maxN; n++) for (const g of ngrams(r, n).keys()) seen.add(`${n}:${g}`);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const logN = Math.log(pairs.length);
  const vec = (tokens: string[]) => {
    const out: { v: Map<string, number>; norm: number }[] = [];
    for (let n = 1; n <= maxN; n++) {
      const v = new Map<string, number>();
      let norm = 0;
      for (const [g, tf] of ngrams(tokens, n)) {
        const w = tf * Math.max(0, logN - Math.log(Math.max(1, df.get(`${n}:${g}`) ?? 0)));
        v.set(g, w);
        norm += w * w;
      }
      out.push({ v, norm: Math.sqrt(norm) });
    }
    return out;
  };
  return pairs.map((p, i) => {
    const c = tokenizeForMetrics(p.candidate);
    const cv = vec(c);
    const scores = new Array(maxN).fill(0);
    for (const r of refsTok[i]) {
      const rv = vec(r);
      // The reference code counts bigrams (length − 1); the difference is the same unless a side is empty, which scores 0 anyway.
      const delta = c.length - r.length;
      const penalty = Math.exp(-(delta * delta) / (2 * sigma * sigma));
      for (let n = 0; n < maxN; n++) {
        let dot = 0;
        for (const [g, w] of cv[n].v) {
          const wr = rv[n].v.get(g);
          if (wr !== undefined) dot += Math.min(w, wr) * wr;  // CIDEr-D clips the candidate's counts
        }
        if (cv[n].norm > 0 && rv[n].norm > 0) scores[n] += (dot / (cv[n].norm * rv[n].norm)) * penalty;
      }
    }
    return (scores.reduce((a, b) => a + b, 0) / maxN / Math.max(1, refsTok[i].length)) * 10;
  });
}
