// The playground's script: a tab per task, drag-and-drop images, each request sent to /v1 as
// multipart (images) or JSON, the answer shown with its latency (round trip and server time);
// search and recommend results as a grid of thumbnails, each with "similar" and "goes with" (a
// recommend query from that item) when the run recommends; the run's own held-out examples (GET
// /v1/examples; shoppers for recommend) as clickable inputs above each form. Plain DOM, no
// framework: six forms do not earn one. Talks only to the server that served it.

type Task = 'describe' | 'answer' | 'design' | 'embed' | 'search' | 'recommend';

const $ = <T extends HTMLElement>(selector: string): T => {
  const el = document.querySelector<T>(selector);
  if (el === null) throw new Error(`playground: no ${selector}`);
  return el;
};
const output = $<HTMLDivElement>('#output');
const latency = $<HTMLDivElement>('#latency');
const apiKey = $<HTMLInputElement>('#api-key');
apiKey.value = localStorage.getItem('m6-api-key') ?? '';
apiKey.addEventListener('change', () => localStorage.setItem('m6-api-key', apiKey.value));

/** The file dropped or chosen in each drop zone. */
const files = new Map<string, File>();

function authHeaders(): Record<string, string> {
  return apiKey.value.trim() === '' ? {} : { authorization: `Bearer ${apiKey.value.trim()}` };
}

/**
 * Frees the blob: URLs of the images under `root` (a dropped file's preview, thumbnails fetched
 * with the API key): the browser keeps a blob's bytes until its URL is revoked, so each one is
 * freed when its image leaves the page.
 */
function revokeImages(root: Element): void {
  for (const img of root.querySelectorAll('img')) if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
}

/** Replaces the output (the result before it, its images freed). */
function show(...nodes: Node[]): void {
  revokeImages(output);
  output.replaceChildren(...nodes);
}

function el(tag: string, className: string, text = ''): HTMLElement {
  const e = document.createElement(tag);
  e.className = className;
  e.textContent = text;
  return e;
}

function selectTab(task: string): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === task));
  for (const p of document.querySelectorAll<HTMLElement>('.panel')) p.hidden = p.id !== `tab-${task}`;
  show();
  latency.textContent = '';
}

/** Puts a file in a drop zone (undefined empties it): what the zone's task sends. */
function setFile(task: string, file: File | undefined): void {
  const zone = $<HTMLElement>(`[data-drop="${task}"]`);
  const preview = zone.querySelector('img') as HTMLImageElement;
  if (file === undefined) files.delete(task);
  else files.set(task, file);
  preview.hidden = file === undefined;
  if (preview.src.startsWith('blob:')) URL.revokeObjectURL(preview.src);   // the file it replaces
  if (file !== undefined) preview.src = URL.createObjectURL(file);
  else preview.removeAttribute('src');
  (zone.querySelector('span') as HTMLElement).textContent = file?.name ?? zone.dataset.hint!;
  // A search sends a text or a photo: a photo replaces the text.
  if (task === 'search' && file !== undefined) $<HTMLInputElement>('#search-text').value = '';
}

function setupDrop(zone: HTMLElement): void {
  const input = zone.querySelector('input') as HTMLInputElement;
  zone.dataset.hint = (zone.querySelector('span') as HTMLElement).textContent ?? '';
  const take = (file: File | undefined) => { if (file !== undefined) setFile(zone.dataset.drop!, file); };
  zone.addEventListener('click', () => input.click());
  input.addEventListener('change', () => take(input.files?.[0]));
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => { e.preventDefault(); zone.classList.remove('over'); take(e.dataTransfer?.files[0]); });
}

/** The request for a task: multipart when it carries an image, JSON otherwise. */
function requestFor(task: Task): { body: BodyInit; headers: Record<string, string> } {
  const fields: Record<string, string | number | boolean> = {};
  const value = (id: string) => ($<HTMLInputElement>(id)).value;
  if (task === 'answer') fields.question = value('#answer-question');
  if (task === 'design') Object.assign(fields, { prompt: value('#design-prompt'), n: Number(value('#design-n')), seed: Number(value('#design-seed')), temperature: Number(value('#design-temperature')), ...(value('#design-guidance').trim() !== '' ? { guidance: Number(value('#design-guidance')) } : {}) });
  if (task === 'embed' && !files.has('embed')) fields.text = value('#embed-text');
  if (task === 'describe' && $<HTMLInputElement>('#describe-stream').checked) fields.stream = true;
  if (task === 'search') Object.assign(fields, searchFields());
  if (task === 'recommend') Object.assign(fields, recommendFields());
  const file = task === 'design' || task === 'recommend' ? undefined : files.get(task);
  if (file === undefined) return { body: JSON.stringify(fields), headers: { 'content-type': 'application/json' } };
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  form.append('image', file);
  return { body: form, headers: {} };
}

/** The search form's fields: the text unless a photo is dropped, the filter when given, k. */
function searchFields(): Record<string, string | number> {
  const fields: Record<string, string | number> = { k: Number(($<HTMLInputElement>('#search-k')).value) || 12 };
  const where = ($<HTMLInputElement>('#search-where')).value.trim();
  if (where !== '') fields.where = where;
  if (pendingItem !== undefined) fields.item = pendingItem.id;
  else if (!files.has('search')) fields.text = ($<HTMLInputElement>('#search-text')).value;
  searchedFor = pendingItem !== undefined ? `like “${pendingItem.title}”` : files.has('search') ? `like the photo ${files.get('search')!.name}` : `for “${fields.text}”`;
  return fields;
}

/** Set by clicking a result: the next search is for items like it. */
let pendingItem: { id: string; title: string } | undefined;
/** What the last search asked, for its results' heading (an item search leaves the text box as it was). */
let searchedFor = '';
/** Set by a result's "similar" or "goes with": the next recommend query is from that item. */
let pendingRecommend: { mode: 'similar' | 'complement'; id: string; title: string } | undefined;
/** Whether the run recommends (from /readyz): results then offer "similar" and "goes with". */
let recommends = false;

/** The recommend form's fields: an item from a result's button, else the shopper, else the session's ids; the filter when given, k. */
function recommendFields(): Record<string, string | number | string[]> {
  const fields: Record<string, string | number | string[]> = { k: Number(($<HTMLInputElement>('#recommend-k')).value) || 12 };
  const where = ($<HTMLInputElement>('#recommend-where')).value.trim();
  if (where !== '') fields.where = where;
  const user = ($<HTMLInputElement>('#recommend-user')).value.trim();
  if (pendingRecommend !== undefined) {
    fields[pendingRecommend.mode] = pendingRecommend.id;
    searchedFor = `${pendingRecommend.mode === 'similar' ? 'like' : 'that go with'} “${pendingRecommend.title}”`;
  } else if (user !== '') {
    fields.user = user;
    searchedFor = `for shopper ${user}`;
  } else {
    fields.history = ($<HTMLInputElement>('#recommend-history')).value.split(/[\s,]+/).filter((id) => id !== '');
    searchedFor = `after the session ${(fields.history as string[]).join(', ')}`;
  }
  return fields;
}

/** Runs a recommend query from an item (a result's button), in the recommend tab. */
function recommendFrom(mode: 'similar' | 'complement', r: { id: string; title: string }): void {
  selectTab('recommend');
  pendingRecommend = { mode, id: r.id, title: r.title || r.id };
  $<HTMLButtonElement>('[data-go="recommend"]').click();
}

/** An image URL of this server as an <img> can load it: with an API key the bytes are fetched with it. */
async function imageSrc(url: string): Promise<string> {
  if (Object.keys(authHeaders()).length === 0) return url;
  const res = await fetch(url, { headers: authHeaders() });
  return res.ok ? URL.createObjectURL(await res.blob()) : '';
}

function thumbnail(url: string | null, alt: string): HTMLElement {
  if (url === null) return el('div', 'noimage', 'no image');
  const img = document.createElement('img');
  img.alt = alt;
  img.loading = 'lazy';
  void imageSrc(url).then((src) => {
    // Its result may have been replaced while the bytes came: then nothing shows it.
    if (!img.isConnected && src.startsWith('blob:')) URL.revokeObjectURL(src);
    else img.src = src;
  });
  return img;
}

interface Hit { id: string; score: number; title: string; label: string; price: number | null; image: string | null }
interface SearchOut { results: Hit[]; latencyMs: number; store: string; exact: boolean }
interface RecommendOut { results: Hit[]; latencyMs: number }

/** A result: its thumbnail, score and title; clicking it runs `open`; "similar" and "goes with" recommend from it. */
function resultCard(r: Hit, hint: string, open: () => void): HTMLElement {
  // A div, not a button: it holds the two action buttons.
  const card = el('div', 'card');
  card.tabIndex = 0;
  card.setAttribute('role', 'button');
  card.title = `${r.id}: ${hint}`;
  card.append(thumbnail(r.image, r.title), el('span', 'score', r.score.toFixed(3)), el('span', 'title', r.title || r.id), el('span', 'muted', [r.label, r.price !== null ? String(r.price) : ''].filter((x) => x !== '').join(' · ') || r.id));
  card.addEventListener('click', open);
  card.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
  if (recommends) {
    const actions = el('span', 'actions');
    for (const [mode, label] of [['similar', 'similar'], ['complement', 'goes with']] as const) {
      const b = el('button', `action ${mode}`, label) as HTMLButtonElement;
      b.title = mode === 'similar' ? 'recommend items like this one' : 'recommend items of other categories that go with this one';
      b.addEventListener('click', (e) => { e.stopPropagation(); recommendFrom(mode, r); });
      actions.append(b);
    }
    card.append(actions);
  }
  return card;
}

function renderResults(results: Hit[], heading: string, hint: string, open: (r: Hit) => void): void {
  if (results.length === 0) return show(el('p', 'muted', 'no item matches (check the filter)'));
  const grid = el('div', 'grid results');
  for (const r of results) grid.append(resultCard(r, hint, () => open(r)));
  show(el('p', 'muted', heading), grid);
}

function renderSearch(d: SearchOut): void {
  renderResults(d.results, `${d.results.length} items ${searchedFor} · ${d.store === 'lancedb' ? 'LanceDB' : 'exact store'} · ${d.exact ? 'exact scan' : 'ANN index'}`, 'items like this one',
    (r) => { pendingItem = { id: r.id, title: r.title || r.id }; $<HTMLButtonElement>('[data-go="search"]').click(); });
}

function renderRecommend(d: RecommendOut): void {
  renderResults(d.results, `${d.results.length} items ${searchedFor}`, 'recommend items like this one', (r) => recommendFrom('similar', r));
}

interface TextOut { text: string; tokenIds: number[]; finishReason: string; ms: number }
interface DesignOut { images: Array<{ png: string }>; ms: number }
interface EmbedOut { vector: number[]; dim: number; ms: number }

function render(task: Task, data: unknown): void {
  if (task === 'describe' || task === 'answer') {
    const d = data as TextOut;
    show(el('p', 'text', d.text || '(no text)'), el('p', 'muted', `${d.tokenIds.length} tokens, ${d.finishReason}`));
  } else if (task === 'design') {
    const grid = el('div', 'grid');
    for (const im of (data as DesignOut).images) {
      const img = document.createElement('img');
      img.src = `data:image/png;base64,${im.png}`;
      img.alt = 'design';
      grid.append(img);
    }
    show(grid);
  } else if (task === 'search') {
    renderSearch(data as SearchOut);
  } else if (task === 'recommend') {
    renderRecommend(data as RecommendOut);
  } else {
    const d = data as EmbedOut;
    show(el('p', 'text', `${d.dim}-dimensional unit vector`), el('code', '', `[${d.vector.slice(0, 8).map((x) => x.toFixed(3)).join(', ')}, …]`));
  }
}

/** Reads server-sent token events into the output as they come. */
async function readStream(res: Response, started: number): Promise<void> {
  const text = el('p', 'text');
  show(text);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const kind = /^event: (\w+)/.exec(event)?.[1];
      const data = JSON.parse(event.slice(event.indexOf('data: ') + 6)) as { text: string; ms?: number; detail?: string };
      if (kind === 'token') text.textContent += data.text;
      if (kind === 'done') { text.textContent = data.text; latency.textContent = `${Math.round(performance.now() - started)} ms round trip · ${data.ms} ms on the server · streamed`; }
      if (kind === 'error') show(el('p', 'error', data.detail ?? 'error'));
    }
  }
}

async function go(task: Task, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  latency.textContent = 'working…';
  const started = performance.now();
  try {
    const { body, headers } = requestFor(task);
    pendingItem = undefined;
    pendingRecommend = undefined;
    const res = await fetch(`/v1/${task}`, { method: 'POST', body, headers: { ...headers, ...authHeaders() } });
    if (res.ok && (res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return await readStream(res, started);
    const data = (await res.json()) as { ms?: number; latencyMs?: number; status?: number; title?: string; detail?: string };
    const ms = Math.round(performance.now() - started);
    if (!res.ok) {
      latency.textContent = `${ms} ms round trip`;
      show(el('p', 'error', `${res.status} ${data.title ?? ''}: ${data.detail ?? ''}`));
      return;
    }
    latency.textContent = `${ms} ms round trip · ${data.ms ?? data.latencyMs} ms on the server`;
    render(task, data);
  } catch (err) {
    show(el('p', 'error', String(err)));
  } finally {
    button.disabled = false;
  }
}

interface Example { id: string; image?: string | null; text?: string; question?: string; prompt?: string; items?: number }

/** The run's held-out examples under each form, as buttons that fill the form in. */
async function loadExamples(): Promise<void> {
  const res = await fetch('/v1/examples', { headers: authHeaders() }).catch(() => undefined);
  if (res === undefined || !res.ok) return;
  const examples = (await res.json()) as Partial<Record<Task, Example[]>>;
  for (const box of document.querySelectorAll<HTMLElement>('[data-examples]')) {
    const task = box.dataset.examples as Task;
    const list = examples[task] ?? [];
    // Shoppers are not held out: the run trained on their histories but the last items.
    const intro = task === 'recommend' ? 'Try a shopper of the data (their whole history is the query):' : 'Try one of the run\'s held-out examples (it never trained on them):';
    revokeImages(box);
    box.replaceChildren(...(list.length > 0 ? [el('span', 'muted', intro)] : []), ...list.map((e) => exampleButton(task, e)));
  }
}

function exampleButton(task: Task, e: Example): HTMLElement {
  const b = el('button', 'example');
  b.dataset.example = e.id;
  // Search examples are query texts: a thumbnail there would read as an image query.
  if (e.image && task !== 'search') b.append(thumbnail(e.image, e.id));
  const label = task === 'answer' ? e.question : task === 'design' ? e.prompt : task === 'search' ? e.text : task === 'recommend' ? `${e.id} · ${e.items} items` : undefined;
  if (label) b.append(el('span', '', label));
  b.title = task === 'describe' ? `the data says: ${e.text}` : task === 'answer' ? `the data's answer: ${e.text}` : task === 'recommend' ? `shopper ${e.id}: their whole history is the query` : e.id;
  b.addEventListener('click', () => void useExample(task, e));
  return b;
}

async function useExample(task: Task, e: Example): Promise<void> {
  if (task === 'design') $<HTMLInputElement>('#design-prompt').value = e.prompt ?? '';
  if (task === 'answer') $<HTMLInputElement>('#answer-question').value = e.question ?? '';
  if (task === 'recommend') {
    $<HTMLInputElement>('#recommend-user').value = e.id;
    $<HTMLInputElement>('#recommend-history').value = '';
  }
  if (task === 'search') {
    setFile('search', undefined);
    $<HTMLInputElement>('#search-text').value = e.text ?? '';
  }
  if ((task === 'describe' || task === 'answer') && e.image) {
    const res = await fetch(e.image, { headers: authHeaders() });
    if (res.ok) setFile(task, new File([await res.blob()], e.id, { type: res.headers.get('content-type') ?? 'image/png' }));
  }
}

async function main(): Promise<void> {
  $<HTMLInputElement>('#search-text').addEventListener('input', () => { if (files.has('search')) setFile('search', undefined); });
  // A recommend query is a shopper or a session: typing one clears the other.
  $<HTMLInputElement>('#recommend-user').addEventListener('input', () => { $<HTMLInputElement>('#recommend-history').value = ''; });
  $<HTMLInputElement>('#recommend-history').addEventListener('input', () => { $<HTMLInputElement>('#recommend-user').value = ''; });
  apiKey.addEventListener('change', () => void loadExamples());
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tab]')) b.addEventListener('click', () => selectTab(b.dataset.tab!));
  for (const z of document.querySelectorAll<HTMLElement>('[data-drop]')) setupDrop(z);
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-go]')) b.addEventListener('click', () => void go(b.dataset.go as Task, b));
  const ready = await fetch('/readyz').then((r) => r.json() as Promise<{ ready: boolean; tasks?: string[]; step?: number }>).catch(() => undefined);
  if (ready?.tasks !== undefined) {
    $('#run-info').textContent = `step ${ready.step} · serves ${ready.tasks.join(', ')}`;
    recommends = ready.tasks.includes('recommend');
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tab]')) {
      if (!b.disabled && !ready.tasks.includes(b.dataset.tab!)) { b.disabled = true; b.title = b.dataset.tab === 'search' ? 'start the server with --index to search' : b.dataset.tab === 'recommend' ? 'the run was not trained to recommend (m6 train --tasks …,recommend)' : 'this run does not serve it'; }
    }
  }
  await loadExamples();
}

void main();
