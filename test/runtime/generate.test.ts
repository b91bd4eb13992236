// The public generation API on a small random model: streaming, sampling determinism, stop
// strings, abort, dispose, batching of concurrent requests, the event loop staying free, and
// typed errors for bad input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { convertHFToGGUF } from '../../lib/convert/hf-to-gguf';
import { QuantMoeError } from '../../lib/errors';
import { writeRandomHFModel } from '../../lib/fixtures/random-model';
import { loadModel } from '../../lib/runtime/model';
import type { Model } from '../../lib/runtime/model';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-gen-'));
const dir = path.join(tmp, 'qwen2moe');
let model: Model;

beforeAll(async () => {
  await writeRandomHFModel(dir, { arch: 'qwen2_moe', seed: 11, layers: 2, hidden: 64, contextLength: 256 });
  model = await loadModel(dir, { threads: 2, contextSize: 128, parallel: 4 });
});
afterAll(async () => {
  await model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(QuantMoeError);
    return (e as QuantMoeError).code;
  }
  return undefined;
}

describe('generate / complete / chat', () => {
  it('streams pieces whose concatenation is the completion text; usage counts tokens', async () => {
    const pieces: string[] = [];
    const tokens: number[] = [];
    const it = model.generate('the king and', { maxTokens: 12, temperature: 0, ignoreEos: true });
    let r = await it.next();
    while (!r.done) {
      pieces.push(r.value.text);
      tokens.push(r.value.token);
      r = await it.next();
    }
    expect(r.value.tokens).toHaveLength(12); // one piece per token, text '' where a token completes no character
    expect(r.value.tokens).toEqual(tokens);
    expect(pieces.join('')).toBe(r.value.text);
    expect(r.value.text).toBe(model.detokenize(r.value.tokens));
    expect(r.value.usage).toEqual({ promptTokens: model.tokenize('the king and').length, completionTokens: 12, totalTokens: model.tokenize('the king and').length + 12 });
    expect(r.value.finishReason).toBe('length');
  });

  it('same seed, same tokens; different seed, different tokens; greedy is deterministic', async () => {
    const a = await model.complete('in the', { maxTokens: 24, temperature: 1.5, seed: 42, ignoreEos: true });
    const b = await model.complete('in the', { maxTokens: 24, temperature: 1.5, seed: 42, ignoreEos: true });
    const c = await model.complete('in the', { maxTokens: 24, temperature: 1.5, seed: 43, ignoreEos: true });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    const g1 = await model.complete([5, 6, 7], { maxTokens: 10, temperature: 0, ignoreEos: true });
    const g2 = await model.complete([5, 6, 7], { maxTokens: 10, temperature: 0, ignoreEos: true });
    expect(g1.tokens).toEqual(g2.tokens);
  });

  it('greedy continuation equals argmax of stateless logits step by step', async () => {
    const prompt = [10, 20, 30, 40];
    const c = await model.complete(prompt, { maxTokens: 6, temperature: 0, ignoreEos: true });
    const seq = [...prompt];
    const V = model.info().vocabSize;
    for (const t of c.tokens) {
      const l = await model.logits(seq);
      const last = l.subarray((seq.length - 1) * V, seq.length * V);
      let best = 0;
      for (let i = 1; i < V; i++) if (last[i] > last[best]) best = i;
      expect(t).toBe(best);
      seq.push(t);
    }
  });

  it('concurrent generations decode together and give the same tokens as alone', async () => {
    const opts = (seed: number) => ({ maxTokens: 16, temperature: 0.9, seed, ignoreEos: true });
    const alone = [];
    for (let i = 0; i < 6; i++) alone.push((await model.complete([1 + i, 2, 3], opts(i))).tokens);
    const together = await Promise.all(Array.from({ length: 6 }, (_, i) => model.complete([1 + i, 2, 3], opts(i))));
    expect(together.map((t) => t.tokens)).toEqual(alone);
  });

  it('stop strings end the text before the stop string', async () => {
    const free = await model.complete('and', { maxTokens: 30, temperature: 0, ignoreEos: true });
    const text = free.text;
    expect(text.length).toBeGreaterThan(4);
    const stop = text.slice(3, 5);
    const stopped = await model.complete('and', { maxTokens: 30, temperature: 0, ignoreEos: true, stop: [stop] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(text.slice(0, text.indexOf(stop)));
  });

  it('chat applies the template', async () => {
    const c = await collect(model.chat([{ role: 'user', content: 'hello' }], { maxTokens: 4, temperature: 0, ignoreEos: true }));
    expect(c.tokens).toHaveLength(4);
  });

  it('keeps the event loop free during a long generation', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const start = Date.now();
    await model.complete([1, 2, 3], { maxTokens: 100, temperature: 0, ignoreEos: true });
    clearInterval(timer);
    const elapsed = Date.now() - start;
    expect(ticks).toBeGreaterThan(Math.min(10, elapsed / 20));
  });

  it('aborting mid-generation rejects with E_ABORTED and frees the slot', async () => {
    const ac = new AbortController();
    const it = model.generate([1, 2], { maxTokens: 100, signal: ac.signal, ignoreEos: true });
    await it.next();
    ac.abort();
    expect(await codeOf(async () => {
      for (;;) if ((await it.next()).done) break;
    })).toBe('E_ABORTED');
    // all slots are usable again: 4 parallel generations complete
    const all = await Promise.all([0, 1, 2, 3].map((i) => model.complete([i + 1], { maxTokens: 3, ignoreEos: true })));
    expect(all.every((c) => c.tokens.length === 3)).toBe(true);
    const pre = new AbortController();
    pre.abort();
    expect(await codeOf(model.complete([1], { signal: pre.signal }))).toBe('E_ABORTED');
  });

  it('rejects bad input with typed errors', async () => {
    const V = model.info().vocabSize;
    expect(await codeOf(model.complete([V + 5]))).toBe('E_TOKEN_RANGE');
    expect(await codeOf(model.complete([-1]))).toBe('E_TOKEN_RANGE');
    expect(await codeOf(model.logits([1, V]))).toBe('E_TOKEN_RANGE');
    expect(await codeOf(model.complete(Array.from({ length: 200 }, () => 1)))).toBe('E_CONTEXT_OVERFLOW');
    expect(await codeOf(model.complete([1], { maxTokens: 0 }))).toBe('E_ARGUMENT');
    expect(await codeOf(model.complete([1], { temperature: -1 }))).toBe('E_ARGUMENT');
    expect(await codeOf(model.complete([1], { topP: 2 }))).toBe('E_ARGUMENT');
    expect(await codeOf(model.complete([1], { stop: [''] }))).toBe('E_ARGUMENT');
    // still serving afterwards
    expect((await model.complete([1], { maxTokens: 2, ignoreEos: true })).tokens).toHaveLength(2);
  });

  it('a generation that reaches the context size ends with finishReason length', async () => {
    const c = await model.complete(Array.from({ length: 120 }, (_, i) => i + 1), { maxTokens: 50, ignoreEos: true });
    expect(c.finishReason).toBe('length');
    expect(c.tokens.length).toBeLessThanOrEqual(9);
  });

  it('reports info and expert statistics', async () => {
    const info = model.info();
    expect(info.architecture).toBe('qwen2moe');
    expect(info.experts).toBe(8);
    expect(info.parameters.active).toBeLessThan(info.parameters.total);
    await model.stats({ reset: true });
    await model.logits([1, 2, 3, 4, 5]);
    const s = await model.stats();
    expect(s.expertCounts).toHaveLength(2);
    for (const layer of s.expertCounts) expect(layer.reduce((a, b) => a + b, 0)).toBe(5 * 2);
  });
});

describe('loading and disposing', () => {
  it('bad files give typed errors', async () => {
    expect(await codeOf(loadModel(path.join(tmp, 'missing.gguf')))).toBe('E_IO');
    const bad = path.join(tmp, 'bad.gguf');
    fs.writeFileSync(bad, Buffer.from('GGUF\x03\x00\x00\x00garbage'));
    expect(await codeOf(loadModel(bad))).toBe('E_FORMAT');
    const unknown = path.join(tmp, 'unknown-arch');
    fs.mkdirSync(unknown);
    fs.writeFileSync(path.join(unknown, 'config.json'), JSON.stringify({ model_type: 'gpt_bigcode', architectures: [] }));
    fs.copyFileSync(path.join(dir, 'model.safetensors'), path.join(unknown, 'model.safetensors'));
    fs.copyFileSync(path.join(dir, 'tokenizer.json'), path.join(unknown, 'tokenizer.json'));
    expect(await codeOf(loadModel(unknown))).toBe('E_UNSUPPORTED');
    expect(await codeOf(loadModel(dir, { device: 'cuda' }))).toMatch(/E_BACKEND_UNAVAILABLE|E_NOT_IMPLEMENTED/);
    // a config that promises more layers than the weights have: the missing tensor is named at load
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const variant = (name: string, change: Record<string, unknown>) => {
      const d = path.join(tmp, name);
      fs.mkdirSync(d);
      for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(dir, f), path.join(d, f));
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...cfg, ...change }));
      return d;
    };
    await expect(loadModel(variant('more-layers', { num_hidden_layers: 3 }))).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringMatching(/blk\.2\./) });
    await expect(loadModel(variant('wrong-width', { moe_intermediate_size: 48 }))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/ffn_gate\.0\.weight/) });
    // a truncated weight file
    const cut = variant('truncated', {});
    const st = path.join(cut, 'model.safetensors');
    fs.truncateSync(st, Math.floor(fs.statSync(st).size / 2));
    expect(await codeOf(loadModel(cut))).toBe('E_FORMAT');
  });

  it("weights: 'memory' (default) and 'mapped' compute the same logits; a bad value is E_ARGUMENT", async () => {
    const mapped = await loadModel(dir, { threads: 2, contextSize: 64, weights: 'mapped' });
    const memory = await loadModel(dir, { threads: 2, contextSize: 64, weights: 'memory' });
    try {
      const a = await mapped.logits([1, 2, 3, 4, 5]);
      const b = await memory.logits([1, 2, 3, 4, 5]);
      expect(a.length).toBeGreaterThan(0);
      expect(Array.from(b)).toEqual(Array.from(a));
    } finally {
      await mapped.dispose();
      await memory.dispose();
    }
    expect(await codeOf(loadModel(dir, { weights: 'disk' as unknown as 'mapped' }))).toBe('E_ARGUMENT');
  });

  it("Q4_0 / Q8_0 GGUF: 'memory' (weights repacked to r16 on AVX-512) gives the bits of 'mapped' (plain)", async () => {
    for (const type of ['Q4_0', 'Q8_0'] as const) {
      const gguf = path.join(tmp, `model-${type}.gguf`);
      await convertHFToGGUF(dir, gguf, { type });
      const mapped = await loadModel(gguf, { threads: 2, contextSize: 64, weights: 'mapped' });
      const memory = await loadModel(gguf, { threads: 2, contextSize: 64, weights: 'memory' });
      try {
        // 11 tokens: the many-token kernels in prefill; then single-token decode steps (GEMV)
        const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        expect(Array.from(await memory.logits(prompt))).toEqual(Array.from(await mapped.logits(prompt)));
        const a = await mapped.complete(prompt, { temperature: 0, maxTokens: 8, ignoreEos: true });
        const b = await memory.complete(prompt, { temperature: 0, maxTokens: 8, ignoreEos: true });
        expect(b.tokens).toEqual(a.tokens);
      } finally {
        await mapped.dispose();
        await memory.dispose();
      }
    }
  });

  it('dispose during generation ends it with E_DISPOSED; later calls fail with E_DISPOSED', async () => {
    const m = await loadModel(dir, { threads: 1, contextSize: 64 });
    const settled = codeOf(m.complete([1, 2, 3], { maxTokens: 60, ignoreEos: true }));
    await new Promise((r) => setTimeout(r, 20));
    await m.dispose();
    expect(await settled).toBe('E_DISPOSED');
    expect(await codeOf(m.complete([1]))).toBe('E_DISPOSED');
    await m.dispose(); // idempotent
  });
});

async function collect(it: AsyncGenerator<{ text: string; token: number }, { tokens: number[] }>) {
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
