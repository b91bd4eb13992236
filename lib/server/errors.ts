// HTTP errors in OpenAI's shape: every 4xx/5xx answer is {error: {message, type, param, code}}.
// Model errors (QuantMoeError) map to a status by their code, so a bad prompt is the client's
// 400 and never takes the server down.
import { QuantMoeError } from '../errors';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (code: string, message: string, param: string | null = null) =>
  new ApiError(400, 'invalid_request_error', code, message, param);

/** The model's typed errors, as HTTP errors. */
export function fromModelError(e: QuantMoeError): ApiError {
  switch (e.code) {
    case 'E_CONTEXT_OVERFLOW':
      return badRequest('context_length_exceeded', e.message, 'prompt');
    case 'E_TOKEN_RANGE':
      return badRequest('token_out_of_range', e.message, 'prompt');
    case 'E_ARGUMENT':
      return badRequest('invalid_value', e.message);
    case 'E_UNSUPPORTED':
    case 'E_NOT_IMPLEMENTED':
      return badRequest('unsupported', e.message);
    case 'E_DISPOSED':
      return new ApiError(503, 'server_error', 'model_unavailable', e.message);
    case 'E_ABORTED':
      return new ApiError(503, 'server_error', 'aborted', e.message);
    case 'E_OUT_OF_MEMORY':
      return new ApiError(503, 'server_error', 'out_of_memory', e.message);
    default:
      return new ApiError(500, 'server_error', e.code.toLowerCase(), e.message);
  }
}

/** Fastify's own errors (body parsing, sizes, content types) keep their 4xx status. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_content_length',
};

export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QuantMoeError) return fromModelError(e);
  const err = e as { statusCode?: number; code?: string; message?: string; name?: string };
  const status = typeof err?.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = (err.code && FASTIFY_CODES[err.code]) ?? (err.name === 'SyntaxError' ? 'invalid_json' : 'invalid_request');
    const message = code === 'invalid_json'
      ? `the request body is not valid JSON: ${err.message ?? 'parse error'}`
      : code === 'unsupported_media_type'
        ? `${err.message ?? 'unsupported media type'}; send the body as application/json`
        : err.message ?? 'bad request';
    return new ApiError(status, 'invalid_request_error', code, message);
  }
  return new ApiError(500, 'server_error', 'internal_error', err?.message ?? String(e));
}
