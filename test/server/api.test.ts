// The HTTP API on a real server (loopback, ephemeral port) with Node's fetch as the client:
// OpenAI response shapes, streaming vs non-streaming equality, chat, models, health, metrics and
// the API key.
import { fixture, metricValue, post, postStream, request } from './helpers';
import type { Fixture } from './helpers';
import type { RunningServer } from '../../lib/server/app';

let fx: Fixture;
let server: RunningServer;
let url: string;

beforeAll(async () => {
  fx = await fixture();
  server = await fx.start({ modelName: 'tiny-moe', maxQueue: 16, maxTokensLimit: 64 });
  url = server.url;
});
afterAll(async () => {
  await fx?.close();
});

describe('POST /v1/completions', () => {
  it('answers in OpenAI shape with usage; the text is the model text for the same seed', async () => {
    const body = { model: 'tiny-moe', prompt: 'the king and', max_tokens: 8, temperature: 0.9, seed: 5, ignore_eos: true };
    const r = await post(`${url}/v1/completions`, body);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ object: 'text_completion', model: 'tiny-moe' });
    expect(r.body.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(typeof r.body.created).toBe('number');
    expect(r.body.choices).toHaveLength(1);
    expect(r.body.choices[0]).toMatchObject({ index: 0, finish_reason: 'length', logprobs: null });
    const direct = await fx.model.complete('the king and', { maxTokens: 8, temperature: 0.9, seed: 5, ignoreEos: true });
    expect(r.body.choices[0].text).toBe(direct.text);
    expect(r.body.usage).toEqual({ prompt_tokens: direct.usage.promptTokens, completion_tokens: 8, total_tokens: direct.usage.totalTokens });
  });

  it('accepts token ids (and the one-prompt batch forms) as the prompt', async () => {
    const ids = fx.model.tokenize('in the beginning');
    const base = { max_tokens: 6, temperature: 0, ignore_eos: true };
    const a = await post(`${url}/v1/completions`, { ...base, prompt: 'in the beginning' });
    const b = await post(`${url}/v1/completions`, { ...base, prompt: ids });
    const c = await post(`${url}/v1/completions`, { ...base, prompt: [ids] });
    const d = await post(`${url}/v1/completions`, { ...base, prompt: ['in the beginning'] });
    for (const r of [a, b, c, d]) expect(r.status).toBe(200);
    expect(b.body.choices[0].text).toBe(a.body.choices[0].text);
    expect(c.body.choices[0].text).toBe(a.body.choices[0].text);
    expect(d.body.choices[0].text).toBe(a.body.choices[0].text);
    expect(b.body.usage.prompt_tokens).toBe(ids.length);
  });

  it('streams SSE chunks whose concatenation equals the non-streaming text, then [DONE]', async () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 1.2, seed: 99, top_k: 40, top_p: 0.95, min_p: 0.01 }]) {
      const body = { prompt: 'and god said', max_tokens: 12, ignore_eos: true, ...sampling };
      const plain = await post(`${url}/v1/completions`, body);
      const s = await postStream(`${url}/v1/completions`, { ...body, stream: true, stream_options: { include_usage: true } });
      expect(s.status).toBe(200);
      expect(s.done).toBe(true);
      const chunks = s.events.filter((e) => e.choices.length > 0);
      for (const e of s.events) expect(e).toMatchObject({ object: 'text_completion', id: s.events[0].id, model: 'tiny-moe' });
      expect(chunks.map((e) => e.choices[0].text).join('')).toBe(plain.body.choices[0].text);
      expect(chunks.slice(0, -1).every((e) => e.choices[0].finish_reason === null)).toBe(true);
      expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe('length');
      const usage = s.events[s.events.length - 1];
      expect(usage.choices).toEqual([]);
      expect(usage.usage).toEqual(plain.body.usage);
    }
  });

  it('honours stop strings and penalties', async () => {
    const base = { prompt: 'the king and', max_tokens: 16, temperature: 0, ignore_eos: true };
    const full = await post(`${url}/v1/completions`, base);
    const text: string = full.body.choices[0].text;
    const stop = text.slice(3, 5);
    expect(stop.length).toBe(2);
    const cut = await post(`${url}/v1/completions`, { ...base, stop: [stop, 'zzzz-never'] });
    expect(cut.body.choices[0].finish_reason).toBe('stop');
    expect(cut.body.choices[0].text).toBe(text.slice(0, text.indexOf(stop)));
    const single = await post(`${url}/v1/completions`, { ...base, stop });
    expect(single.body.choices[0].text).toBe(cut.body.choices[0].text);
    const penalized = await post(`${url}/v1/completions`, { ...base, presence_penalty: 1.5, frequency_penalty: 1, repetition_penalty: 1.3 });
    expect(penalized.status).toBe(200);
    expect(penalized.body.usage.completion_tokens).toBe(16);
  });
});

describe('POST /v1/chat/completions', () => {
  const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }];

  it('answers with an assistant message equal to model.chat', async () => {
    const r = await post(`${url}/v1/chat/completions`, { model: 'tiny-moe', messages, max_tokens: 6, temperature: 0, ignore_eos: true });
    expect(r.status).toBe(200);
    expect(r.body.object).toBe('chat.completion');
    expect(r.body.id).toMatch(/^chatcmpl-/);
    let text = '';
    const it = fx.model.chat(messages, { maxTokens: 6, temperature: 0, ignoreEos: true });
    for (let s = await it.next(); !s.done; s = await it.next()) text += s.value.text;
    expect(r.body.choices[0]).toEqual({ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: 'length' });
    expect(r.body.usage.completion_tokens).toBe(6);
  });

  it('streams deltas: role first, then content, then finish_reason; same text as non-streaming', async () => {
    const body = { messages: [{ role: 'user', content: [{ type: 'text', text: 'hel' }, { type: 'text', text: 'lo' }] }], max_completion_tokens: 10, temperature: 0.7, seed: 3, ignore_eos: true };
    const plain = await post(`${url}/v1/chat/completions`, body);
    const s = await postStream(`${url}/v1/chat/completions`, { ...body, stream: true });
    expect(s.done).toBe(true);
    expect(s.events[0].object).toBe('chat.completion.chunk');
    expect(s.events[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const last = s.events[s.events.length - 1];
    expect(last.choices[0]).toMatchObject({ delta: {}, finish_reason: 'length' });
    const text = s.events.slice(1, -1).map((e) => e.choices[0].delta.content).join('');
    expect(text).toBe(plain.body.choices[0].message.content);
  });
});

describe('GET endpoints', () => {
  it('/v1/models lists the model; /v1/models/:id finds it or 404s', async () => {
    const r = await request(`${url}/v1/models`);
    expect(r.status).toBe(200);
    expect(r.body.object).toBe('list');
    expect(r.body.data).toHaveLength(1);
    expect(r.body.data[0]).toMatchObject({ id: 'tiny-moe', object: 'model', owned_by: 'quantmoe', context_length: 256, max_tokens_limit: 64 });
    expect((await request(`${url}/v1/models/tiny-moe`)).body.id).toBe('tiny-moe');
    const missing = await request(`${url}/v1/models/gpt-4`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('model_not_found');
  });

  it('/health is ok', async () => {
    const r = await request(`${url}/health`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ok', model: 'tiny-moe', in_flight: 0, max_queue: 16 });
  });

  it('/metrics has request counters by endpoint and status, tokens, gauges, TTFT histogram and expert load', async () => {
    await post(`${url}/v1/completions`, { prompt: 'x', max_tokens: 3, temperature: 0, ignore_eos: true });
    await post(`${url}/v1/completions`, { prompt: 'x', max_tokens: 0 });
    const r = await request(`${url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m: string = r.body;
    expect(metricValue(m, 'quantmoe_requests_total{endpoint="/v1/completions",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'quantmoe_requests_total{endpoint="/v1/completions",status="400"}')).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'quantmoe_requests_total{endpoint="/v1/chat/completions",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'quantmoe_tokens_generated_total')).toBeGreaterThanOrEqual(3);
    expect(metricValue(m, 'quantmoe_prompt_tokens_total')).toBeGreaterThan(0);
    expect(metricValue(m, 'quantmoe_tokens_per_second')).toBeGreaterThan(0);
    expect(metricValue(m, 'quantmoe_queue_depth')).toBe(0);
    expect(metricValue(m, 'quantmoe_requests_in_flight')).toBe(0);
    expect(metricValue(m, 'quantmoe_max_queue')).toBe(16);
    const ttftCount = metricValue(m, 'quantmoe_time_to_first_token_seconds_count')!;
    expect(ttftCount).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'quantmoe_time_to_first_token_seconds_bucket{le="+Inf"}')).toBe(ttftCount);
    expect(metricValue(m, 'quantmoe_model_info{model="tiny-moe"}')).toBe(1);
    // expert load: every layer of the model has 8 experts with routed tokens
    const { expertCounts } = await fx.model.stats();
    expect(expertCounts).toHaveLength(2);
    for (let l = 0; l < 2; l++) {
      const total = [...Array(8).keys()].reduce((a, e) => a + metricValue(m, `quantmoe_expert_tokens_total{layer="${l}",expert="${e}"}`)!, 0);
      expect(total).toBeGreaterThan(0);
      expect(metricValue(m, `quantmoe_expert_load_imbalance{layer="${l}"}`)).toBeGreaterThanOrEqual(1);
    }
  });

  it('unknown routes are a JSON 404', async () => {
    const r = await request(`${url}/v1/engines`);
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'not_found' });
  });
});

describe('API key', () => {
  let secured: RunningServer;
  beforeAll(async () => {
    secured = await fx.start({ apiKey: 'sekret', modelName: 'tiny-moe' });
  });

  it('401 without the key or with a wrong one; 200 with it; /health stays open', async () => {
    const body = { prompt: 'hi', max_tokens: 2, temperature: 0 };
    const none = await post(`${secured.url}/v1/completions`, body);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(none.body.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    expect((await post(`${secured.url}/v1/completions`, body, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post(`${secured.url}/v1/completions`, body, { authorization: 'sekret' })).status).toBe(401);
    expect((await request(`${secured.url}/v1/models`)).status).toBe(401);
    expect((await request(`${secured.url}/metrics`)).status).toBe(401);
    expect((await post(`${secured.url}/v1/completions`, body, { authorization: 'Bearer sekret' })).status).toBe(200);
    expect((await request(`${secured.url}/v1/models`, { headers: { authorization: 'Bearer sekret' } })).status).toBe(200);
    expect((await request(`${secured.url}/health`)).status).toBe(200);
    expect(secured.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
