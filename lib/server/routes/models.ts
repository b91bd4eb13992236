// GET /v1/models and GET /v1/models/:id: the one model this server serves.
import type { FastifyInstance } from 'fastify';

import type { ServerContext } from '../context';
import { ApiError } from '../errors';

function modelObject(ctx: ServerContext) {
  const i = ctx.model.info();
  return {
    id: ctx.modelName,
    object: 'model',
    created: ctx.created,
    owned_by: 'quantmoe',
    // extensions: what the model is and how much context a request may use
    architecture: i.architecture,
    context_length: i.contextSize,
    max_tokens_limit: ctx.limits.maxTokensLimit,
    parameters: i.parameters,
    experts: i.experts,
    experts_per_token: i.expertsPerToken,
  };
}

export function modelsRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => ({ object: 'list', data: [modelObject(ctx)] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    if (request.params.id !== ctx.modelName) {
      throw new ApiError(404, 'invalid_request_error', 'model_not_found', `the model '${request.params.id}' does not exist`, 'model');
    }
    return modelObject(ctx);
  });
}
