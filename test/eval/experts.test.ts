// expertUsage() and the PNG heat map on tiny random MoE models: counts sum to tokens × top-k in
// every MoE layer, dense layers are marked, the model's own running statistics are left alone,
// and the PNG decodes with the expected size and cell colors.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { PNG } from 'pngjs';

import { QuantMoeError } from '../../lib/errors';
import { expertUsage, summarizeLayer } from '../../lib/eval/experts';
import { heatmapLayout, renderExpertHeatmap, viridis, writeExpertHeatmap } from '../../lib/eval/heatmap';
import { writeRandomHFModel } from '../../lib/fixtures/random-model';
import { loadModel } from '../../lib/runtime/model';
import type { Model } from '../../lib/runtime/model';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-eval-experts-'));
let model: Model;
const TEXT = 'And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day. '
  + 'And God said, Let there be a firmament in the midst of the waters, and let it divide the waters from the waters.';

beforeAll(async () => {
  await writeRandomHFModel(path.join(tmp, 'm'), { arch: 'qwen2_moe', seed: 7, layers: 3, hidden: 64, experts: 8, topk: 2, contextLength: 256 });
  model = await loadModel(path.join(tmp, 'm'), { threads: 1, contextSize: 128, parallel: 2 });
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

describe('expertUsage', () => {
  it('counts sum to tokens × top-k per layer; summaries are consistent; running stats are not reset', async () => {
    const tokens = model.tokenize(TEXT);
    await model.logits(tokens.slice(0, 10)); // some earlier traffic in the model's running totals
    const before = (await model.stats()).expertCounts;
    const progress: number[] = [];
    const u = await expertUsage(model, TEXT, { context: 48, onProgress: (p) => progress.push(p.fraction) });
    const after = (await model.stats()).expertCounts;

    expect(u.tokens).toBe(tokens.length);
    expect(u.chunks).toBe(Math.ceil(tokens.length / 48));
    expect(progress).toHaveLength(u.chunks);
    expect(u.experts).toBe(8);
    expect(u.expertsPerToken).toBe(2);
    expect(u.counts).toHaveLength(3);
    for (let l = 0; l < 3; l++) {
      const row = u.counts[l];
      expect(row).toHaveLength(8);
      expect(row.reduce((a, b) => a + b, 0)).toBe(tokens.length * 2);
      for (let e = 0; e < 8; e++) expect(after[l][e] - before[l][e]).toBe(row[e]);
      const s = u.layers[l];
      expect(s.moe).toBe(true);
      expect(s.assignments).toBe(tokens.length * 2);
      expect(s.share.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      expect(s.maxShare).toBe(Math.max(...s.share));
      expect(s.minShare).toBe(Math.min(...s.share));
      expect(row[s.maxExpert]).toBe(Math.max(...row));
      expect(s.normalizedEntropy).toBeGreaterThan(0);
      expect(s.normalizedEntropy).toBeLessThanOrEqual(1 + 1e-12);
      expect(s.cv).toBeGreaterThanOrEqual(0);
    }
    // the same text again gives the same counts (stateless, deterministic)
    expect((await expertUsage(model, TEXT, { context: 48 })).counts).toEqual(u.counts);
  });

  it('marks dense layers (DeepSeek first_k_dense_replace)', async () => {
    const dir = path.join(tmp, 'ds');
    await writeRandomHFModel(dir, { arch: 'deepseek', seed: 2, layers: 2, hidden: 64, experts: 4, topk: 2, firstDense: 1, contextLength: 128 });
    const ds = await loadModel(dir, { threads: 1, contextSize: 64, parallel: 1 });
    try {
      const u = await expertUsage(ds, TEXT, { context: 64 });
      expect(u.layers[0].moe).toBe(false);
      expect(u.counts[0].every((c) => c === 0)).toBe(true);
      expect(u.layers[1].moe).toBe(true);
      expect(u.counts[1].reduce((a, b) => a + b, 0)).toBe(u.tokens * 2);
      const png = PNG.sync.read(renderExpertHeatmap(u));
      const lay = heatmapLayout(u);
      expect([png.width, png.height]).toEqual([lay.width, lay.height]);
    } finally {
      await ds.dispose();
    }
  });

  it('typed errors: empty text, bad context, window larger than the KV cache, abort', async () => {
    expect(await codeOf(expertUsage(model, ''))).toBe('E_ARGUMENT');
    expect(await codeOf(expertUsage(model, TEXT, { context: 1 }))).toBe('E_ARGUMENT');
    expect(await codeOf(expertUsage(model, TEXT, { context: 1000 }))).toBe('E_CONTEXT_OVERFLOW');
    const ac = new AbortController();
    ac.abort();
    expect(await codeOf(expertUsage(model, TEXT, { context: 32, signal: ac.signal }))).toBe('E_ABORTED');
  });
});

describe('summarizeLayer', () => {
  it('uniform routing: CV 0, entropy 1; one expert: entropy 0; zeros: dense', () => {
    const uni = summarizeLayer(0, [5, 5, 5, 5]);
    expect(uni.cv).toBe(0);
    expect(uni.normalizedEntropy).toBeCloseTo(1, 12);
    expect(uni.maxShare).toBe(0.25);
    const one = summarizeLayer(1, [0, 12, 0, 0]);
    expect(one.normalizedEntropy).toBe(0);
    expect(one.maxExpert).toBe(1);
    expect(one.unused).toBe(3);
    expect(one.cv).toBeCloseTo(Math.sqrt(3), 12);
    expect(summarizeLayer(2, [0, 0, 0]).moe).toBe(false);
  });
});

describe('heat map PNG', () => {
  it('decodes with pngjs, has the layout size, and each cell has the color of its share', async () => {
    const u = await expertUsage(model, TEXT, { context: 64 });
    const file = path.join(tmp, 'heat.png');
    await writeExpertHeatmap(u, file, { cell: 24 });
    const png = PNG.sync.read(fs.readFileSync(file));
    const lay = heatmapLayout(u, { cell: 24 });
    expect(png.width).toBe(lay.width);
    expect(png.height).toBe(lay.height);
    expect(png.width).toBeGreaterThanOrEqual(lay.gridX + 8 * 24);
    expect(png.height).toBeGreaterThanOrEqual(lay.gridY + 3 * 24);
    expect(lay.vmax).toBeGreaterThanOrEqual(Math.max(...u.layers.map((l) => l.maxShare)));
    for (let l = 0; l < 3; l++) {
      for (let e = 0; e < 8; e++) {
        const x = lay.gridX + e * 24 + 1;
        const y = lay.gridY + l * 24 + 1;
        const o = (y * png.width + x) * 4;
        expect([png.data[o], png.data[o + 1], png.data[o + 2], png.data[o + 3]]).toEqual([...viridis(u.layers[l].share[e] / lay.vmax), 255]);
      }
    }
    // a smaller cell makes a smaller picture
    const small = PNG.sync.read(renderExpertHeatmap(u, { cell: 10 }));
    expect(small.height).toBe(heatmapLayout(u, { cell: 10 }).height);
    expect(small.height).toBeLessThan(png.height);
    expect(await codeOf(writeExpertHeatmap(u, path.join(tmp, 'no', 'such', 'dir', 'x.png')))).toBe('E_IO');
    expect(await codeOf(() => renderExpertHeatmap(u, { cell: 1 }))).toBe('E_ARGUMENT');
  });
});
