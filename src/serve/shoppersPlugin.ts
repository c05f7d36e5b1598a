// The data recommendations read besides the run (search/'s ShopperData): shoppers' histories for
// `user` queries and the baskets and sessions complements are counted over. Its dataset spec is the
// one given (`m6 serve --data SPEC`), else the one the run recorded in RUN/split.json. Read on
// first use, then kept: a server that never recommends never reads it. Decorates `app.shoppers`.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { DatasetSpec } from '../data/datasetSpec.js';
import { runDataSpec } from '../eval/heldOutExamples.js';
import type { Pipeline } from '../pipelines/index.js';
import { complementsFrom, readShopperData, type ComplementSource, type ShopperData } from '../search/index.js';
import { InputError } from '../torch/inputError.js';
import { runDirOf } from '../train/vqFiles.js';
import { HttpProblem } from './problem.js';

export interface ServeShoppers {
  /** The data's shoppers and groups, read once; a 422 on `field` saying why when there is no data. */
  data(field: string): Promise<ShopperData>;
  /** The complement source over the run's items, built once from data(). */
  complements(): Promise<ComplementSource>;
  /** The data's shoppers when it can be read, else undefined (no error): what /v1/examples offers. */
  tryData(): Promise<ShopperData | undefined>;
}

declare module 'fastify' {
  interface FastifyInstance {
    shoppers: ServeShoppers;
  }
}

export interface ShoppersPluginOptions {
  pipeline: Pipeline;
  /** The dataset to read (default: the one the run trained on). */
  data?: DatasetSpec;
}

/** Memoises an async read; a failure that is not the data's fault (a bug) is not kept, so the next call retries. */
function once<T>(read: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= read().catch((err: unknown) => {
    if (!(err instanceof InputError)) p = undefined;
    throw err;
  }));
}

export const shoppersPlugin = fp(async (app: FastifyInstance, o: ShoppersPluginOptions) => {
  const spec = o.data ?? runDataSpec(runDirOf(o.pipeline.checkpoint));
  const read = once(async () => {
    if ('reason' in spec) throw new InputError(`${spec.reason}: start the server with --data SPEC (the dataset with the shoppers' interactions)`);
    return readShopperData(spec);
  });
  const data = async (field: string) => read().catch((err: unknown) => {
    if (err instanceof InputError) throw new HttpProblem(422, 'validation', `${field}: needs the data's shoppers: ${err.message}`, field);
    throw err;
  });
  const complements = once(async () => complementsFrom(o.pipeline.items!, await data('complement'), app.catalog?.index));
  const tryData = () => read().catch((err: unknown) => (err instanceof InputError ? undefined : Promise.reject(err)));
  app.decorate('shoppers', { data, complements, tryData });
}, { name: 'm6-shoppers', fastify: '5.x', dependencies: ['m6-catalog'] });
