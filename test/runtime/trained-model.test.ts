// The shipped trained model (models/kjv-moe, Qwen2-MoE layout) against two implementations we did
// not write: PyTorch (reference logits stored by tools/train/export.py) and llama.cpp (our GGUF
// conversion of the same weights, arch qwen2moe).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { convertHFToGGUF } from '../../lib/convert/hf-to-gguf';
import { loadModel } from '../../lib/runtime/model';
import type { Model } from '../../lib/runtime/model';
import { llamaCppAvailable, maxRelDiff, runLlamaCpp } from '../helpers/llama-cpp';

const dir = path.resolve(__dirname, '../../models/kjv-moe');
const refFile = path.join(dir, 'reference-logits.json');
const present = fs.existsSync(refFile);
if (!present) console.log('skipped: models/kjv-moe is not present');
const maybe = present ? describe : describe.skip;

interface RefPrompt { prompt: string; input_ids: number[]; argmax: number[]; logits: number[][]; greedy_ids: number[] }

maybe('shipped trained model (models/kjv-moe)', () => {
  let model: Model;
  let ref: { vocab_size: number; prompts: RefPrompt[] };
  beforeAll(async () => {
    ref = JSON.parse(fs.readFileSync(refFile, 'utf8'));
    model = await loadModel(dir, { threads: 2, contextSize: 512, kvCacheType: 'f32' });
  });
  afterAll(async () => model?.dispose());

  it('tokenizes the prompts exactly as the training tokenizer did', () => {
    for (const p of ref.prompts) expect(model.tokenize(p.prompt)).toEqual(p.input_ids);
  });

  it('reproduces the PyTorch logits at every position (F16 weights, f32 compute)', async () => {
    const V = ref.vocab_size;
    for (const p of ref.prompts) {
      const ours = await model.logits(p.input_ids);
      const want = Float32Array.from(p.logits.flat());
      // The reference is rounded to 5 significant digits (≤ 5e-5 relative per value) and both sides
      // accumulate in f32 in different orders (~1e-6): 2e-4 of the largest logit is a safe bound.
      const d = maxRelDiff(ours, want);
      expect({ prompt: p.prompt.slice(0, 20), maxRelDiff: d, ok: d < 2e-4 }).toMatchObject({ ok: true });
      for (let i = 0; i < p.input_ids.length; i++) {
        const row = ours.subarray(i * V, (i + 1) * V);
        let best = 0;
        for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
        expect(best).toBe(p.argmax[i]);
      }
    }
  });

  it('generates the same greedy continuation as PyTorch', async () => {
    for (const p of ref.prompts) {
      const c = await model.complete(p.input_ids, { temperature: 0, maxTokens: p.greedy_ids.length, ignoreEos: true });
      expect(c.tokens).toEqual(p.greedy_ids);
    }
  });

  (llamaCppAvailable() ? it : it.skip)('its GGUF conversion gives the same logits in llama.cpp (arch qwen2moe)', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-kjv-'));
    try {
      const gguf = path.join(tmp, 'kjv-moe-f32.gguf');
      await convertHFToGGUF(dir, gguf, { type: 'F32' }); // F16 → F32 is exact: llama.cpp then computes in f32
      const prompts = ref.prompts.map((p) => p.input_ids);
      const r = runLlamaCpp(gguf, ref.vocab_size, prompts, 0);
      for (let i = 0; i < prompts.length; i++) {
        const ours = await model.logits(prompts[i]);
        const d = maxRelDiff(ours, r.logits[i]);
        expect({ prompt: i, maxRelDiff: d, ok: d < 1e-4 }).toMatchObject({ ok: true });
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
