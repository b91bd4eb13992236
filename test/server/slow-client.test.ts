// Slow clients: a stalled or trickled upload must not hold a socket forever nor stop the server
// from answering others; a client that reads its stream slowly still gets every byte.
import * as net from 'net';

import { fixture, post, request } from './helpers';
import type { Fixture } from './helpers';

let fx: Fixture;
let url: string;
let port: number;
const TIMEOUT_MS = 800;

beforeAll(async () => {
  fx = await fixture();
  const s = await fx.start({ modelName: 'tiny-moe', requestTimeoutMs: TIMEOUT_MS });
  url = s.url;
  port = s.port;
});
afterAll(async () => {
  await fx?.close();
});

/** Opens a raw connection, sends `head` (an incomplete request) and collects what comes back until close. */
function stalledUpload(head: string): { closed: Promise<{ text: string; ms: number }>; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  const t0 = Date.now();
  let text = '';
  socket.on('data', (d) => { text += d.toString('latin1'); });
  socket.write(head);
  const closed = new Promise<{ text: string; ms: number }>((resolve) => {
    socket.on('close', () => resolve({ text, ms: Date.now() - t0 }));
    socket.on('error', () => undefined);
  });
  return { closed, socket };
}

it('a stalled upload gets 408 and is closed after requestTimeoutMs; others are served meanwhile', async () => {
  const body = JSON.stringify({ prompt: 'hi', max_tokens: 2 });
  const stalled = stalledUpload(
    `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 100}\r\n\r\n${body}`);
  // the server answers other clients while that one stalls
  const h = await request(`${url}/health`);
  expect(h.status).toBe(200);
  const c = await post(`${url}/v1/completions`, { prompt: 'hi', max_tokens: 3, temperature: 0 });
  expect(c.status).toBe(200);
  const { text, ms } = await stalled.closed;
  expect(text).toMatch(/^HTTP\/1\.1 408/);
  expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
  expect(ms).toBeLessThan(TIMEOUT_MS + 5000);
}, 20000);

it('a trickled upload that finishes in time is answered normally', async () => {
  const body = JSON.stringify({ prompt: 'hi', max_tokens: 2, temperature: 0 });
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (d) => { text += d.toString('latin1'); });
  const done = new Promise<void>((resolve) => socket.on('end', () => resolve()));
  socket.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
  for (let i = 0; i < body.length; i += 8) {
    socket.write(body.slice(i, i + 8));
    await new Promise((r) => setTimeout(r, 20));
  }
  await done;
  expect(text).toMatch(/^HTTP\/1\.1 200/);
  expect(text).toContain('"object":"text_completion"');
}, 20000);

it('a client that reads its stream slowly still receives every event, then [DONE]', async () => {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'hi', max_tokens: 24, temperature: 0, stream: true }),
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let text = '';
  const dec = new TextDecoder();
  for (;;) {
    await new Promise((r) => setTimeout(r, 30)); // slow reader
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
  expect(events[events.length - 1]).toBe('data: [DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  const streamed = chunks.map((c) => c.choices[0].text).join('');
  const whole = await post(`${url}/v1/completions`, { prompt: 'hi', max_tokens: 24, temperature: 0 });
  expect(streamed).toBe(whole.body.choices[0].text);
}, 20000);
