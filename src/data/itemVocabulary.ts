// Item ids → dense indices 0..n-1, the rows of an item tower's table and the columns of a score
// vector. First-appearance order: catalog rows first, then interaction items the catalog lacks, so
// adding interactions never renumbers the catalog.
import { InputError } from '../torch/inputError.js';

export class ItemVocabularyError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'ItemVocabularyError';
  }
}

export class ItemVocabulary {
  readonly ids: readonly string[];
  private readonly byId: Map<string, number>;

  private constructor(ids: string[], byId: Map<string, number>) {
    this.ids = ids;
    this.byId = byId;
  }

  index(id: string): number | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.ids.length;
  }

  /** Repeated ids keep their first index. */
  static from(ids: Iterable<string>): ItemVocabulary {
    const list: string[] = [];
    const byId = new Map<string, number>();
    for (const id of ids) {
      if (byId.has(id)) continue;
      byId.set(id, list.length);
      list.push(id);
    }
    return new ItemVocabulary(list, byId);
  }

  toJSON(): { ids: string[] } {
    return { ids: this.ids.slice() };
  }

  /** Read what toJSON wrote; `source` (a file) names where a bad value came from. */
  static fromJSON(x: unknown, source: string): ItemVocabulary {
    const ids = (x as { ids?: unknown } | null)?.ids;
    if (x === null || typeof x !== 'object' || !Array.isArray(ids)) {
      throw new ItemVocabularyError(`${source}: expected an item vocabulary {"ids": ["item id", …]}, got ${x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x}`);
    }
    const byId = new Map<string, number>();
    for (let i = 0; i < ids.length; i++) {
      const id: unknown = ids[i];
      if (typeof id !== 'string') throw new ItemVocabularyError(`${source}: ids[${i}] must be a string item id, got ${JSON.stringify(id)}`);
      if (byId.has(id)) throw new ItemVocabularyError(`${source}: item id '${id}' appears twice (ids[${byId.get(id)}] and ids[${i}]); each id must have one index`);
      byId.set(id, i);
    }
    return new ItemVocabulary(ids as string[], byId);
  }
}
