// Load-time check that a model file has every tensor the ModelSpec needs, with the right shape,
// so a broken or mismatched file fails at load with a message naming the tensor, not mid-request.
import { QuantMoeError } from '../errors';
import { blk, expertName, stackedExpertName } from './names';
import type { ModelSpec } from './spec';

export interface TensorLookup {
  has(name: string): boolean;
  shape(name: string): readonly number[];
}

export function validateWeights(spec: ModelSpec, t: TensorLookup, file: string): void {
  const s = spec;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const expect = (name: string, shape: number[], optional = false) => {
    if (!t.has(name)) {
      if (optional) return;
      throw new QuantMoeError('E_FORMAT', `${file}: tensor '${name}' is missing (architecture ${s.arch} needs it)`);
    }
    const got = t.shape(name);
    const ok = got.length === shape.length && got.every((d, i) => d === shape[i]);
    // 1-D weights may be stored as [1, n] (e.g. Qwen2-MoE shared_expert_gate in HF files)
    const squeezed = got.length === 2 && got[0] === 1 && shape.length === 1 && got[1] === shape[0];
    if (!ok && !squeezed) {
      throw new QuantMoeError('E_SHAPE', `${file}: tensor '${name}' has shape [${got.join(', ')}], expected [${shape.join(', ')}] for this ${s.arch} configuration`);
    }
  };
  expect('token_embd.weight', [s.vocabSize, s.hidden]);
  expect('output_norm.weight', [s.hidden]);
  expect('output.weight', [s.vocabSize, s.hidden], s.tieEmbeddings);
  for (let l = 0; l < s.layers; l++) {
    expect(blk(l, 'attn_norm.weight'), [s.hidden]);
    expect(blk(l, 'attn_q.weight'), [q, s.hidden]);
    expect(blk(l, 'attn_k.weight'), [kv, s.hidden]);
    expect(blk(l, 'attn_v.weight'), [kv, s.hidden]);
    expect(blk(l, 'attn_output.weight'), [s.hidden, q]);
    expect(blk(l, 'attn_q.bias'), [q], !s.qkvBias);
    expect(blk(l, 'attn_k.bias'), [kv], !s.qkvBias);
    expect(blk(l, 'attn_v.bias'), [kv], !s.qkvBias);
    if (s.qkNorm !== 'none') {
      expect(blk(l, 'attn_q_norm.weight'), [s.qkNorm === 'head' ? s.headDim : q]);
      expect(blk(l, 'attn_k_norm.weight'), [s.qkNorm === 'head' ? s.headDim : kv]);
    }
    expect(blk(l, 'ffn_norm.weight'), [s.hidden]);
    if (s.ffnKinds[l] === 'dense' || !s.moe) {
      expect(blk(l, 'ffn_gate.weight'), [s.denseFfn, s.hidden]);
      expect(blk(l, 'ffn_up.weight'), [s.denseFfn, s.hidden]);
      expect(blk(l, 'ffn_down.weight'), [s.hidden, s.denseFfn]);
      continue;
    }
    const m = s.moe;
    expect(blk(l, 'ffn_gate_inp.weight'), [m.experts, s.hidden]);
    const dims = { gate: [m.expertFfn, s.hidden], up: [m.expertFfn, s.hidden], down: [s.hidden, m.expertFfn] };
    for (const proj of ['gate', 'up', 'down'] as const) {
      if (t.has(stackedExpertName(l, proj))) expect(stackedExpertName(l, proj), [m.experts, ...dims[proj]]);
      else for (let e = 0; e < m.experts; e++) expect(expertName(l, proj, e), dims[proj]);
    }
    if (m.sharedFfn > 0) {
      expect(blk(l, 'ffn_gate_shexp.weight'), [m.sharedFfn, s.hidden]);
      expect(blk(l, 'ffn_up_shexp.weight'), [m.sharedFfn, s.hidden]);
      expect(blk(l, 'ffn_down_shexp.weight'), [s.hidden, m.sharedFfn]);
      if (m.sharedGate) expect(blk(l, 'ffn_gate_inp_shexp.weight'), [s.hidden]);
    }
  }
}
