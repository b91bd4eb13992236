// captureAttention(): q/k/v after RoPE have the right shapes and reproduce the model's own
// attention output through attentionDense; the forward-pass hook changes nothing when used or
// not; the dump files and manifest; sparseAttentionReport() on the captured tensors.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { QuantMoeError } from '../../lib/errors';
import { captureAttention, relL1, sparseAttentionReport, writeAttentionDump } from '../../lib/eval/attention';
import type { AttentionDumpManifest } from '../../lib/eval/attention';
import { writeRandomHFModel } from '../../lib/fixtures/random-model';
import { native } from '../../lib/native';
import { Forward } from '../../lib/runtime/forward';
import { loadModel } from '../../lib/runtime/model';
import { loadWeights } from '../../lib/runtime/weights';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-eval-attn-'));
const dir = path.join(tmp, 'qwen3moe');
const TEXT = 'And the LORD said unto Moses, Stretch out thine hand toward heaven, that there may be darkness over the land of Egypt.';
// Hq = 4, Hkv = 2, D = 16: GQA with two query heads per KV head; qwen3_moe has q/k-norm
const SPEC = { arch: 'qwen3_moe' as const, seed: 21, layers: 3, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, contextLength: 256 };

beforeAll(async () => {
  await writeRandomHFModel(dir, SPEC);
});
afterAll(() => {
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

describe('captureAttention', () => {
  it('captures q [T, Hq, D], k/v [T, Hkv, D] that reproduce the model\'s attention output', async () => {
    const cap = await captureAttention(dir, TEXT, { layers: [2, 0], context: 48, threads: 1 });
    expect(cap.tokens).toHaveLength(48); // the text is longer: its first `context` tokens
    expect(cap.scale).toBeCloseTo(1 / 4, 12);
    expect(cap.layers.map((c) => c.layer)).toEqual([0, 2]);
    const n = native();
    for (const c of cap.layers) {
      expect(c.shape).toEqual({ tokens: 48, heads: 4, kvHeads: 2, headDim: 16 });
      expect(c.q).toHaveLength(48 * 4 * 16);
      expect(c.k).toHaveLength(48 * 2 * 16);
      expect(c.v).toHaveLength(48 * 2 * 16);
      expect(c.out).toHaveLength(48 * 4 * 16);
      const q = n.tensorFromData('f32', [48, 4, 16], c.q);
      const k = n.tensorFromData('f32', [48, 2, 16], c.k);
      const v = n.tensorFromData('f32', [48, 2, 16], c.v);
      const o = n.attentionDense(q, k, v, { causal: true, startPos: 0, threads: 1 });
      expect(relL1(new Float32Array(o.toArrayBuffer()), c.out)).toBeLessThan(1e-6);
      // and it is causal attention: the first token attends only to itself, so its output is v of its KV head
      for (let h = 0; h < 4; h++) {
        const kv = Math.floor(h / 2);
        for (let d = 0; d < 16; d++) expect(c.out[h * 16 + d]).toBeCloseTo(c.v[kv * 16 + d], 5);
      }
      for (const t of [q, k, v, o]) t.dispose();
    }
    expect(cap.layers[0].q.every((x) => Number.isFinite(x))).toBe(true);
  });

  it('accepts loaded weights and token ids; the hook leaves the logits unchanged and matches model.logits', async () => {
    const loaded = await loadWeights(dir);
    const model = await loadModel(dir, { threads: 1, contextSize: 64, parallel: 1, kvCacheType: 'f32' });
    try {
      const tokens = model.tokenize(TEXT).slice(0, 30);
      const cap = await captureAttention(loaded, tokens, { threads: 1 });
      expect(cap.tokens).toEqual(tokens);
      expect(cap.layers.map((c) => c.layer)).toEqual([0, 1, 2]);
      expect(loaded.weights.has('token_embd.weight')).toBe(true); // left loaded

      const s = loaded.spec;
      const logitsWith = (capture: boolean) => {
        const cache = native().kvCacheCreate({ layers: s.layers, maxSeqs: 1, capacity: 30, kvHeads: s.kvHeads, headDim: s.headDim, dtype: 'f32' });
        try {
          let calls = 0;
          const out = new Forward(s, loaded.weights, cache, 1).step(
            { kind: 'prefill', seq: 0, tokens: Int32Array.from(tokens), startPos: 0 },
            { logits: 'all', capture: capture ? () => { calls++; } : undefined },
          );
          if (capture) expect(calls).toBe(s.layers);
          return out;
        } finally {
          cache.dispose();
        }
      };
      const a = logitsWith(false);
      const b = logitsWith(true);
      expect(b).toEqual(a);
      const ref = await model.logits(tokens);
      expect(relL1(a, ref)).toBeLessThan(1e-6);
    } finally {
      await model.dispose();
      loaded.weights.dispose();
    }
  });

  it('typed errors: missing model, bad layers, too few tokens, bad context, abort', async () => {
    expect(await codeOf(captureAttention(path.join(tmp, 'nope'), TEXT))).toBe('E_IO');
    expect(await codeOf(captureAttention(dir, TEXT, { layers: [3] }))).toBe('E_ARGUMENT');
    expect(await codeOf(captureAttention(dir, TEXT, { layers: [] }))).toBe('E_ARGUMENT');
    expect(await codeOf(captureAttention(dir, ''))).toBe('E_ARGUMENT');
    expect(await codeOf(captureAttention(dir, [7]))).toBe('E_ARGUMENT');
    expect(await codeOf(captureAttention(dir, TEXT, { context: 1 }))).toBe('E_ARGUMENT');
    const ac = new AbortController();
    ac.abort();
    expect(await codeOf(captureAttention(dir, TEXT, { signal: ac.signal }))).toBe('E_ABORTED');
  });

  it('writes .f32 files and a manifest that read back to the captured tensors', async () => {
    const cap = await captureAttention(dir, TEXT, { layers: [1], context: 20, threads: 1 });
    const out = path.join(tmp, 'dump');
    await writeAttentionDump(cap, out, dir);
    const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as AttentionDumpManifest;
    expect(m.format).toBe('quantmoe-attention-dump');
    expect(m.tokens).toEqual(cap.tokens);
    expect(m.layers).toHaveLength(1);
    expect(m.layers[0].shape).toEqual({ tokens: 20, heads: 4, kvHeads: 2, headDim: 16 });
    for (const key of ['q', 'k', 'v', 'out'] as const) {
      const buf = fs.readFileSync(path.join(out, m.layers[0].files[key]));
      const arr = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      expect(arr).toEqual(cap.layers[0][key]);
    }
  });
});

describe('sparseAttentionReport', () => {
  it('reports sparsity and relative L1 per layer and KV-head group; keeping every block is exact', async () => {
    const cap = await captureAttention(dir, TEXT, { layers: [0, 1], context: 100, threads: 1 });
    const opts = { blockQ: 32, blockK: 16, threads: 1 };
    const rep = sparseAttentionReport(cap, opts);
    expect(rep.map((r) => r.layer)).toEqual([0, 1]);
    expect(cap.tokens.length).toBeGreaterThan(64); // several query and key blocks
    for (const r of rep) {
      expect(r.tokens).toBe(cap.tokens.length);
      expect(r.denseVsModel).toBeLessThan(1e-6);
      expect(r.sparsity).toBeGreaterThanOrEqual(0);
      expect(r.sparsity).toBeLessThanOrEqual(1);
      expect(Number.isFinite(r.relL1)).toBe(true);
      expect(r.groups.map((g) => g.heads)).toEqual([[0, 1], [2, 3]]);
      for (const g of r.groups) {
        expect(g.sparsity).toBeGreaterThanOrEqual(0);
        expect(g.sparsity).toBeLessThanOrEqual(1);
        expect(Number.isFinite(g.relL1)).toBe(true);
      }
    }
    // every block kept, no stage-2 skipping, float Q·K: sparse = dense
    const exact = sparseAttentionReport(cap, { ...opts, cdfThreshold: 1, pvThreshold: Infinity, int8Qk: false });
    for (const r of exact) {
      expect(r.stats.blocksSkippedStage1).toBe(0);
      expect(r.relL1).toBeLessThan(1e-5);
      for (const g of r.groups) expect(g.relL1).toBeLessThan(1e-5);
    }
    expect(sparseAttentionReport(cap, { ...opts, perGroup: false })[0].groups).toEqual([]);
  });
});
