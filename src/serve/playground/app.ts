// The playground's script: a tab per task, drag-and-drop images, each request sent to /v1 as
// multipart (images) or JSON, the answer shown with its latency (round trip and server time).
// Plain DOM, no framework: four forms do not earn one. Talks only to the server that served it.

type Task = 'describe' | 'answer' | 'design' | 'embed';

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

function show(...nodes: Node[]): void {
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

function setupDrop(zone: HTMLElement): void {
  const input = zone.querySelector('input') as HTMLInputElement;
  const preview = zone.querySelector('img') as HTMLImageElement;
  const take = (file: File | undefined) => {
    if (file === undefined) return;
    files.set(zone.dataset.drop!, file);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    (zone.querySelector('span') as HTMLElement).textContent = file.name;
  };
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
  if (task === 'design') Object.assign(fields, { prompt: value('#design-prompt'), n: Number(value('#design-n')), seed: Number(value('#design-seed')), temperature: Number(value('#design-temperature')) });
  if (task === 'embed' && !files.has('embed')) fields.text = value('#embed-text');
  if (task === 'describe' && $<HTMLInputElement>('#describe-stream').checked) fields.stream = true;
  const file = task === 'design' ? undefined : files.get(task);
  if (file === undefined) return { body: JSON.stringify(fields), headers: { 'content-type': 'application/json' } };
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  form.append('image', file);
  return { body: form, headers: {} };
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
    const res = await fetch(`/v1/${task}`, { method: 'POST', body, headers: { ...headers, ...authHeaders() } });
    if (res.ok && (res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return await readStream(res, started);
    const data = (await res.json()) as { ms?: number; status?: number; title?: string; detail?: string };
    const ms = Math.round(performance.now() - started);
    if (!res.ok) {
      latency.textContent = `${ms} ms round trip`;
      show(el('p', 'error', `${res.status} ${data.title ?? ''}: ${data.detail ?? ''}`));
      return;
    }
    latency.textContent = `${ms} ms round trip · ${data.ms} ms on the server`;
    render(task, data);
  } catch (err) {
    show(el('p', 'error', String(err)));
  } finally {
    button.disabled = false;
  }
}

async function main(): Promise<void> {
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tab]')) b.addEventListener('click', () => selectTab(b.dataset.tab!));
  for (const z of document.querySelectorAll<HTMLElement>('[data-drop]')) setupDrop(z);
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-go]')) b.addEventListener('click', () => void go(b.dataset.go as Task, b));
  const ready = await fetch('/readyz').then((r) => r.json() as Promise<{ ready: boolean; tasks?: string[]; step?: number }>).catch(() => undefined);
  if (ready?.tasks !== undefined) {
    $('#run-info').textContent = `step ${ready.step} · serves ${ready.tasks.join(', ')}`;
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tab]')) if (!b.disabled && !ready.tasks.includes(b.dataset.tab!)) { b.disabled = true; b.title = 'this run does not serve it'; }
  }
}

void main();
