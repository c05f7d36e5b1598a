// Running the server for `m6 serve`: listen, say where, and on SIGTERM or SIGINT shut down in
// order — stop accepting connections (Fastify answers new requests on open keep-alive ones with
// 503), answer what is in flight and queued, free the model, and resolve so the process exits 0.
import type { FastifyInstance } from 'fastify';
import { build, type ServeOptions } from './app.js';

export interface ListenOptions extends ServeOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  /** Resolves when a signal has closed the server (or `stop` was called). */
  stopped: Promise<void>;
  stop(): Promise<void>;
}

export async function startServer(o: ListenOptions): Promise<RunningServer> {
  const app = await build(o);
  const url = await app.listen({ host: o.host, port: o.port });
  let closing: Promise<void> | undefined;
  const stop = () => (closing ??= (async () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await app.close();
  })());
  let signalled: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => { signalled = resolve; });
  const onSignal = (signal: NodeJS.Signals): void => {
    app.log.info(`${signal}: finishing in-flight requests, then exiting`);
    void stop().then(() => signalled(), (err: unknown) => { app.log.error({ err }, 'shutdown failed'); signalled(); });
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return { app, url, stopped, stop: async () => { await stop(); signalled(); } };
}
