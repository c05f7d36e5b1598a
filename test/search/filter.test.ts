// The filter language: what parses, what is refused and why, the SQL it emits, and its
// three-valued evaluation (the exact store's) on rows with missing values.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F, parseFilter, filterToSql, compileFilter, FilterError, type FilterColumn } from '../../src/search/index.js';

const row = (r: Partial<Record<FilterColumn, string | number | null>>) => (c: FilterColumn) => r[c] ?? null;

describe('filter', () => {
  it('parses the CLI form into the same tree the builder makes, and emits quoted SQL', () => {
    const parsed = parseFilter("label = 'dress' AND price < 40");
    assert.deepEqual(parsed, F.and(F.eq('label', 'dress'), F.lt('price', 40)));
    assert.equal(filterToSql(parsed), "((label = 'dress') AND (price < 40))");
    assert.equal(filterToSql(parseFilter("title = 'it''s' OR imagePath IN ('a.png', 'b.png')")),
      "((title = 'it''s') OR (image_path IN ('a.png', 'b.png')))");
    assert.equal(filterToSql(parseFilter('not (price >= -1.5e2) and price <> 3 and label is not null')),
      '((NOT (price >= -150)) AND (price != 3) AND (NOT (label IS NULL)))');
    assert.equal(filterToSql(parseFilter("label NOT IN ('a')")), "(NOT (label IN ('a')))");
    // A quote in a builder value cannot escape its literal.
    assert.equal(filterToSql(F.eq('title', "x' OR 1=1 --")), "(title = 'x'' OR 1=1 --')");
  });

  it('AND binds tighter than OR; parentheses override', () => {
    const keep = compileFilter(parseFilter("label = 'a' OR label = 'b' AND price > 10"));
    assert.equal(keep(row({ label: 'a', price: 0 })), true);
    assert.equal(keep(row({ label: 'b', price: 0 })), false);
    const keep2 = compileFilter(parseFilter("(label = 'a' OR label = 'b') AND price > 10"));
    assert.equal(keep2(row({ label: 'a', price: 0 })), false);
  });

  it('refuses unknown columns, wrong types and bad syntax with the place and the fix', () => {
    const cases: [string, RegExp][] = [
      ["colour = 'red'", /unknown column 'colour' at column 1; the filterable columns are id, title, label, price, imagePath/],
      ["price < 'cheap'", /price < needs a finite number, got "cheap"/],
      ['label < 3', /label is a text column: it takes =, != or IN, not </],
      ["label = dress", /unknown column 'dress'|expected a 'string' or a number at column 9/],
      ["label = 'dress", /unterminated string starting at column 9/],
      ["label = 'a' AND", /expected a column name at column 16, got the end/],
      ["label = 'a' price < 3", /expected AND, OR or the end at column 13/],
      ['', /empty/],
      ["label IN ()", /expected a 'string' or a number at column 11/],
      ["label; DROP TABLE items", /unexpected ';' at column 6/],
    ];
    for (const [src, re] of cases) assert.throws(() => parseFilter(src), (e: Error) => e instanceof FilterError && re.test(e.message), src);
    assert.throws(() => F.lt('price', NaN), /finite number/);
    assert.throws(() => F.from({ op: '=', column: 'nope' as FilterColumn, value: 1 }), /unknown column 'nope'/);
  });

  it('evaluates with SQL three-valued logic: a missing value is neither kept by a test nor by its NOT', () => {
    const noPrice = row({ label: 'dress' });
    assert.equal(compileFilter(parseFilter('price < 40'))(noPrice), false);
    assert.equal(compileFilter(parseFilter('NOT price < 40'))(noPrice), false);
    assert.equal(compileFilter(parseFilter('price < 40 OR label = \'dress\''))(noPrice), true);
    assert.equal(compileFilter(parseFilter('NOT (price < 40 AND label = \'shirt\')'))(noPrice), true);
    assert.equal(compileFilter(parseFilter('price IS NULL'))(noPrice), true);
    assert.equal(compileFilter(parseFilter("label IN ('dress', 'coat')"))(noPrice), true);
    assert.equal(compileFilter(parseFilter('price IN (1, 2)'))(row({ price: 2 })), true);
  });
});
