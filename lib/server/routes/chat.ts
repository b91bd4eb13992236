// POST /v1/chat/completions: the model's chat template over `messages`, answered as one
// assistant message (or as deltas when streaming).
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context';
import { runGeneration } from '../generation';
import type { ResponseShape } from '../generation';
import { parseChatRequest } from '../validation';

const shape: ResponseShape = {
  idPrefix: 'chatcmpl',
  object: 'chat.completion',
  chunkObject: 'chat.completion.chunk',
  choice: (text, finishReason) => ({
    index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finishReason,
  }),
  chunkChoice: (text, finishReason) => ({
    index: 0, delta: text === undefined ? {} : { content: text }, logprobs: null, finish_reason: finishReason,
  }),
  firstChunkChoice: () => ({ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }),
};

export function chatRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/chat/completions', async (request, reply) => {
    const req = parseChatRequest(request.body, ctx.limits);
    return runGeneration(ctx, request, reply, shape, {
      ...req,
      start: (options) => ctx.model.chat(req.messages, options),
    });
  });
}
