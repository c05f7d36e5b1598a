// GET /v1/examples: a few of the run's own held-out examples per task the server serves (photos to
// describe, questions, prompts, search queries; shoppers of the data for recommend), for the
// playground to offer; their images come from GET /v1/examples/:id/image. Read from the run's
// recorded split and data on the first call, then kept: the data is read once per server, and
// only when someone asks.
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { heldOutExamples, type HeldOutExample, type RunExamples } from '../../eval/heldOutExamples.js';
import { someShoppers } from '../../search/index.js';
import { InputError } from '../../torch/inputError.js';
import { runDirOf } from '../../train/vqFiles.js';
import { imageUnder, sendImage } from '../images.js';
import { ExamplesOut, ItemParams, problemResponses, type ExamplesOut as Examples } from '../schemas.js';

interface Loaded { out: Examples; images: Map<string, string>; imageRoot: string | undefined }

/** The examples as the API answers them, with the images they link to by row id. */
function present(app: FastifyInstance, ex: RunExamples, shoppers: Examples['recommend']): Loaded {
  const images = new Map<string, string>();
  const image = (e: HeldOutExample): string | null => {
    if (e.imagePath === undefined || !imageUnder(e.imagePath, ex.imageRoot)) return null;
    images.set(e.id, e.imagePath);
    return `/v1/examples/${encodeURIComponent(e.id)}/image`;
  };
  const served = (task: 'describe' | 'answer' | 'design') => app.m6.pipeline.supports(task);
  const list = <T>(task: keyof RunExamples['tasks'], on: boolean, f: (e: HeldOutExample) => T): T[] => (on ? (ex.tasks[task] ?? []).map(f) : []);
  const out: Examples = {
    describe: list('describe', served('describe'), (e) => ({ id: e.id, image: image(e), text: e.text ?? '' })),
    answer: list('answer', served('answer'), (e) => ({ id: e.id, image: image(e), question: e.question ?? '', text: e.text ?? '' })),
    design: list('design', served('design'), (e) => ({ id: e.id, prompt: e.prompt ?? '' })),
    search: list('search', app.catalog !== null, (e) => ({ id: e.id, image: image(e), text: e.text ?? '' })),
    // Shoppers, not held-out rows: a user query is their whole history, as `m6 recommend --user` takes it.
    recommend: shoppers,
    ...(ex.reason !== undefined ? { reason: ex.reason } : {}),
  };
  return { out, images, imageRoot: ex.imageRoot };
}

export const examplesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  let loading: Promise<Loaded> | undefined;
  // Data that cannot be read (moved, changed) means no examples, said why; anything else is a bug.
  const heldOut = () => heldOutExamples(runDirOf(app.m6.pipeline.checkpoint)).catch((err: unknown): RunExamples => {
    if (!(err instanceof InputError)) throw err;
    return { tasks: {}, reason: err.message };
  });
  const shoppers = async () => {
    const data = app.m6.pipeline.supports('recommend') ? await app.shoppers.tryData() : undefined;
    return data !== undefined ? someShoppers(data, 6) : [];
  };
  const examples = (): Promise<Loaded> => (loading ??= Promise.all([heldOut(), shoppers()]).then(
    ([ex, users]) => present(app, ex, users),
    (err: unknown) => { loading = undefined; throw err; },
  ));

  app.get('/examples', {
    schema: { summary: 'Held-out examples of the run, per task, for trying the model', tags: ['examples'], response: { 200: ExamplesOut, ...problemResponses } },
  }, async () => (await examples()).out);

  app.get('/examples/:id/image', {
    schema: { summary: 'The image of a held-out example', tags: ['examples'], params: ItemParams, produces: ['image/*'], response: { ...problemResponses } },
  }, async (request, reply) => {
    const { images, imageRoot } = await examples();
    return sendImage(request, reply, images.get(request.params.id), imageRoot, `example '${request.params.id}'`);
  });
};
