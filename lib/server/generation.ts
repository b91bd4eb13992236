// One generation request from admission to the last byte, shared by /v1/completions and
// /v1/chat/completions: admit (or 429), run model.generate/chat with an AbortSignal tied to the
// client's connection, and answer as one JSON object or as Server-Sent Events. Errors that occur
// before the first token (context overflow, bad token ids) are still a proper 4xx JSON answer,
// because the stream's headers are sent only once the first token exists.
import { randomUUID } from 'crypto';
import { performance } from 'perf_hooks';

import type { FastifyReply, FastifyRequest } from 'fastify';

import { QuantMoeError, isQuantMoeError } from '../errors';
import type { Completion, GenerateOptions, GeneratedPiece } from '../runtime/model';
import type { ServerContext } from './context';
import { ApiError, toApiError } from './errors';
import type { Metrics } from './metrics';
import { SseStream } from './sse';

/** Abort reasons: the client closed its connection / the server is shutting down. */
export const CLIENT_GONE = Symbol('client closed the connection');
export const SHUTDOWN = Symbol('server shutting down');

export interface ResponseShape {
  /** Prefix of response ids ('cmpl' / 'chatcmpl'). */
  idPrefix: string;
  /** `object` of a non-streaming answer and of a stream chunk. */
  object: string;
  chunkObject: string;
  choice(text: string, finishReason: string): Record<string, unknown>;
  /** A stream chunk's choice: text, or only the finish reason (text undefined). */
  chunkChoice(text: string | undefined, finishReason: string | null): Record<string, unknown>;
  /** Chat streams open with a {role: 'assistant'} delta. */
  firstChunkChoice?: () => Record<string, unknown>;
}

export interface GenerationJob {
  stream: boolean;
  includeUsage: boolean;
  options: GenerateOptions;
  start(options: GenerateOptions): AsyncGenerator<GeneratedPiece, Completion>;
}

type Step = IteratorResult<GeneratedPiece, Completion>;

/**
 * Counts generated tokens as they stream, one piece behind: generate() yields one piece per
 * token plus, rarely, a final flush piece, so the exact total comes from usage at the end.
 */
class TokenCounter {
  private counted = 0;
  private held = 0;
  constructor(private readonly metrics: Metrics) {}
  piece(): void {
    if (this.held) this.add(1);
    this.held = 1;
  }
  finish(exact?: number): void {
    if (exact !== undefined) this.add(Math.max(0, exact - this.counted));
    else if (this.held) this.add(1);
    this.held = 0;
  }
  private add(n: number): void {
    this.counted += n;
    this.metrics.tokens(n);
  }
}

const usageOf = (c: Completion) => ({
  prompt_tokens: c.usage.promptTokens, completion_tokens: c.usage.completionTokens, total_tokens: c.usage.totalTokens,
});

export async function runGeneration(
  ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, shape: ResponseShape, job: GenerationJob,
): Promise<unknown> {
  if (ctx.closing) throw new ApiError(503, 'server_error', 'shutting_down', 'the server is shutting down');
  const ac = new AbortController();
  const ticket = ctx.admission.tryAcquire(ac);
  if (!ticket) {
    throw new ApiError(429, 'rate_limit_error', 'queue_full',
      `the server already has ${ctx.admission.limit} requests waiting or running (maxQueue); retry later`);
  }
  const res = reply.raw;
  const onClose = () => {
    if (!res.writableFinished) ac.abort(CLIENT_GONE);
  };
  res.on('close', onClose);
  if (request.raw.socket?.destroyed) ac.abort(CLIENT_GONE);

  const t0 = performance.now();
  const counter = new TokenCounter(ctx.metrics);
  const id = `${shape.idPrefix}-${randomUUID().replace(/-/g, '')}`;
  const created = Math.floor(Date.now() / 1000);
  const head = { id, created, model: ctx.modelName };
  let it: AsyncGenerator<GeneratedPiece, Completion> | undefined;
  let firstTokenSeen = false;
  const next = async (): Promise<Step> => {
    const r = await it!.next();
    if (!r.done) {
      if (!firstTokenSeen) {
        firstTokenSeen = true;
        ticket.started();
        ctx.metrics.firstToken((performance.now() - t0) / 1000);
      }
      counter.piece();
    }
    return r;
  };
  const finished = (c: Completion) => {
    counter.finish(c.usage.completionTokens);
    ctx.metrics.prompt(c.usage.promptTokens);
    ctx.metrics.finished((performance.now() - t0) / 1000);
  };
  const clientGone = () => ac.signal.aborted && ac.signal.reason === CLIENT_GONE;

  try {
    it = job.start({ ...job.options, signal: ac.signal });
    let r: Step;
    try {
      r = await next();
    } catch (e) {
      if (clientGone()) return hijacked(reply);
      throw e;
    }

    if (!job.stream) {
      try {
        while (!r.done) r = await next();
      } catch (e) {
        if (clientGone()) return hijacked(reply);
        throw e;
      }
      finished(r.value);
      return {
        ...head, object: shape.object,
        choices: [shape.choice(r.value.text, r.value.finishReason)],
        usage: usageOf(r.value),
      };
    }

    // streaming: the first token exists, so the request is good; commit to a 200 event stream
    reply.hijack();
    const sse = new SseStream(res);
    sse.open();
    const chunk = (choice: Record<string, unknown>) => ({ ...head, object: shape.chunkObject, choices: [choice] });
    try {
      if (shape.firstChunkChoice) await sse.send(chunk(shape.firstChunkChoice()));
      while (!r.done) {
        if (r.value.text && !(await sse.send(chunk(shape.chunkChoice(r.value.text, null))))) break;
        r = await next();
      }
      if (!r.done) return undefined; // client gone: the close handler aborted the generation
      finished(r.value);
      await sse.send(chunk(shape.chunkChoice(undefined, r.value.finishReason)));
      if (job.includeUsage) await sse.send({ ...head, object: shape.chunkObject, choices: [], usage: usageOf(r.value) });
      await sse.done();
    } catch (e) {
      if (ac.signal.reason === SHUTDOWN) {
        await sse.send(new ApiError(503, 'server_error', 'shutting_down', 'the server is shutting down').body());
      } else if (!clientGone()) {
        request.log.error({ err: e }, 'generation failed mid-stream');
        await sse.send(toApiError(e).body());
      }
      sse.end();
    }
    return undefined;
  } catch (e) {
    if (ac.signal.reason === SHUTDOWN && isQuantMoeError(e, 'E_ABORTED')) {
      throw new ApiError(503, 'server_error', 'shutting_down', 'the server is shutting down');
    }
    throw e instanceof QuantMoeError || e instanceof ApiError ? e : toApiError(e);
  } finally {
    counter.finish(); // no-op after finished(); counts the held piece of an aborted stream
    res.off('close', onClose);
    ticket.release();
    if (it) void it.return(undefined as never).catch(() => undefined); // aborts in the engine if still running
  }
}

/** The client is gone: nothing to send; tell fastify not to try. */
function hijacked(reply: FastifyReply): undefined {
  reply.hijack();
  return undefined;
}
