// The `normalizer` of a Hugging Face tokenizer.json: what text becomes before it is split.
// Byte-level BPE files use Unicode normal forms (Qwen: NFC), lowercasing, or none; the
// SentencePiece-style ones (Replace "▁", Prepend) belong to tokenizers m6 does not read.

/** Text in, normalized text out; `undefined` when the file has no normalizer. */
export type Normalizer = (text: string) => string;

export class UnsupportedNormalizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedNormalizerError';
  }
}

const FORMS = { NFC: 'NFC', NFD: 'NFD', NFKC: 'NFKC', NFKD: 'NFKD' } as const;

/** The normalizer a tokenizer.json describes, or undefined for `null` and empty sequences. */
export function normalizerFromJson(json: unknown): Normalizer | undefined {
  if (json === null || json === undefined) return undefined;
  const node = json as { type?: unknown; normalizers?: unknown };
  const type = node.type;
  if (typeof type === 'string' && type in FORMS) {
    const form = FORMS[type as keyof typeof FORMS];
    return (text) => text.normalize(form);
  }
  if (type === 'Lowercase') return (text) => text.toLowerCase();
  if (type === 'Sequence') {
    if (!Array.isArray(node.normalizers)) throw new UnsupportedNormalizerError('Sequence normalizer without a "normalizers" list');
    const steps = node.normalizers.map(normalizerFromJson).filter((n): n is Normalizer => n !== undefined);
    if (steps.length === 0) return undefined;
    if (steps.length === 1) return steps[0];
    return (text) => steps.reduce((t, step) => step(t), text);
  }
  throw new UnsupportedNormalizerError(`normalizer ${JSON.stringify(type)} is not supported (m6 reads NFC, NFD, NFKC, NFKD, Lowercase and Sequence of them)`);
}
