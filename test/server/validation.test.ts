// Bad input of every kind is a 4xx with {error: {message, type, code}}, and the server keeps
// serving: malformed JSON, wrong types in every field, unsupported parameters, unknown model,
// absurd max_tokens, prompts longer than the context, token ids outside the vocabulary.
import { CONTEXT, fixture, post, request } from './helpers';
import type { Fixture, JsonResponse } from './helpers';

let fx: Fixture;
let url: string;
const LIMIT = 64;

beforeAll(async () => {
  fx = await fixture();
  url = (await fx.start({ modelName: 'tiny-moe', maxTokensLimit: LIMIT })).url;
});
afterAll(async () => {
  await fx?.close();
});

function expectError(r: JsonResponse, status: number, code?: string): void {
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(typeof r.body.error.message).toBe('string');
  expect(r.body.error.message.length).toBeGreaterThan(5);
  expect(typeof r.body.error.type).toBe('string');
  expect(typeof r.body.error.code).toBe('string');
  if (code !== undefined) expect(r.body.error.code).toBe(code);
}

const ok = { prompt: 'hi', max_tokens: 2, temperature: 0 };
const chatOk = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0 };

describe('request bodies', () => {
  it.each([
    ['truncated JSON', '{"prompt": "hi", '],
    ['not JSON', 'prompt=hi'],
    ['trailing garbage', '{"prompt": "hi"} x'],
  ])('malformed JSON (%s) → 400 invalid_json', async (_what, raw) => {
    expectError(await request(`${url}/v1/completions`, { raw }), 400, 'invalid_json');
    expectError(await request(`${url}/v1/chat/completions`, { raw }), 400, 'invalid_json');
  });

  it('an empty JSON body, a non-object body and a non-JSON content type are 4xx', async () => {
    expectError(await request(`${url}/v1/completions`, { raw: '' }), 400);
    expectError(await request(`${url}/v1/completions`, { raw: '[1, 2]' }), 400, 'invalid_type');
    expectError(await request(`${url}/v1/completions`, { raw: '"hi"' }), 400, 'invalid_type');
    expectError(await request(`${url}/v1/completions`, { raw: 'null' }), 400, 'invalid_type');
    expectError(await request(`${url}/v1/completions`, { raw: 'prompt=hi', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    expectError(await request(`${url}/v1/completions`, { raw: '{"prompt":"hi"}', headers: { 'content-type': 'text/plain' } }), 400, 'invalid_type');
  });

  it('an unknown model name → 404 model_not_found', async () => {
    expectError(await post(`${url}/v1/completions`, { ...ok, model: 'gpt-4o' }), 404, 'model_not_found');
    expectError(await post(`${url}/v1/chat/completions`, { ...chatOk, model: 'gpt-4o' }), 404, 'model_not_found');
  });
});

describe('fields of /v1/completions', () => {
  const cases: Array<[string, unknown, string]> = [
    ['model', 5, 'invalid_type'],
    ['prompt', 5, 'invalid_type'],
    ['prompt', { text: 'hi' }, 'invalid_type'],
    ['prompt', [], 'invalid_value'],
    ['prompt', [1.5, 2], 'invalid_type'],
    ['prompt', [1, '2'], 'invalid_type'],
    ['prompt', ['a', 'b'], 'unsupported_parameter'],
    ['prompt', [[1], [2]], 'unsupported_parameter'],
    ['max_tokens', '5', 'invalid_type'],
    ['max_tokens', 1.5, 'invalid_type'],
    ['max_tokens', 0, 'invalid_value'],
    ['max_tokens', -1, 'invalid_value'],
    ['max_tokens', LIMIT + 1, 'invalid_value'],
    ['max_tokens', 1e12, 'invalid_value'],
    ['temperature', 'hot', 'invalid_type'],
    ['temperature', -0.5, 'invalid_value'],
    ['temperature', 3, 'invalid_value'],
    ['top_p', 0, 'invalid_value'],
    ['top_p', 1.5, 'invalid_value'],
    ['top_p', '0.9', 'invalid_type'],
    ['top_k', -1, 'invalid_value'],
    ['top_k', 2.5, 'invalid_type'],
    ['top_k', true, 'invalid_type'],
    ['min_p', 2, 'invalid_value'],
    ['min_p', [0.1], 'invalid_type'],
    ['seed', 'x', 'invalid_type'],
    ['seed', 1.5, 'invalid_type'],
    ['seed', 2 ** 60, 'invalid_value'],
    ['stop', 5, 'invalid_type'],
    ['stop', [5], 'invalid_type'],
    ['stop', [''], 'invalid_value'],
    ['stop', Array.from({ length: 17 }, (_, i) => `s${i}`), 'invalid_value'],
    ['presence_penalty', 'x', 'invalid_type'],
    ['presence_penalty', 3, 'invalid_value'],
    ['frequency_penalty', -3, 'invalid_value'],
    ['frequency_penalty', {}, 'invalid_type'],
    ['repetition_penalty', 0, 'invalid_value'],
    ['repetition_penalty', 'x', 'invalid_type'],
    ['stream', 'yes', 'invalid_type'],
    ['stream', 1, 'invalid_type'],
    ['stream_options', 'x', 'invalid_type'],
    ['stream_options', { include_usage: 'y' }, 'invalid_type'],
    ['ignore_eos', 'x', 'invalid_type'],
    ['n', 2, 'unsupported_parameter'],
    ['n', 0, 'invalid_value'],
    ['n', '1', 'invalid_type'],
    ['logprobs', 1, 'unsupported_parameter'],
    ['logprobs', 0, 'unsupported_parameter'],
    ['logprobs', true, 'unsupported_parameter'],
    ['echo', true, 'unsupported_parameter'],
    ['echo', 'x', 'invalid_type'],
    ['suffix', 'end', 'unsupported_parameter'],
    ['best_of', 2, 'unsupported_parameter'],
    ['logit_bias', { 5: 10 }, 'unsupported_parameter'],
    ['logit_bias', 'x', 'invalid_type'],
  ];
  it.each(cases)('%s = %j → 400 %s', async (field, value, code) => {
    const r = await post(`${url}/v1/completions`, { ...ok, [field]: value });
    expectError(r, 400, code);
    expect(r.body.error.type).toBe('invalid_request_error');
    expect(r.body.error.param).toMatch(new RegExp(`^${field}`));
    if (field === 'logprobs') expect(r.body.error.message).toMatch(/logprobs.*not supported/);
    if (field === 'n') expect(r.body.error.message).toMatch(/'n'/);
  });

  it('a missing prompt is a 400; nulls mean "not set"', async () => {
    expectError(await post(`${url}/v1/completions`, { max_tokens: 2 }), 400, 'missing_required_parameter');
    const r = await post(`${url}/v1/completions`, {
      ...ok, model: null, temperature: null, top_p: null, stop: null, seed: null, logprobs: null, n: null, stream: null, user: 'someone',
    });
    expect(r.status).toBe(200);
    expect((await post(`${url}/v1/completions`, { ...ok, n: 1, logprobs: false, echo: false, best_of: 1, logit_bias: {} })).status).toBe(200);
  });
});

describe('fields of /v1/chat/completions', () => {
  const cases: Array<[string, unknown, string]> = [
    ['messages', 'hi', 'invalid_type'],
    ['messages', [], 'invalid_value'],
    ['messages', [5], 'invalid_type'],
    ['messages', [{ role: 5, content: 'hi' }], 'invalid_type'],
    ['messages', [{ role: 'wizard', content: 'hi' }], 'invalid_value'],
    ['messages', [{ role: 'user' }], 'missing_required_parameter'],
    ['messages', [{ role: 'user', content: 5 }], 'invalid_type'],
    ['messages', [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }], 'unsupported_parameter'],
    ['messages', [{ role: 'user', content: [{ type: 'text', text: 5 }] }], 'invalid_type'],
    ['messages', [{ role: 'user', content: 'hi', name: 5 }], 'invalid_type'],
    ['max_tokens', LIMIT + 1, 'invalid_value'],
    ['max_completion_tokens', 0, 'invalid_value'],
    ['temperature', '0', 'invalid_type'],
    ['n', 4, 'unsupported_parameter'],
    ['logprobs', true, 'unsupported_parameter'],
    ['top_logprobs', 3, 'unsupported_parameter'],
    ['tools', [{ type: 'function', function: { name: 'f' } }], 'unsupported_parameter'],
    ['response_format', { type: 'json_object' }, 'unsupported_parameter'],
    ['stop', { s: 1 }, 'invalid_type'],
  ];
  it.each(cases)('%s = %j → 400 %s', async (field, value, code) => {
    const r = await post(`${url}/v1/chat/completions`, { ...chatOk, [field]: value });
    expectError(r, 400, code);
    expect(r.body.error.param).toMatch(new RegExp(`^${field}`));
  });

  it('missing messages → 400; an assistant turn may have null content; developer is a system turn', async () => {
    expectError(await post(`${url}/v1/chat/completions`, { max_tokens: 2 }), 400, 'missing_required_parameter');
    const r = await post(`${url}/v1/chat/completions`, {
      ...chatOk,
      messages: [{ role: 'developer', content: 'x' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: null }, { role: 'user', content: 'again' }],
      tools: [], response_format: { type: 'text' },
    });
    expect(r.status).toBe(200);
  });
});

describe('errors from the model', () => {
  const long = 'and the king said unto them '.repeat(60); // far more than the 256-token context

  it('prompts longer than the context → 400 context_length_exceeded (streaming too, before any event)', async () => {
    expect(fx.model.tokenize(long).length).toBeGreaterThan(CONTEXT);
    const ids = Array.from({ length: CONTEXT + 1 }, () => 5);
    for (const prompt of [long, ids]) {
      for (const stream of [false, true]) {
        const r = await post(`${url}/v1/completions`, { prompt, max_tokens: 2, stream });
        expectError(r, 400, 'context_length_exceeded');
        expect(r.body.error.message).toMatch(/context/);
      }
    }
    expectError(await post(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content: long }], max_tokens: 2 }), 400, 'context_length_exceeded');
  });

  it('prompt + an explicit max_tokens over the context → 400 naming the room left; without max_tokens it stops at the context', async () => {
    const ids = Array.from({ length: CONTEXT - 10 }, () => 5);
    for (const stream of [false, true]) {
      const r = await post(`${url}/v1/completions`, { prompt: ids, max_tokens: 11, stream });
      expectError(r, 400, 'context_length_exceeded');
      expect(r.body.error.message).toMatch(/at most 10/);
    }
    const fits = await post(`${url}/v1/completions`, { prompt: ids, max_tokens: 10, ignore_eos: true, temperature: 0 });
    expect(fits.status).toBe(200);
    expect(fits.body.usage.completion_tokens).toBe(10);
    // a message of CONTEXT - 40 .. CONTEXT - 20 tokens (more with the chat template) + max_tokens LIMIT
    let content = '';
    while (fx.model.tokenize(content).length < CONTEXT - 40) content += 'and the king said unto them ';
    expect(fx.model.tokenize(content).length).toBeLessThan(CONTEXT - 20);
    const chat = await post(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content }], max_tokens: LIMIT });
    expectError(chat, 400, 'context_length_exceeded');
  });

  it('an empty prompt (no tokens) → 400', async () => {
    expectError(await post(`${url}/v1/completions`, { prompt: '', max_tokens: 2 }), 400, 'invalid_value');
  });

  it('token ids outside the vocabulary → 400 token_out_of_range', async () => {
    const V = fx.model.info().vocabSize;
    for (const prompt of [[V], [1, 2, 999999], [-1]]) {
      for (const stream of [false, true]) {
        const r = await post(`${url}/v1/completions`, { prompt, max_tokens: 2, stream });
        expectError(r, 400, 'token_out_of_range');
        expect(r.body.error.message).toMatch(/vocabulary/);
      }
    }
  });

  it('the server keeps serving after all of the above', async () => {
    const r = await post(`${url}/v1/completions`, { prompt: 'in the beginning', max_tokens: 4, temperature: 0, ignore_eos: true });
    expect(r.status).toBe(200);
    expect(r.body.usage.completion_tokens).toBe(4);
    const h = await request(`${url}/health`);
    expect(h.body).toMatchObject({ status: 'ok', in_flight: 0, waiting: 0, running: 0 });
  });
});
