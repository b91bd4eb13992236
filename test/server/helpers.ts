// Shared plumbing for the server tests: a tiny random Qwen2-MoE model, a real server on an
// ephemeral loopback port, and a small fetch-based client (JSON and Server-Sent Events).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { writeRandomHFModel } from '../../lib/fixtures/random-model';
import { loadModel } from '../../lib/runtime/model';
import type { Model } from '../../lib/runtime/model';
import { serve } from '../../lib/server/app';
import type { RunningServer, ServeOptions } from '../../lib/server/app';
import { parseSseEvents } from '../../lib/server/sse';

export const PARALLEL = 8;
export const CONTEXT = 256;

export interface Fixture {
  model: Model;
  tmp: string;
  start(options?: ServeOptions): Promise<RunningServer>;
  close(): Promise<void>;
}

/** Writes and loads the model once per test file; servers started through it are closed in close(). */
export async function fixture(): Promise<Fixture> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-server-'));
  const dir = path.join(tmp, 'tiny-moe');
  await writeRandomHFModel(dir, { arch: 'qwen2_moe', seed: 7, layers: 2, hidden: 64, contextLength: 512 });
  const model = await loadModel(dir, { threads: 2, parallel: PARALLEL, contextSize: CONTEXT });
  const servers: RunningServer[] = [];
  return {
    model,
    tmp,
    async start(options = {}) {
      const s = await serve(model, { port: 0, ...options });
      servers.push(s);
      return s;
    },
    async close() {
      for (const s of servers) await s.close();
      await model.dispose();
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export async function request(url: string, init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<JsonResponse> {
  const hasBody = init.body !== undefined || init.raw !== undefined;
  const res = await fetch(url, {
    method: init.method ?? (hasBody ? 'POST' : 'GET'),
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...init.headers },
    body: init.raw ?? (init.body !== undefined ? JSON.stringify(init.body) : undefined),
    signal: init.signal,
  });
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) body = JSON.parse(text);
  return { status: res.status, headers: res.headers, body };
}

export const post = (url: string, body: unknown, headers?: Record<string, string>, signal?: AbortSignal) => request(url, { body, headers, signal });

export interface StreamResult {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  events: any[];
  done: boolean;
}

/** POSTs a streaming request and reads every event up to [DONE] (or the end of the body). */
export async function postStream(url: string, body: unknown, headers: Record<string, string> = {}): Promise<StreamResult> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    return { status: res.status, events: [await res.json()], done: false };
  }
  const parsed = parseSseEvents(await res.text());
  expect(parsed.rest).toBe('');
  return { status: res.status, events: parsed.events, done: parsed.done };
}

/** Opens a stream and waits for its first event; returns the reader so the caller can keep reading or abort. */
export async function openStream(url: string, body: unknown, signal: AbortSignal): Promise<{ status: number; first?: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  if (res.status !== 200) return { status: res.status, first: await res.json() };
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (let i = 0; i < 1000; i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const p = parseSseEvents(text);
    if (p.events.length) return { status: 200, first: p.events[0] };
  }
  return { status: 200 };
}

/** The value of one sample line of a Prometheus text body ('name{labels}' exactly), or undefined. */
export function metricValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
