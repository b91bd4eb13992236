// GET /health (liveness + load, never behind the API key) and GET /metrics (Prometheus text).
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context';
import { METRICS_CONTENT_TYPE } from '../metrics';

/** The engine answers stats between scheduler steps; a long prefill chunk must not hang a scrape. */
const STATS_TIMEOUT_MS = 5000;

export function opsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/health', async (_request, reply) => {
    const a = ctx.admission;
    reply.code(ctx.closing ? 503 : 200);
    return {
      status: ctx.closing ? 'shutting_down' : 'ok',
      model: ctx.modelName,
      in_flight: a.inFlight,
      waiting: a.waiting,
      running: a.running,
      max_queue: a.limit,
    };
  });

  app.get('/metrics', async (request, reply) => {
    let experts: number[][] | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${STATS_TIMEOUT_MS} ms`)), STATS_TIMEOUT_MS);
      });
      experts = (await Promise.race([ctx.model.stats(), timeout])).expertCounts;
    } catch (e) {
      request.log.warn({ err: e }, 'model.stats() failed; /metrics without expert load');
    } finally {
      clearTimeout(timer);
    }
    const a = ctx.admission;
    reply.type(METRICS_CONTENT_TYPE);
    return ctx.metrics.render({ inFlight: a.inFlight, waiting: a.waiting, running: a.running, maxQueue: a.limit }, experts);
  });
}
