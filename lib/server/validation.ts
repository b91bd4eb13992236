// Request bodies of /v1/completions and /v1/chat/completions, checked field by field. Every
// wrong type or value is a 400 naming the field; parameters we cannot honour (n > 1, logprobs,
// tools, ...) are a 400 that says so rather than being silently ignored. `null` means "not set",
// as in OpenAI's API; unknown fields are ignored.
import type { ChatMessage } from '../runtime/tokenizer';
import type { GenerateOptions } from '../runtime/model';
import { ApiError, badRequest } from './errors';

export interface ValidationLimits {
  /** max_tokens must be in [1, maxTokensLimit]. */
  maxTokensLimit: number;
  /** The one model name this server answers to. */
  modelName: string;
}

interface CommonRequest {
  stream: boolean;
  /** stream_options.include_usage: a last chunk with usage and no choices. */
  includeUsage: boolean;
  options: GenerateOptions;
}

export interface CompletionRequest extends CommonRequest {
  prompt: string | number[];
}

export interface ChatRequest extends CommonRequest {
  messages: ChatMessage[];
}

const MAX_STOPS = 16;
const CHAT_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
/** 'number 1.5', 'string "5"', 'array', 'object' */
const describe = (v: unknown) => {
  if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') return typeName(v);
  const j = JSON.stringify(v);
  return `${typeof v} ${j.length > 40 ? `${j.slice(0, 37)}...` : j}`;
};
const wrongType = (param: string, want: string, v: unknown) =>
  badRequest('invalid_type', `'${param}' must be ${want}, got ${describe(v)}`, param);
const outOfRange = (param: string, want: string, v: unknown) =>
  badRequest('invalid_value', `'${param}' must be ${want}, got ${JSON.stringify(v)}`, param);
const unsupported = (param: string, message: string) => badRequest('unsupported_parameter', message, param);

/** Typed accessors over a JSON object body; each throws a 400 naming the field. */
class Fields {
  constructor(private readonly o: Record<string, unknown>) {}

  has(name: string): boolean {
    return this.o[name] !== undefined && this.o[name] !== null;
  }

  raw(name: string): unknown {
    return this.has(name) ? this.o[name] : undefined;
  }

  boolean(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw wrongType(name, 'a boolean', v);
    return v;
  }

  string(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw wrongType(name, 'a string', v);
    return v;
  }

  number(name: string, r: { min?: number; max?: number; minExclusive?: boolean; integer?: boolean } = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw wrongType(name, r.integer ? 'an integer' : 'a finite number', v);
    if (r.integer && !Number.isInteger(v)) throw wrongType(name, 'an integer', v);
    if (r.integer && !Number.isSafeInteger(v)) throw outOfRange(name, 'an integer of magnitude below 2^53', v);
    const lo = r.min === undefined ? '' : `${r.minExclusive ? '>' : '>='} ${r.min}`;
    const hi = r.max === undefined ? '' : `<= ${r.max}`;
    const want = `${r.integer ? 'an integer' : 'a number'} ${[lo, hi].filter(Boolean).join(' and ')}`.trim();
    if (r.min !== undefined && (r.minExclusive ? v <= r.min : v < r.min)) throw outOfRange(name, want, v);
    if (r.max !== undefined && v > r.max) throw outOfRange(name, want, v);
    return v;
  }
}

function asObject(body: unknown): Fields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('invalid_type', `the request body must be a JSON object, got ${typeName(body)}`);
  }
  return new Fields(body as Record<string, unknown>);
}

function checkModel(f: Fields, limits: ValidationLimits): void {
  const model = f.string('model');
  if (model !== undefined && model !== limits.modelName) {
    throw new ApiError(404, 'invalid_request_error', 'model_not_found',
      `the model '${model}' does not exist; this server serves '${limits.modelName}' (GET /v1/models)`, 'model');
  }
}

function stopOf(f: Fields): string[] | undefined {
  const v = f.raw('stop');
  if (v === undefined) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw wrongType('stop', 'a string or an array of strings', v);
  if (list.length > MAX_STOPS) throw outOfRange('stop', `at most ${MAX_STOPS} strings`, `${list.length} strings`);
  for (const s of list) {
    if (typeof s !== 'string') throw wrongType('stop', 'a string or an array of strings', s);
    if (s.length === 0) throw outOfRange('stop', 'non-empty strings', s);
  }
  return list.length ? (list as string[]) : undefined;
}

/** Sampling, length, stop, streaming and the parameters we reject, shared by both endpoints. */
function common(f: Fields, limits: ValidationLimits, maxTokensParam: string, defaultMaxTokens: number): CommonRequest {
  checkModel(f, limits);
  const n = f.number('n', { integer: true, min: 1 });
  if (n !== undefined && n !== 1) throw unsupported('n', `'n' must be 1: this server returns one choice per request (got ${n}); send ${n} requests instead`);
  const explicitMaxTokens = f.number(maxTokensParam, { integer: true });
  const maxTokens = explicitMaxTokens ?? defaultMaxTokens;
  if (maxTokens < 1 || maxTokens > limits.maxTokensLimit) {
    throw outOfRange(maxTokensParam, `an integer in [1, ${limits.maxTokensLimit}] (the server's maxTokensLimit)`, maxTokens);
  }
  const streamOptions = f.raw('stream_options');
  if (streamOptions !== undefined && (typeof streamOptions !== 'object' || Array.isArray(streamOptions))) {
    throw wrongType('stream_options', 'an object', streamOptions);
  }
  const includeUsage = streamOptions === undefined ? undefined : new Fields(streamOptions as Record<string, unknown>).raw('include_usage');
  if (includeUsage !== undefined && typeof includeUsage !== 'boolean') throw wrongType('stream_options.include_usage', 'a boolean', includeUsage);
  const logitBias = f.raw('logit_bias');
  if (logitBias !== undefined) {
    if (typeof logitBias !== 'object' || Array.isArray(logitBias)) throw wrongType('logit_bias', 'an object', logitBias);
    if (Object.keys(logitBias as object).length) throw unsupported('logit_bias', "'logit_bias' is not supported by this server");
  }
  const options: GenerateOptions = {
    maxTokens,
    // an explicit max_tokens that cannot fit after the prompt is a 400, as in the OpenAI API; the
    // default only caps the length (generation stops with 'length' at the end of the context)
    requireRoom: explicitMaxTokens !== undefined ? true : undefined,
    temperature: f.number('temperature', { min: 0, max: 2 }),
    topP: f.number('top_p', { min: 0, max: 1, minExclusive: true }),
    topK: f.number('top_k', { integer: true, min: 0 }),
    minP: f.number('min_p', { min: 0, max: 1 }),
    seed: f.number('seed', { integer: true }),
    presencePenalty: f.number('presence_penalty', { min: -2, max: 2 }),
    frequencyPenalty: f.number('frequency_penalty', { min: -2, max: 2 }),
    repeatPenalty: f.number('repetition_penalty', { min: 0, minExclusive: true, max: 10 }),
    stop: stopOf(f),
    ignoreEos: f.boolean('ignore_eos'),
  };
  for (const k of Object.keys(options) as Array<keyof GenerateOptions>) if (options[k] === undefined) delete options[k];
  return { stream: f.boolean('stream') ?? false, includeUsage: includeUsage === true, options };
}

function promptOf(f: Fields): string | number[] {
  const p = f.raw('prompt');
  if (p === undefined) throw badRequest('missing_required_parameter', "'prompt' is required (a string or an array of token ids)", 'prompt');
  if (typeof p === 'string') return p;
  if (!Array.isArray(p)) throw wrongType('prompt', 'a string or an array of token ids', p);
  // [ "text" ] and [ [ids] ] are one prompt in OpenAI's batch syntax; more than one is n > 1
  if (p.length > 0 && (typeof p[0] === 'string' || Array.isArray(p[0]))) {
    if (p.length !== 1) throw unsupported('prompt', `one prompt per request: got ${p.length}; send them as separate requests`);
    return promptOfOne(p[0]);
  }
  return promptOfOne(p);
}

function promptOfOne(p: unknown): string | number[] {
  if (typeof p === 'string') return p;
  if (!Array.isArray(p)) throw wrongType('prompt', 'a string or an array of token ids', p);
  if (p.length === 0) throw outOfRange('prompt', 'a non-empty array of token ids', p);
  for (const t of p) {
    if (typeof t !== 'number' || !Number.isSafeInteger(t)) throw wrongType('prompt', 'an array of integer token ids', t);
  }
  return p as number[];
}

export function parseCompletionRequest(body: unknown, limits: ValidationLimits): CompletionRequest {
  const f = asObject(body);
  const prompt = promptOf(f);
  const logprobs = f.raw('logprobs');
  if (logprobs !== undefined && logprobs !== false) {
    throw unsupported('logprobs', "'logprobs' is not supported by this server; leave it out or set it to null");
  }
  if (f.boolean('echo')) throw unsupported('echo', "'echo' is not supported by this server");
  if (f.string('suffix')) throw unsupported('suffix', "'suffix' (insertion) is not supported by this server");
  const bestOf = f.number('best_of', { integer: true, min: 1 });
  if (bestOf !== undefined && bestOf !== 1) throw unsupported('best_of', "'best_of' must be 1");
  return { ...common(f, limits, 'max_tokens', Math.min(16, limits.maxTokensLimit)), prompt };
}

function contentOf(m: Record<string, unknown>, i: number): string {
  const c = m.content;
  const param = `messages[${i}].content`;
  if (c === undefined || c === null) {
    if (m.role === 'assistant') return '';
    throw badRequest('missing_required_parameter', `'${param}' is required`, param);
  }
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) throw wrongType(param, 'a string or an array of content parts', c);
  return c.map((part: unknown, j: number) => {
    const pp = `${param}[${j}]`;
    if (typeof part !== 'object' || part === null || Array.isArray(part)) throw wrongType(pp, 'an object', part);
    const { type, text } = part as Record<string, unknown>;
    if (type !== 'text') throw unsupported(pp, `content parts of type ${JSON.stringify(type)} are not supported; only 'text'`);
    if (typeof text !== 'string') throw wrongType(`${pp}.text`, 'a string', text);
    return text;
  }).join('');
}

function messagesOf(f: Fields): ChatMessage[] {
  const ms = f.raw('messages');
  if (ms === undefined) throw badRequest('missing_required_parameter', "'messages' is required", 'messages');
  if (!Array.isArray(ms)) throw wrongType('messages', 'an array of messages', ms);
  if (ms.length === 0) throw outOfRange('messages', 'a non-empty array', ms);
  return ms.map((m: unknown, i: number): ChatMessage => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw wrongType(`messages[${i}]`, 'an object', m);
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== 'string') throw wrongType(`messages[${i}].role`, 'a string', msg.role);
    if (!CHAT_ROLES.has(msg.role)) {
      throw outOfRange(`messages[${i}].role`, `one of ${[...CHAT_ROLES].join(', ')}`, msg.role);
    }
    if (msg.name !== undefined && typeof msg.name !== 'string') throw wrongType(`messages[${i}].name`, 'a string', msg.name);
    const role = msg.role === 'developer' ? 'system' : msg.role;
    return msg.name === undefined ? { role, content: contentOf(msg, i) } : { role, content: contentOf(msg, i), name: msg.name };
  });
}

export function parseChatRequest(body: unknown, limits: ValidationLimits): ChatRequest {
  const f = asObject(body);
  const messages = messagesOf(f);
  const logprobs = f.raw('logprobs');
  if (logprobs !== undefined && logprobs !== false) {
    throw unsupported('logprobs', "'logprobs' is not supported by this server; leave it out or set it to false");
  }
  if (f.has('top_logprobs')) throw unsupported('top_logprobs', "'top_logprobs' is not supported by this server");
  const tools = f.raw('tools');
  if (tools !== undefined && (!Array.isArray(tools) || tools.length > 0)) throw unsupported('tools', 'tool calling is not supported by this server');
  if (f.has('functions')) throw unsupported('functions', 'function calling is not supported by this server');
  const format = f.raw('response_format');
  if (format !== undefined) {
    const type = typeof format === 'object' && !Array.isArray(format) ? (format as Record<string, unknown>).type : undefined;
    if (type !== 'text') throw unsupported('response_format', "only response_format {type: 'text'} is supported");
  }
  const maxParam = f.has('max_completion_tokens') ? 'max_completion_tokens' : 'max_tokens';
  return { ...common(f, limits, maxParam, limits.maxTokensLimit), messages };
}
