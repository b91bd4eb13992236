// Our forward pass against llama.cpp (node-llama-cpp) on the same GGUF files, for every
// architecture: random tiny models written as HF folders, converted to GGUF by our converter.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { convertHFToGGUF } from '../../lib/convert/hf-to-gguf';
import type { ConvertType } from '../../lib/convert/hf-to-gguf';
import { writeRandomHFModel } from '../../lib/fixtures/random-model';
import type { FixtureArch, RandomModelOptions } from '../../lib/fixtures/random-model';
import { loadModel } from '../../lib/runtime/model';
import { compareDistributions, llamaCppAvailable, maxRelDiff, runLlamaCpp } from '../helpers/llama-cpp';
import { Rng, testSeed } from '../helpers/random';

const available = llamaCppAvailable();
if (!available) console.log('skipped: node-llama-cpp is not installed (npm ci installs it as a devDependency)');
const maybe = available ? describe : describe.skip;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-archs-'));
const measured: string[] = [];
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  if (measured.length) console.log(`quantmoe vs llama.cpp (measured):\n${measured.join('\n')}`);
});

const seed = testSeed();
const rng = new Rng(seed);
const prompts = [Array.from({ length: 19 }, () => rng.int(0, 300)), Array.from({ length: 7 }, () => rng.int(0, 300))];

const ARCHS: Array<[FixtureArch, RandomModelOptions]> = [
  ['mixtral', { arch: 'mixtral' }],
  ['qwen2_moe', { arch: 'qwen2_moe' }],
  ['qwen3_moe', { arch: 'qwen3_moe' }],
  // llama.cpp's OLMoE expects k_norm over n_embd, i.e. as many KV heads as query heads (as OLMoE ships)
  ['olmoe', { arch: 'olmoe', kvHeads: 4 }],
  ['deepseek', { arch: 'deepseek', layers: 3 }],
  ['llama', { arch: 'llama' }],
  ['qwen2', { arch: 'qwen2' }],
  ['qwen3', { arch: 'qwen3' }],
];

maybe(`forward pass vs llama.cpp, F32 weights (seed ${seed})`, () => {
  for (const [name, opts] of ARCHS) {
    it(`${name}: logits within 1e-4 at every position, same 32-token greedy continuation, HF folder = GGUF`, async () => {
      const hfDir = path.join(tmp, `${name}-hf`);
      await writeRandomHFModel(hfDir, { ...opts, seed: seed + name.length });
      const gguf = path.join(tmp, `${name}-f32.gguf`);
      await convertHFToGGUF(hfDir, gguf, { type: 'F32' });
      const model = await loadModel(gguf, { threads: 2, contextSize: 256, kvCacheType: 'f32' });
      const ref = runLlamaCpp(gguf, model.info().vocabSize, prompts, 32);
      const hfModel = await loadModel(hfDir, { threads: 2, contextSize: 256, kvCacheType: 'f32' });
      try {
        for (let p = 0; p < prompts.length; p++) {
          const ours = await model.logits(prompts[p]);
          const d = maxRelDiff(ours, ref.logits[p]);
          expect({ arch: name, prompt: p, maxRelDiff: d, ok: d < 1e-4 }).toMatchObject({ ok: true });
          const fromHF = await hfModel.logits(prompts[p]);
          const dh = maxRelDiff(fromHF, ours);
          expect({ arch: name, prompt: p, hfVsGguf: dh, ok: dh < 1e-4 }).toMatchObject({ ok: true });
          measured.push(`  ${name.padEnd(10)} F32   prompt ${p}: max|Δ|/max|ref| = ${d.toExponential(2)}, HF vs GGUF ${dh.toExponential(2)}`);
        }
        const c = await model.complete(prompts[0], { temperature: 0, maxTokens: 32, ignoreEos: true });
        // llama.cpp stops at an end-of-generation token: compare up to there, and expect that token next
        const n = ref.greedy[0].length;
        expect(c.tokens.slice(0, n)).toEqual(ref.greedy[0]);
        if (n < 32) expect(model.tokenizer.stopIds).toContain(c.tokens[n]);
      } finally {
        await model.dispose();
        await hfModel.dispose();
      }
    });
  }
});

const QUANT_ARCHS: FixtureArch[] = ['qwen2_moe', 'mixtral', 'qwen3_moe'];
const QUANT_TYPES: ConvertType[] = ['Q8_0', 'Q4_0', 'Q4_K', 'Q6_K'];

maybe(`forward pass vs llama.cpp, quantized weights (seed ${seed})`, () => {
  for (const arch of QUANT_ARCHS) {
    it(`${arch}: mean KL < 1e-3 and same greedy token where llama.cpp's top-2 margin > 0.05 (${QUANT_TYPES.join(', ')})`, async () => {
      const hfDir = path.join(tmp, `${arch}-q-hf`);
      // every matrix dimension a multiple of 256 so that the K-quants apply
      await writeRandomHFModel(hfDir, { arch, seed: seed + 7, hidden: 256, heads: 4, kvHeads: 2, headDim: 64, expertFfn: 256, sharedFfn: 256, denseFfn: 256 });
      for (const type of QUANT_TYPES) {
        const gguf = path.join(tmp, `${arch}-${type}.gguf`);
        await convertHFToGGUF(hfDir, gguf, { type });
        const model = await loadModel(gguf, { threads: 2, contextSize: 256, kvCacheType: 'f32' });
        const ref = runLlamaCpp(gguf, model.info().vocabSize, prompts, 0);
        try {
          for (let p = 0; p < prompts.length; p++) {
            const ours = await model.logits(prompts[p]);
            const c = compareDistributions(ours, ref.logits[p], ref.vocab);
            measured.push(`  ${arch.padEnd(10)} ${type.padEnd(5)} prompt ${p}: mean KL = ${c.meanKL.toExponential(2)}, greedy agrees ${c.agree}/${c.checked}`);
            expect({ arch, type, prompt: p, meanKL: c.meanKL, ok: c.meanKL < 1e-3 }).toMatchObject({ ok: true });
            expect({ arch, type, prompt: p, agree: c.agree }).toEqual({ arch, type, prompt: p, agree: c.checked });
          }
        } finally {
          await model.dispose();
        }
      }
    });
  }
});
