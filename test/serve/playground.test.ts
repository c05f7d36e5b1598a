// The playground in a real browser (Debian's chromium through playwright-core, which downloads no
// browser) against a server on loopback: describe an uploaded photo, answer a held-out example,
// design from a prompt (a grid of images), embed a text, search the catalog index (a grid of
// thumbnails, then items like one), recommend (from a search result, for a shopper, what goes
// with an item); a screenshot of each tab goes to out/playground/.
// Skips, saying so, where chromium is not installed (scripts/install-system-deps.sh installs it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { repoRoot } from '../helpers.js';
import { loadPipeline, type Pipeline } from '../../src/pipelines/index.js';
import { build } from '../../src/serve/app.js';
import { buildTinyIndex, trainTinyRun, type TinyRun } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const shots = join(repoRoot, 'out', 'playground');
const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM}: install Debian's chromium (scripts/install-system-deps.sh) to run the browser test`;

let tiny: TinyRun;
let pipeline: Pipeline;
let app: FastifyInstance;
let url = '';

before(async () => {
  if (skip !== false) return;
  tiny = await trainTinyRun('m6-serve-ui-');
  pipeline = await loadPipeline(tiny.run);
  app = await build({ pipeline, index: await buildTinyIndex(tiny, pipeline) });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  await app?.close();
  if (tiny !== undefined) rmSync(tiny.dir, { recursive: true, force: true });
});

test('the playground: describe, answer, design, embed, search and recommend from the page, with held-out examples', { skip }, async () => {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
    const failed: string[] = [];
    page.on('pageerror', (e) => failed.push(String(e)));
    let revoked = '';   // a blob: URL the test loads on purpose after it was freed
    page.on('requestfailed', (r) => { if (r.url() !== revoked) failed.push(`${r.url()}: ${r.failure()?.errorText}`); });
    page.on('request', (r) => { if (!r.url().startsWith(url) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) failed.push(`left the server: ${r.url()}`); });
    await page.goto(`${url}/`);
    // Page-side code as strings: this test compiles without the DOM's types.
    await page.waitForFunction("(document.querySelector('#run-info')?.textContent ?? '').includes('serves')");
    assert.equal(await page.getAttribute('a[href="/docs"]', 'href'), '/docs');

    const done = () => page.waitForFunction("/ms on the server|^\\d+ ms round trip$/.test(document.querySelector('#latency')?.textContent ?? '')");
    // A file dropped over another frees the first one's preview (its blob: URL no longer loads).
    const preview = () => page.getAttribute('[data-drop="describe"] img', 'src');
    await page.setInputFiles('[data-drop="describe"] input[type=file]', join(tiny.dir, 'catalog', 'images', 'p000002.png'));
    const dropped = await preview();
    assert.match(dropped ?? '', /^blob:/);
    await page.setInputFiles('[data-drop="describe"] input[type=file]', tiny.image);
    assert.notEqual(await preview(), dropped);
    revoked = dropped!;
    assert.equal(await page.evaluate(`fetch(${JSON.stringify(dropped)}).then(() => 'live', () => 'revoked')`), 'revoked');
    await page.click('[data-go="describe"]');
    await done();
    assert.match(await page.textContent('#latency') ?? '', /\d+ ms round trip · [\d.]+ ms on the server/);
    assert.ok(await page.isVisible('#output .text'), 'a description is shown');
    await page.screenshot({ path: join(shots, 'describe.png'), fullPage: true });

    // A held-out example fills the form in: its photo and its question.
    await page.click('[data-tab="answer"]');
    await page.click('[data-examples="answer"] button.example');
    await page.waitForSelector('[data-drop="answer"] img:not([hidden])');
    assert.notEqual(await page.inputValue('#answer-question'), 'what colour is it?', 'the example\'s question');
    await page.click('[data-go="answer"]');
    await done();
    assert.ok(await page.isVisible('#output .text'));
    await page.screenshot({ path: join(shots, 'answer.png'), fullPage: true });

    await page.click('[data-tab="design"]');
    assert.deepEqual(await page.$$eval('.panel', (ps) => ps.filter((p) => (p as unknown as { checkVisibility(): boolean }).checkVisibility()).map((p) => p.id)), ['tab-design'], 'one panel at a time');
    await page.click('[data-examples="design"] button.example');
    assert.equal(await page.inputValue('#design-prompt'), (await page.textContent('[data-examples="design"] button.example'))?.trim());
    await page.fill('#design-n', '4');
    await page.fill('#design-guidance', '3');   // sent as guidance: 3 (a value the server refused would show no images)
    await page.click('[data-go="design"]');
    await page.waitForSelector('#output .grid img:nth-child(4)');
    assert.equal(await page.locator('#output .grid img').count(), 4);
    const loaded = await page.$$eval('#output .grid img', (imgs) => imgs.every((i) => (i as unknown as { complete: boolean; naturalWidth: number }).complete && (i as unknown as { naturalWidth: number }).naturalWidth > 0));
    assert.ok(loaded, 'the designs decode as images');
    await page.screenshot({ path: join(shots, 'design.png'), fullPage: true });

    await page.click('[data-tab="embed"]');
    await page.fill('#embed-text', 'red dress');
    await page.click('[data-go="embed"]');
    await done();
    assert.match(await page.textContent('#output') ?? '', /32-dimensional unit vector/);
    await page.screenshot({ path: join(shots, 'embed.png'), fullPage: true });

    // Search: a held-out title finds a grid of catalog thumbnails, each with its score and title.
    await page.click('[data-tab="search"]');
    await page.click('[data-examples="search"] button.example');
    assert.ok((await page.inputValue('#search-text')).length > 0, 'the example is the query');
    await page.fill('#search-k', '8');
    await page.click('[data-go="search"]');
    await done();
    await page.waitForFunction("document.querySelectorAll('#output .results .card img').length === 8 && [...document.querySelectorAll('#output .results .card img')].every((i) => i.complete && i.naturalWidth > 0)");
    assert.match(await page.textContent('#output .results .card .score') ?? '', /^-?\d\.\d{3}$/);
    assert.ok(((await page.textContent('#output .results .card .title')) ?? '').length > 0);
    await page.screenshot({ path: join(shots, 'search.png'), fullPage: true });
    // A result is a query too: items like it (itself left out).
    const first = await page.getAttribute('#output .results .card', 'title');
    await page.click('#output .results .card');
    await page.waitForFunction(`![...document.querySelectorAll('#output .results .card')].some((c) => c.title === ${JSON.stringify(first)})`);
    await page.fill('#search-where', 'colour = 1');
    await page.click('[data-go="search"]');
    await page.waitForSelector('#output .error');
    assert.match(await page.textContent('#output .error') ?? '', /422 .*where: .*colour/);
    await page.fill('#search-where', '');

    // Recommend from a search result ("similar" opens the recommend tab), then for a shopper of the
    // data: a grid of thumbnails with scores and titles; "goes with" on one of them.
    const heading = (text: string) => page.waitForFunction(`(document.querySelector('#output > p.muted')?.textContent ?? '').includes(${JSON.stringify(text)})`);
    await page.click('[data-go="search"]');
    await done();
    await page.click('#output .results .card .action.similar');
    await heading('items like');
    assert.equal(await page.getAttribute('[data-tab="recommend"]', 'aria-selected'), 'true');
    await page.click('[data-examples="recommend"] button.example');
    assert.match(await page.inputValue('#recommend-user'), /^u\d+$/);
    await page.fill('#recommend-k', '8');
    await page.click('[data-go="recommend"]');
    await heading('8 items for shopper');
    await page.waitForFunction("document.querySelectorAll('#output .results .card img').length === 8 && [...document.querySelectorAll('#output .results .card img')].every((i) => i.complete && i.naturalWidth > 0)");
    assert.match(await page.textContent('#output .results .card .score') ?? '', /^-?\d+\.\d{3}$/);
    assert.ok(((await page.textContent('#output .results .card .title')) ?? '').length > 0);
    assert.match(await page.textContent('#latency') ?? '', /\d+ ms round trip · [\d.]+ ms on the server/);
    await page.screenshot({ path: join(shots, 'recommend.png'), fullPage: true });
    await page.click('#output .results .card .action.complement');
    await heading('that go with');
    await page.screenshot({ path: join(shots, 'recommend-goes-with.png'), fullPage: true });
    await page.click('[data-tab="search"]');

    // A bad request shows the server's problem detail, not a broken page.
    await page.click('[data-tab="design"]');
    await page.fill('#design-prompt', '   ');
    await page.click('[data-go="design"]');
    await page.waitForSelector('#output .error');
    assert.match(await page.textContent('#output .error') ?? '', /422 .*prompt: empty/);
    assert.deepEqual(failed, []);
  } finally {
    await browser.close();
  }
});
