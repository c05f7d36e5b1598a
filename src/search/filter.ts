// Filters over a catalog's own columns. Both stores take one typed `Filter` tree: the CLI's
// SQL-like string (`label = 'dress' AND price < 40`) is parsed into it here, checked against the
// known columns and their types, and only then turned back into SQL for LanceDB (literals quoted,
// identifiers from a closed list) or into a predicate for the exact store. One parser means the two
// stores cannot drift in what they accept, and no user string ever reaches LanceDB unparsed.
//
// Supported: = != <> < <= > >= on numbers, = != <> IN on strings, IS [NOT] NULL, [NOT] IN (…),
// AND, OR, NOT, parentheses, 'string' (with '' for a quote) and number literals.
// Semantics are SQL's three-valued logic, as LanceDB (DataFusion) applies it: a comparison with a
// missing value is unknown, NOT unknown is unknown, and a row is kept only where the filter is true.
import { InputError } from '../torch/inputError.js';

/** The filterable columns and the type of their values. */
export interface FilterColumns {
  id: string;
  title: string;
  label: string;
  price: number;
  imagePath: string;
}
export type FilterColumn = keyof FilterColumns;

export const FILTER_COLUMNS: Readonly<Record<FilterColumn, { sql: string; type: 'string' | 'number' }>> = Object.freeze({
  id: { sql: 'id', type: 'string' },
  title: { sql: 'title', type: 'string' },
  label: { sql: 'label', type: 'string' },
  price: { sql: 'price', type: 'number' },
  imagePath: { sql: 'image_path', type: 'string' },
});

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

export type Filter =
  | { readonly op: 'and' | 'or'; readonly args: readonly Filter[] }
  | { readonly op: 'not'; readonly arg: Filter }
  | { readonly op: CompareOp; readonly column: FilterColumn; readonly value: string | number }
  | { readonly op: 'in'; readonly column: FilterColumn; readonly values: readonly (string | number)[] }
  | { readonly op: 'isNull'; readonly column: FilterColumn };

/** A --where the index cannot run: which token, what was expected. */
export class FilterError extends InputError {
  override name = 'FilterError';
}

// ---- the typed builder -------------------------------------------------------------------------

export type StringColumn = { [C in FilterColumn]: FilterColumns[C] extends string ? C : never }[FilterColumn];
export type NumberColumn = { [C in FilterColumn]: FilterColumns[C] extends number ? C : never }[FilterColumn];

/** Builds filters with the column types checked by the compiler: `F.and(F.eq('label', 'dress'), F.lt('price', 40))`. */
export const F = {
  eq: <C extends FilterColumn>(column: C, value: FilterColumns[C]): Filter => checked({ op: '=', column, value }),
  ne: <C extends FilterColumn>(column: C, value: FilterColumns[C]): Filter => checked({ op: '!=', column, value }),
  lt: (column: NumberColumn, value: number): Filter => checked({ op: '<', column, value }),
  le: (column: NumberColumn, value: number): Filter => checked({ op: '<=', column, value }),
  gt: (column: NumberColumn, value: number): Filter => checked({ op: '>', column, value }),
  ge: (column: NumberColumn, value: number): Filter => checked({ op: '>=', column, value }),
  in: <C extends FilterColumn>(column: C, values: readonly FilterColumns[C][]): Filter => checked({ op: 'in', column, values }),
  isNull: (column: FilterColumn): Filter => ({ op: 'isNull', column }),
  and: (...args: Filter[]): Filter => ({ op: 'and', args }),
  or: (...args: Filter[]): Filter => ({ op: 'or', args }),
  not: (arg: Filter): Filter => ({ op: 'not', arg }),
  /** Either as written by a user (parsed and checked) or already a tree (checked). */
  from: (where: string | Filter): Filter => (typeof where === 'string' ? parseFilter(where) : validateFilter(where)),
};

function checked(f: Filter): Filter {
  validateFilter(f);
  return f;
}

/** Throws a FilterError when a tree names an unknown column or compares a value of the wrong type. */
export function validateFilter(f: Filter): Filter {
  switch (f.op) {
    case 'and': case 'or':
      if (!f.args.length) throw new FilterError(`filter: ${f.op.toUpperCase()} needs at least one operand`);
      f.args.forEach(validateFilter);
      return f;
    case 'not': validateFilter(f.arg); return f;
    case 'isNull': columnInfo(f.column); return f;
    case 'in': {
      const c = columnInfo(f.column);
      if (!f.values.length) throw new FilterError(`filter: ${f.column} IN () needs at least one value`);
      for (const v of f.values) checkValue(f.column, c.type, v, 'IN');
      return f;
    }
    default: {
      const c = columnInfo(f.column);
      if (!['=', '!=', '<', '<=', '>', '>='].includes(f.op)) throw new FilterError(`filter: unknown operator '${String(f.op)}'`);
      if (c.type === 'string' && f.op !== '=' && f.op !== '!=') {
        throw new FilterError(`filter: ${f.column} is a text column: it takes =, != or IN, not ${f.op}`);
      }
      checkValue(f.column, c.type, f.value, f.op);
      return f;
    }
  }
}

function columnInfo(column: string): { sql: string; type: 'string' | 'number' } {
  if (!Object.hasOwn(FILTER_COLUMNS, column)) {
    throw new FilterError(`filter: unknown column '${column}'; the filterable columns are ${Object.keys(FILTER_COLUMNS).join(', ')}`);
  }
  return FILTER_COLUMNS[column as FilterColumn];
}

function checkValue(column: string, type: 'string' | 'number', v: unknown, op: string): void {
  if (type === 'number' && (typeof v !== 'number' || !Number.isFinite(v))) {
    throw new FilterError(`filter: ${column} ${op} needs a finite number, got ${JSON.stringify(v)}`);
  }
  if (type === 'string' && typeof v !== 'string') {
    throw new FilterError(`filter: ${column} ${op} needs a 'quoted string', got ${JSON.stringify(v)}`);
  }
}

// ---- to SQL (LanceDB) ---------------------------------------------------------------------------

/** A string literal in SQL: single quotes, a quote doubled. */
export function sqlString(s: string): string {
  if (s.includes('\0')) throw new FilterError('filter: a string literal may not hold a NUL character');
  return `'${s.replaceAll("'", "''")}'`;
}

function sqlValue(v: string | number): string {
  if (typeof v === 'string') return sqlString(v);
  if (!Number.isFinite(v)) throw new FilterError(`filter: ${v} is not a finite number`);
  return String(v);  // JS's shortest round-trip form: 40, 0.5, 1e-7, 1e+21 (all SQL float literals)
}

/** The filter as a SQL predicate over the LanceDB table's columns. */
export function filterToSql(f: Filter): string {
  switch (f.op) {
    case 'and': case 'or': return f.args.length === 1 ? filterToSql(f.args[0]!) : `(${f.args.map(filterToSql).join(f.op === 'and' ? ' AND ' : ' OR ')})`;
    case 'not': return `(NOT ${filterToSql(f.arg)})`;
    case 'isNull': return `(${FILTER_COLUMNS[f.column].sql} IS NULL)`;
    case 'in': return `(${FILTER_COLUMNS[f.column].sql} IN (${f.values.map(sqlValue).join(', ')}))`;
    default: return `(${FILTER_COLUMNS[f.column].sql} ${f.op} ${sqlValue(f.value)})`;
  }
}

// ---- evaluation (exact store) ---------------------------------------------------------------------

/** What a predicate reads of a row: a column's value, or null when the row has none. */
export type ColumnReader = (column: FilterColumn) => string | number | null;

/** The filter compiled to a predicate over rows, with SQL's three-valued logic (true keeps the row). */
export function compileFilter(f: Filter): (read: ColumnReader) => boolean {
  const t = compile3(f);
  return (read) => t(read) === true;
}

type Truth = boolean | null;
function compile3(f: Filter): (read: ColumnReader) => Truth {
  switch (f.op) {
    case 'and': {
      const parts = f.args.map(compile3);
      return (r) => { let out: Truth = true; for (const p of parts) { const v = p(r); if (v === false) return false; if (v === null) out = null; } return out; };
    }
    case 'or': {
      const parts = f.args.map(compile3);
      return (r) => { let out: Truth = false; for (const p of parts) { const v = p(r); if (v === true) return true; if (v === null) out = null; } return out; };
    }
    case 'not': { const p = compile3(f.arg); return (r) => { const v = p(r); return v === null ? null : !v; }; }
    case 'isNull': { const c = f.column; return (r) => r(c) === null; }
    case 'in': {
      const c = f.column, set = new Set<string | number>(f.values);
      return (r) => { const v = r(c); return v === null ? null : set.has(v); };
    }
    default: {
      const c = f.column, x = f.value;
      const cmp = COMPARE[f.op];
      return (r) => { const v = r(c); return v === null ? null : cmp(v, x); };
    }
  }
}

const COMPARE: Record<CompareOp, (a: string | number, b: string | number) => boolean> = {
  '=': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

// ---- the parser ------------------------------------------------------------------------------------

type Token =
  | { kind: 'ident'; text: string; at: number }
  | { kind: 'string'; value: string; at: number }
  | { kind: 'number'; value: number; at: number }
  | { kind: 'op'; text: string; at: number }
  | { kind: 'end'; at: number };

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'IN', 'IS', 'NULL']);

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) { i++; continue; }
    const at = i + 1;  // 1-based column for messages
    if (ch === "'") {
      let s = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new FilterError(`filter: unterminated string starting at column ${at}: ${src}`);
        if (src[i] === "'") {
          if (src[i + 1] === "'") { s += "'"; i += 2; continue; }
          i++;
          break;
        }
        s += src[i++];
      }
      out.push({ kind: 'string', value: s, at });
      continue;
    }
    const num = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i));
    if (num && (ch !== '-' || !out.length || out[out.length - 1]!.kind === 'op')) {
      out.push({ kind: 'number', value: Number(num[0]), at });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (id) { out.push({ kind: 'ident', text: id[0], at }); i += id[0].length; continue; }
    const op = /^(<=|>=|!=|<>|=|<|>|\(|\)|,)/.exec(src.slice(i));
    if (op) { out.push({ kind: 'op', text: op[0] === '<>' ? '!=' : op[0], at }); i += op[0].length; continue; }
    throw new FilterError(`filter: unexpected '${ch}' at column ${at}: ${src}`);
  }
  out.push({ kind: 'end', at: src.length + 1 });
  return out;
}

/** Parses the SQL-like filter a user writes (`label = 'dress' AND price < 40`) into a checked Filter. */
export function parseFilter(src: string): Filter {
  const toks = tokenize(src);
  let p = 0;
  const peek = (): Token => toks[p]!;
  const isKw = (t: Token, kw: string): boolean => t.kind === 'ident' && t.text.toUpperCase() === kw;
  const isOp = (t: Token, op: string): boolean => t.kind === 'op' && t.text === op;
  const fail = (t: Token, expected: string): never => {
    const got = t.kind === 'end' ? 'the end' : t.kind === 'string' ? `'${t.value}'` : t.kind === 'number' ? String(t.value) : `'${t.text}'`;
    throw new FilterError(`filter: expected ${expected} at column ${t.at}, got ${got}: ${src}`);
  };

  const orExpr = (): Filter => {
    const args = [andExpr()];
    while (isKw(peek(), 'OR')) { p++; args.push(andExpr()); }
    return args.length === 1 ? args[0]! : { op: 'or', args };
  };
  const andExpr = (): Filter => {
    const args = [notExpr()];
    while (isKw(peek(), 'AND')) { p++; args.push(notExpr()); }
    return args.length === 1 ? args[0]! : { op: 'and', args };
  };
  const notExpr = (): Filter => {
    if (isKw(peek(), 'NOT')) { p++; return { op: 'not', arg: notExpr() }; }
    return primary();
  };
  const literal = (): string | number => {
    const t = peek();
    if (t.kind === 'string' || t.kind === 'number') { p++; return t.value; }
    return fail(t, "a 'string' or a number");
  };
  const primary = (): Filter => {
    const t = peek();
    if (isOp(t, '(')) {
      p++;
      const inner = orExpr();
      if (!isOp(peek(), ')')) fail(peek(), "')'");
      p++;
      return inner;
    }
    if (t.kind !== 'ident' || KEYWORDS.has(t.text.toUpperCase())) return fail(t, 'a column name');
    p++;
    const column = resolveColumn(t.text, t.at, src);
    const next = peek();
    if (isKw(next, 'IS')) {
      p++;
      const negate = isKw(peek(), 'NOT');
      if (negate) p++;
      if (!isKw(peek(), 'NULL')) fail(peek(), 'NULL');
      p++;
      const f: Filter = { op: 'isNull', column };
      return negate ? { op: 'not', arg: f } : f;
    }
    let negateIn = false;
    if (isKw(next, 'NOT')) { p++; negateIn = true; if (!isKw(peek(), 'IN')) fail(peek(), 'IN'); }
    if (isKw(peek(), 'IN')) {
      p++;
      if (!isOp(peek(), '(')) fail(peek(), "'('");
      p++;
      const values = [literal()];
      while (isOp(peek(), ',')) { p++; values.push(literal()); }
      if (!isOp(peek(), ')')) fail(peek(), "',' or ')'");
      p++;
      const f: Filter = { op: 'in', column, values };
      validateAt(f, t.at, src);
      return negateIn ? { op: 'not', arg: f } : f;
    }
    const o = peek();
    if (o.kind !== 'op' || !['=', '!=', '<', '<=', '>', '>='].includes(o.text)) return fail(o, 'a comparison (=, !=, <, <=, >, >=, IN, IS NULL)');
    p++;
    const f: Filter = { op: o.text as CompareOp, column, value: literal() };
    validateAt(f, t.at, src);
    return f;
  };

  if (peek().kind === 'end') throw new FilterError('filter: empty; write e.g. label = \'dress\' AND price < 40');
  const f = orExpr();
  if (peek().kind !== 'end') fail(peek(), 'AND, OR or the end');
  return f;
}

function resolveColumn(name: string, at: number, src: string): FilterColumn {
  const alias = name === 'image_path' ? 'imagePath' : name;
  if (Object.hasOwn(FILTER_COLUMNS, alias)) return alias as FilterColumn;
  throw new FilterError(`filter: unknown column '${name}' at column ${at}; the filterable columns are ${Object.keys(FILTER_COLUMNS).join(', ')}: ${src}`);
}

function validateAt(f: Filter, at: number, src: string): void {
  try {
    validateFilter(f);
  } catch (e) {
    if (e instanceof FilterError) throw new FilterError(`${e.message} (at column ${at}: ${src})`);
    throw e;
  }
}
