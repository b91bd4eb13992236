// ModelSpec from GGUF metadata ({arch}.block_count, {arch}.expert_count, ...; keys as llama.cpp
// writes them) and the tensor list (which tells dense from MoE layers and which optional tensors
// exist).
import { QuantMoeError } from '../errors';
import { getNumber, getOptionalBool, getOptionalNumber, getOptionalString, getString } from '../formats/gguf-meta';
import type { GGUFFile } from '../formats/gguf-types';
import { ARCHS, archFromGGUF } from './archs';
import { blk, expertName, stackedExpertName } from './names';
import type { ModelSpec, RopeScaling } from './spec';

export function specFromGGUF(file: GGUFFile): ModelSpec {
  const archName = getString(file, 'general.architecture');
  const arch = archFromGGUF(archName);
  if (!arch) {
    throw new QuantMoeError('E_UNSUPPORTED',
      `${file.path}: architecture '${archName}' is not supported (supported: ${Object.values(ARCHS).map((a) => a.gguf).join(', ')})`);
  }
  const t = ARCHS[arch];
  const k = (key: string) => `${archName}.${key}`;
  const names = new Set(file.tensors.map((x) => x.name));
  const hidden = getNumber(file, k('embedding_length'));
  const heads = getNumber(file, k('attention.head_count'));
  const kvHeads = getOptionalNumber(file, k('attention.head_count_kv')) ?? heads;
  const headDim = getOptionalNumber(file, k('attention.key_length')) ?? hidden / heads;
  const layers = getNumber(file, k('block_count'));
  const embd = file.tensors.find((x) => x.name === 'token_embd.weight');
  if (!embd) throw new QuantMoeError('E_FORMAT', `${file.path}: tensor 'token_embd.weight' is missing`);
  const vocabSize = getOptionalNumber(file, k('vocab_size')) ?? embd.shape[0];

  const experts = getOptionalNumber(file, k('expert_count')) ?? 0;
  const ffnKinds: Array<'dense' | 'moe'> = [];
  for (let l = 0; l < layers; l++) {
    const moe = names.has(blk(l, 'ffn_gate_inp.weight'));
    ffnKinds.push(moe ? 'moe' : 'dense');
    if (moe && !names.has(stackedExpertName(l, 'gate')) && !names.has(expertName(l, 'gate', 0))) {
      throw new QuantMoeError('E_FORMAT', `${file.path}: layer ${l} has a router but no expert tensors`);
    }
  }
  const hasMoe = ffnKinds.includes('moe');
  if (hasMoe && experts <= 0) throw new QuantMoeError('E_FORMAT', `${file.path}: MoE tensors present but '${k('expert_count')}' is missing`);

  const ropeType = getOptionalString(file, k('rope.scaling.type'));
  const ropeFactor = getOptionalNumber(file, k('rope.scaling.factor'));
  let ropeScaling: RopeScaling = { type: 'none' };
  if (ropeType === 'linear' && ropeFactor) ropeScaling = { type: 'linear', factor: ropeFactor };
  else if (ropeType === 'yarn' && ropeFactor) {
    ropeScaling = {
      type: 'yarn', factor: ropeFactor,
      originalContextLength: getOptionalNumber(file, k('rope.scaling.original_context_length')) ?? getNumber(file, k('context_length')),
      betaFast: getOptionalNumber(file, k('rope.scaling.yarn_beta_fast')) ?? 32,
      betaSlow: getOptionalNumber(file, k('rope.scaling.yarn_beta_slow')) ?? 1,
    };
  }

  const spec: ModelSpec = {
    arch,
    source: 'gguf',
    vocabSize,
    hidden,
    layers,
    heads,
    kvHeads,
    headDim,
    ropeDim: getOptionalNumber(file, k('rope.dimension_count')) ?? headDim,
    ropeTheta: getOptionalNumber(file, k('rope.freq_base')) ?? 10000,
    ropeStyle: t.ggufRope,
    ropeScaling,
    normEps: getOptionalNumber(file, k('attention.layer_norm_rms_epsilon')) ?? 1e-5,
    contextLength: getOptionalNumber(file, k('context_length')) ?? 2048,
    qkNorm: names.has(blk(0, 'attn_q_norm.weight')) ? t.qkNorm : 'none',
    qkvBias: names.has(blk(0, 'attn_q.bias')),
    ffnKinds,
    denseFfn: ffnKinds.includes('dense') ? getOptionalNumber(file, k('feed_forward_length')) ?? 0 : 0,
    tieEmbeddings: !names.has('output.weight'),
    activation: 'silu',
  };
  if (hasMoe) {
    const sharedFfn = names.has(blk(ffnKinds.indexOf('moe'), 'ffn_gate_shexp.weight'))
      ? (getOptionalNumber(file, k('expert_shared_feed_forward_length'))
        ?? file.tensors.find((x) => x.name === blk(ffnKinds.indexOf('moe'), 'ffn_gate_shexp.weight'))!.shape[0])
      : 0;
    spec.moe = {
      experts,
      topk: getNumber(file, k('expert_used_count')),
      expertFfn: getOptionalNumber(file, k('expert_feed_forward_length')) ?? getNumber(file, k('feed_forward_length')),
      routing: t.routing,
      normTopk: t.ggufNormTopk ?? getOptionalBool(file, k('expert_weights_norm')) ?? t.normTopk,
      routedScaling: getOptionalNumber(file, k('expert_weights_scale')) ?? 1,
      sharedFfn,
      sharedGate: sharedFfn > 0 && names.has(blk(ffnKinds.indexOf('moe'), 'ffn_gate_inp_shexp.weight')),
    };
  }
  return spec;
}
