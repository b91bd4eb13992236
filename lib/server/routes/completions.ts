// POST /v1/completions: text completion of a prompt (a string or token ids).
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context';
import { runGeneration } from '../generation';
import type { ResponseShape } from '../generation';
import { parseCompletionRequest } from '../validation';

const shape: ResponseShape = {
  idPrefix: 'cmpl',
  object: 'text_completion',
  chunkObject: 'text_completion',
  choice: (text, finishReason) => ({ index: 0, text, logprobs: null, finish_reason: finishReason }),
  chunkChoice: (text, finishReason) => ({ index: 0, text: text ?? '', logprobs: null, finish_reason: finishReason }),
};

export function completionsRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/completions', async (request, reply) => {
    const req = parseCompletionRequest(request.body, ctx.limits);
    return runGeneration(ctx, request, reply, shape, {
      ...req,
      start: (options) => ctx.model.generate(req.prompt, options),
    });
  });
}
