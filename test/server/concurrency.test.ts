// Many clients at once: concurrent requests are batched by the engine yet get exactly the tokens
// they get alone; a client that disconnects frees its KV slot; a full queue answers 429; closing
// the server ends running streams.
import { PARALLEL, fixture, metricValue, openStream, post, postStream, request, sleep } from './helpers';
import type { Fixture } from './helpers';

let fx: Fixture;

beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx?.close();
});

const long = { prompt: 'the king and', max_tokens: 200, temperature: 1, ignore_eos: true, stream: true };

/** Polls /health until nothing is in flight (bounded). */
async function settle(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const h = await request(`${url}/health`);
    if (h.body.in_flight === 0) return;
    await sleep(20);
  }
  throw new Error('requests still in flight after 4 s');
}

/** Waits until the engine routes no more tokens (no sequence left decoding); bounded. */
async function engineIdle(): Promise<void> {
  let before = JSON.stringify((await fx.model.stats()).expertCounts);
  for (let i = 0; i < 50; i++) {
    await sleep(150);
    const now = JSON.stringify((await fx.model.stats()).expertCounts);
    if (now === before) return;
    before = now;
  }
  throw new Error('the engine kept decoding');
}

it('32 simultaneous requests with different seeds get the same text as the same requests one by one', async () => {
  const { url } = await fx.start({ maxQueue: 64 });
  const bodies = Array.from({ length: 32 }, (_, i) => ({
    prompt: i % 3 === 0 ? 'in the beginning' : i % 3 === 1 ? 'and god said' : fx.model.tokenize('the king'),
    max_tokens: 6, temperature: 1.1, top_k: 50, seed: 1000 + i, ignore_eos: true,
  }));
  const textOf = async (body: (typeof bodies)[number], stream: boolean): Promise<string> => {
    if (!stream) {
      const r = await post(`${url}/v1/completions`, body);
      expect(r.status).toBe(200);
      expect(r.body.usage.completion_tokens).toBe(6);
      return r.body.choices[0].text;
    }
    const s = await postStream(`${url}/v1/completions`, { ...body, stream: true });
    expect(s.done).toBe(true);
    return s.events.map((e) => e.choices[0].text).join('');
  };
  let t = Date.now();
  const sequential: string[] = [];
  for (const b of bodies) sequential.push(await textOf(b, false));
  const sequentialMs = Date.now() - t;
  t = Date.now();
  const concurrent = await Promise.all(bodies.map((b, i) => textOf(b, i % 2 === 1)));
  const concurrentMs = Date.now() - t;
  expect(concurrent).toEqual(sequential);
  expect(new Set(sequential).size).toBeGreaterThan(16); // the seeds matter
  console.log(`32 requests × 6 tokens (parallel ${PARALLEL}): sequential ${sequentialMs} ms, concurrent ${concurrentMs} ms (×${(sequentialMs / concurrentMs).toFixed(2)})`);
});

it('a client that aborts mid-stream frees its slot: afterwards `parallel` simultaneous requests all complete', async () => {
  const { url } = await fx.start({ maxQueue: 64 });
  const controllers = Array.from({ length: PARALLEL }, () => new AbortController());
  const opened = await Promise.all(controllers.map((ac, i) => openStream(`${url}/v1/completions`, { ...long, seed: i }, ac.signal)));
  expect(opened.map((o) => o.status)).toEqual(controllers.map(() => 200));
  // and one non-streaming request waiting behind them in the engine's queue
  const waiting = new AbortController();
  const plain = post(`${url}/v1/completions`, { ...long, stream: false }, undefined, waiting.signal).catch((e: Error) => e.name);
  for (let i = 0; i < 100 && (await request(`${url}/health`)).body.waiting < 1; i++) await sleep(10);
  const busy = await request(`${url}/health`);
  expect(busy.body).toMatchObject({ running: PARALLEL, waiting: 1, in_flight: PARALLEL + 1 });
  const depth: string = (await request(`${url}/metrics`)).body;
  expect(metricValue(depth, 'quantmoe_queue_depth')).toBe(1);
  expect(metricValue(depth, 'quantmoe_requests_in_flight')).toBe(PARALLEL + 1);
  waiting.abort();
  expect(await plain).toBe('AbortError');
  for (const ac of controllers) ac.abort();
  await settle(url);
  await engineIdle(); // the engine stopped decoding the aborted sequences
  const again = await Promise.all(Array.from({ length: PARALLEL }, (_, i) =>
    post(`${url}/v1/completions`, { prompt: 'and god said', max_tokens: 4, temperature: 0.5, seed: i, ignore_eos: true })));
  for (const r of again) {
    expect(r.status).toBe(200);
    expect(r.body.usage.completion_tokens).toBe(4);
  }
  const m: string = (await request(`${url}/metrics`)).body;
  expect(metricValue(m, 'quantmoe_requests_total{endpoint="/v1/completions",status="499"}')).toBe(PARALLEL + 1);
  expect(metricValue(m, 'quantmoe_requests_in_flight')).toBe(0);
});

it('answers 429 when maxQueue requests are already waiting or running, and recovers', async () => {
  const { url } = await fx.start({ maxQueue: 2 });
  const controllers = Array.from({ length: 6 }, () => new AbortController());
  const opened = await Promise.all(controllers.map((ac, i) => openStream(`${url}/v1/completions`, { ...long, seed: i }, ac.signal)));
  const statuses = opened.map((o) => o.status).sort();
  expect(statuses).toEqual([200, 200, 429, 429, 429, 429]);
  const refused = opened.find((o) => o.status === 429)!.first as { error: { type: string; code: string } };
  expect(refused.error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
  const r = await post(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  expect(r.status).toBe(429);
  expect(r.headers.get('retry-after')).toBe('1');
  const m: string = (await request(`${url}/metrics`)).body;
  expect(metricValue(m, 'quantmoe_requests_in_flight')).toBe(2);
  expect(metricValue(m, 'quantmoe_requests_total{endpoint="/v1/completions",status="429"}')).toBe(4);
  for (const ac of controllers) ac.abort();
  await settle(url);
  const after = await post(`${url}/v1/completions`, { prompt: 'hi', max_tokens: 2, temperature: 0 });
  expect(after.status).toBe(200);
});

it('close() ends running streams with an error event and returns', async () => {
  const s = await fx.start({ maxQueue: 4 });
  const res = await fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...long, seed: 1 }) });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  await reader.read(); // the stream is running
  const t = Date.now();
  await s.close();
  expect(Date.now() - t).toBeLessThan(5000);
  let text = '';
  const decoder = new TextDecoder();
  for (let i = 0; i < 10000; i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  expect(text).toMatch(/"code":"shutting_down"/);
  expect(text).not.toMatch(/\[DONE\]/);
  await engineIdle();
});
