// The OpenAI-compatible HTTP server: builds the fastify instance (routes, API key, errors in
// OpenAI's shape, request metrics, shutdown) around one loaded Model. `createServer` returns the
// instance without listening (add routes, or inject requests); `serve` also listens, on
// 127.0.0.1 unless told otherwise.
//
// fastify is loaded when a server is created, not when quantmoe is imported: most users of the
// library never start a server and should not pay for loading it.
import { createHash, timingSafeEqual } from 'crypto';
import type { AddressInfo } from 'net';
import * as http from 'http';
import * as path from 'path';

import type { FastifyInstance, FastifyServerOptions } from 'fastify';

import { QuantMoeError } from '../errors';
import type { Model } from '../runtime/model';
import type { ServerContext } from './context';
import { ApiError, toApiError } from './errors';
import { SHUTDOWN } from './generation';
import { Metrics } from './metrics';
import { Admission } from './queue';
import { chatRoute } from './routes/chat';
import { completionsRoute } from './routes/completions';
import { modelsRoute } from './routes/models';
import { opsRoutes } from './routes/ops';

export interface ServerOptions {
  /** Require `Authorization: Bearer <apiKey>` on every route except GET /health. */
  apiKey?: string;
  /** Generation requests waiting or running at most; one more gets 429. Default 64. */
  maxQueue?: number;
  /** Largest max_tokens a request may ask for. Default: the model's context size. */
  maxTokensLimit?: number;
  /** The model's name in /v1/models and in requests. Default: the model file or folder name. */
  modelName?: string;
  /** Largest request body in bytes. Default 8 MiB. */
  bodyLimit?: number;
  /**
   * Milliseconds a client may take to send its whole request (headers and body); a slower one
   * (e.g. a trickled or stalled upload) gets 408 and its connection is closed, so it cannot hold a
   * socket forever. Responses (streams) are not limited by it. Default 30000.
   */
  requestTimeoutMs?: number;
  /** fastify's logger option (pino): false (default), true, or logger options. */
  logger?: FastifyServerOptions['logger'];
}

export interface ServeOptions extends ServerOptions {
  /** Default '127.0.0.1' (loopback only). */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  host: string;
  port: number;
  /** The model id clients send and /v1/models lists. */
  modelName: string;
  /** Aborts running generations, stops listening and closes connections. */
  close(): Promise<void>;
}

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  const n = v ?? fallback;
  if (!Number.isInteger(n) || n < 1) throw new QuantMoeError('E_ARGUMENT', `server option ${name} must be a positive integer, got ${String(v)}`);
  return n;
}

export function defaultModelName(model: Model): string {
  return path.basename(model.path).replace(/\.gguf$/i, '');
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export function createServer(model: Model, options: ServerOptions = {}): FastifyInstance {
  const info = model.info();
  const modelName = options.modelName ?? defaultModelName(model);
  if (typeof modelName !== 'string' || modelName.length === 0) throw new QuantMoeError('E_ARGUMENT', 'server option modelName must be a non-empty string');
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey.length === 0)) {
    throw new QuantMoeError('E_ARGUMENT', 'server option apiKey must be a non-empty string');
  }
  const maxQueue = positiveInt('maxQueue', options.maxQueue, 64);
  const maxTokensLimit = positiveInt('maxTokensLimit', options.maxTokensLimit, info.contextSize);
  const bodyLimit = positiveInt('bodyLimit', options.bodyLimit, 8 * 2 ** 20);
  const requestTimeout = positiveInt('requestTimeoutMs', options.requestTimeoutMs, 30_000);

  const metrics = new Metrics(modelName);
  const ctx: ServerContext = {
    model, modelName, created: Math.floor(Date.now() / 1000),
    limits: { maxTokensLimit, modelName }, admission: new Admission(maxQueue), metrics, closing: false,
  };

  const { fastify } = require('fastify') as typeof import('fastify');
  // Node checks request timeouts every connectionsCheckingInterval ms (default 30 s): check often
  // enough that a stalled client is dropped close to requestTimeout.
  const checkEvery = Math.max(50, Math.min(30_000, Math.floor(requestTimeout / 4)));
  const app = fastify({
    logger: options.logger ?? false, bodyLimit, return503OnClosing: true,
    serverFactory: (handler) => http.createServer({ requestTimeout, connectionsCheckingInterval: checkEvery }, handler),
  });

  // every request is counted once its response is over (499: the client left first)
  app.addHook('onRequest', async (request, reply) => {
    const endpoint = request.routeOptions.url ?? 'unmatched';
    reply.raw.once('close', () => metrics.request(endpoint, reply.raw.writableFinished ? reply.raw.statusCode : 499));
  });

  if (options.apiKey !== undefined) {
    const expected = sha256(options.apiKey);
    app.addHook('onRequest', async (request) => {
      if (request.routeOptions.url === '/health') return;
      const m = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
      if (!m || !timingSafeEqual(sha256(m[1].trim()), expected)) {
        throw new ApiError(401, 'authentication_error', 'invalid_api_key',
          m ? 'invalid API key' : 'this server requires an API key: send the header Authorization: Bearer <key>');
      }
    });
  }

  app.setErrorHandler((err, request, reply) => {
    const e = toApiError(err);
    if (e.status >= 500) request.log.error({ err }, 'request failed');
    if (e.status === 401) reply.header('www-authenticate', 'Bearer');
    if (e.status === 429) reply.header('retry-after', '1');
    return reply.code(e.status).send(e.body());
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new ApiError(404, 'invalid_request_error', 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(404).send(e.body());
  });

  completionsRoute(app, ctx);
  chatRoute(app, ctx);
  modelsRoute(app, ctx);
  opsRoutes(app, ctx);

  // shutdown: abort running generations and let their responses end before the listener closes
  // (fastify then closes the idle keep-alive connections instead of waiting on them)
  app.addHook('preClose', async () => {
    ctx.closing = true;
    ctx.admission.abortAll(SHUTDOWN);
    await ctx.admission.idle(5000);
  });
  return app;
}

export async function serve(model: Model, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new QuantMoeError('E_ARGUMENT', `server option port must be an integer in [0, 65535], got ${port}`);
  const app = createServer(model, options);
  try {
    await app.listen({ host, port });
  } catch (e) {
    await app.close();
    throw new QuantMoeError('E_IO', `cannot listen on ${host}:${port}: ${(e as Error).message}`, { cause: e });
  }
  const addr = app.server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    app, url: `http://${shown}:${addr.port}`, host: addr.address, port: addr.port,
    modelName: options.modelName ?? defaultModelName(model), close: () => app.close(),
  };
}
