// The training progress line: its text, periodic plain lines into a pipe, and the cli-progress bar
// on a terminal (redrawn in place, messages above it, its timer stopped by done()).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { formatProgress, ProgressLine, type ProgressSnapshot } from '../../src/train/progress.js';

/** A stream that records what is written; `tty` makes it look like a terminal of `columns` columns. */
function captureStream(tty: boolean, columns = 100): { stream: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({ write(chunk: Buffer | string, _enc, cb) { chunks.push(String(chunk)); cb(); } });
  Object.assign(w, { isTTY: tty, columns });
  return { stream: w as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
}

const snapshot = (step: number, over: Partial<ProgressSnapshot> = {}): ProgressSnapshot => ({
  step, totalSteps: 10, loss: 2.5, taskLoss: { describe: 2.25, answer: 3 }, lr: 3e-4, tokensPerSecond: 12345.6, etaSeconds: 95, nonFiniteSteps: 0, ...over,
});

/**
 * What a terminal would show after `raw`: a minimal emulator of what cli-progress writes (text, \r, \n,
 * cursor to column `ESC[nG`, clear right `ESC[0K` / whole line `ESC[2K`, cursor up/down `ESC[nA`/`ESC[nB`).
 */
function screen(raw: string): string[] {
  const lines = [''];
  let row = 0, col = 0;
  for (const m of raw.matchAll(/\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|[^\x1b\r\n]+/g)) {
    const [token, arg, command] = m;
    if (token === '\n') { row++; col = 0; lines[row] ??= ''; }
    else if (token === '\r') col = 0;
    else if (command === 'G') col = Number(arg || 1) - 1;
    else if (command === 'K') lines[row] = arg === '2' ? '' : lines[row]!.slice(0, col);
    else if (command === 'A') row = Math.max(0, row - Number(arg || 1));
    else if (command === 'B') { row += Number(arg || 1); lines[row] ??= ''; }
    else if (command === undefined) {
      const line = lines[row]!.padEnd(col);
      lines[row] = line.slice(0, col) + token + line.slice(col + token.length);
      col += token.length;
    }
  }
  return lines;
}

test('the line: step of total with bar and percentage, loss per task, tok/s, lr, ETA; unknown totals', () => {
  assert.equal(formatProgress(snapshot(3)), 'step 3/10 [######--------------] 30% | loss 2.500 (describe 2.250 answer 3.000) | 12,346 tok/s | lr 3.0e-4 | ETA 1m35s');
  assert.equal(formatProgress(snapshot(3), (f) => `<${f}>`).split(' | ')[0], 'step 3/10 <0.3> 30%');
  assert.match(formatProgress({ ...snapshot(3), moeDropped: 0.1234 }), / \| MoE dropped 12\.3%$/);
  const open = formatProgress(snapshot(7, { totalSteps: null, etaSeconds: null, nonFiniteSteps: 2 }));
  assert.match(open, /^step 7 \| loss/);
  assert.match(open, /ETA \? \| 2 NaN\/Inf skipped$/);
});

test('into a pipe: a plain line at most every interval, or when forced; messages on their own lines', () => {
  const { stream, text } = captureStream(false);
  const progress = new ProgressLine(stream, 60_000);
  progress.update(snapshot(1));
  progress.update(snapshot(2));          // within the interval: not printed
  progress.log('eval at step 2: describe 2.1');
  progress.update(snapshot(3), true);   // forced (first and last steps)
  progress.done();
  const lines = text().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' | ')[0]), ['step 1/10 [##------------------] 10%', 'eval at step 2: describe 2.1', 'step 3/10 [######--------------] 30%', '']);
  assert.ok(!text().includes('\x1b'), 'no terminal escapes in logs');
});

test('disabled: updates print nothing', () => {
  const { stream, text } = captureStream(false);
  const progress = new ProgressLine(stream, 0, false);
  progress.update(snapshot(1), true);
  progress.done();
  assert.equal(text(), '');
});

test('on a terminal: one bar redrawn in place, messages above it, cut to the width; done() leaves the last state and no timer', () => {
  const { stream, text } = captureStream(true, 60);
  const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const progress = new ProgressLine(stream, 60_000);
  progress.update(snapshot(1), true);
  progress.update(snapshot(4), true);
  progress.log('eval at step 4: describe 2.1');
  progress.update(snapshot(10), true);
  progress.done();
  const lines = screen(text());
  assert.equal(lines.length, 3, JSON.stringify(lines));
  assert.equal(lines[0], 'eval at step 4: describe 2.1');
  assert.match(lines[1]!, /^step 10\/10 █{20} 100% \| loss 2\.500/);
  assert.ok(lines[1]!.length <= 59, `cut to the terminal's width: ${lines[1]!.length} characters`);
  assert.equal(lines[2], '');
  assert.ok(text().includes('step 4/10 ████████░░░░░░░░░░░░ 40%'), 'the bar was drawn at step 4');
  assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, timersBefore, 'done() stopped the redraw timer');
  // After done(), messages go straight to the stream, and a new update starts a new bar.
  progress.log('saved');
  assert.ok(text().endsWith('saved\n'));
});
