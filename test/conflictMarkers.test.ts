// A merge that left its conflict markers behind (README.md held one for a session) fails here, not in a reader's eyes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers.js';

test('no tracked text file holds merge-conflict markers', () => {
  const files = execFileSync('git', ['ls-files'], { cwd: repoRoot, encoding: 'utf8' }).split('\n')
    .filter((f) => /\.(ts|mjs|js|json|md|cc|h|py|sh|yml|yaml|gyp|html|css)$/.test(f));
  const found: string[] = [];
  for (const f of files) {
    let text: string;
    try { text = readFileSync(join(repoRoot, f), 'utf8'); } catch { continue; }
    text.split('\n').forEach((line, i) => { if (/^(<{7} |>{7} |={7}$)/.test(line)) found.push(`${f}:${i + 1}: ${line}`); });
  }
  assert.deepEqual(found, []);
});
