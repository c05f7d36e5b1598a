// The trainer and the CLI stay readable: no function in src/train/ or src/cli/ runs past 80 lines
// (a verb's registration counts its action; a long one splits into named phases, as the demo's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { repoRoot } from './helpers.js';

const MAX_LINES = 80;

export interface FunctionSpan { file: string; name: string; line: number; lines: number }

/** Every function, method, arrow function and constructor with a body in `text`, with its length in lines. */
export function functionSpans(file: string, text: string): FunctionSpan[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: FunctionSpan[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node) || ts.isFunctionExpression(node) || ts.isConstructorDeclaration(node)) && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const last = source.getLineAndCharacterOfPosition(node.end).line;
      const named = node.name?.getText() ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText() : '(anonymous)');
      out.push({ file, name: named, line: first + 1, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

test(`no function in src/train/ or src/cli/ is longer than ${MAX_LINES} lines`, () => {
  const spans = ['src/train', 'src/cli'].flatMap((d) => files(join(repoRoot, d)))
    .flatMap((f) => functionSpans(relative(repoRoot, f), readFileSync(f, 'utf8')));
  assert.ok(spans.length > 50, `read ${spans.length} functions`);
  assert.deepEqual(spans.filter((s) => s.lines > MAX_LINES).map((s) => `${s.file}:${s.line} ${s.name}: ${s.lines} lines`), []);
});

test('function lengths are measured from the first line to the closing brace', () => {
  const spans = functionSpans('x.ts', 'export function a() {\n  return 1;\n}\nconst b = () => {\n  const c = 2;\n  return c;\n};\n');
  assert.deepEqual(spans.map((s) => [s.name, s.line, s.lines]), [['a', 1, 3], ['b', 4, 4]]);
});
