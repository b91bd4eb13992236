// ModelSpec from a Hugging Face config.json (transformers' field names per model_type).
import { QuantMoeError } from '../errors';
import type { HFConfig } from '../formats/hf';
import { ARCHS, archFromHF } from './archs';
import type { ModelSpec, RopeScaling } from './spec';

function num(c: HFConfig, field: string, fallback?: number): number {
  const v = c[field];
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new QuantMoeError('E_FORMAT', `config.json: field "${field}" is missing or not a number`);
}

export function specFromHF(c: HFConfig): ModelSpec {
  const arch = archFromHF(c.model_type);
  if (!arch) {
    throw new QuantMoeError('E_UNSUPPORTED',
      `config.json: model_type '${c.model_type}' is not supported (supported: ${Object.values(ARCHS).flatMap((a) => a.hfModelTypes).join(', ')})`);
  }
  const t = ARCHS[arch];
  const hidden = num(c, 'hidden_size');
  const heads = num(c, 'num_attention_heads');
  const layers = num(c, 'num_hidden_layers');
  const headDim = num(c, 'head_dim', hidden / heads);
  const experts = num(c, 'num_experts', num(c, 'num_local_experts', num(c, 'n_routed_experts', 0)));
  const ffnKinds: Array<'dense' | 'moe'> = [];
  const firstDense = num(c, 'first_k_dense_replace', 0);
  const sparseStep = num(c, 'decoder_sparse_step', num(c, 'moe_layer_freq', 1));
  const mlpOnly = Array.isArray(c.mlp_only_layers) ? (c.mlp_only_layers as number[]) : [];
  for (let l = 0; l < layers; l++) {
    const moe = experts > 0 && l >= firstDense && !mlpOnly.includes(l) && (l + 1) % sparseStep === 0;
    ffnKinds.push(moe ? 'moe' : 'dense');
  }
  const rs = c.rope_scaling;
  let ropeScaling: RopeScaling = { type: 'none' };
  if (rs && typeof rs === 'object') {
    const type = (rs.rope_type ?? rs.type) as string | undefined;
    const factor = typeof rs.factor === 'number' ? rs.factor : 1;
    if (type === 'linear') ropeScaling = { type: 'linear', factor };
    else if (type === 'yarn') {
      ropeScaling = {
        type: 'yarn', factor,
        originalContextLength: typeof rs.original_max_position_embeddings === 'number' ? rs.original_max_position_embeddings : num(c, 'max_position_embeddings'),
        betaFast: typeof rs.beta_fast === 'number' ? rs.beta_fast : 32,
        betaSlow: typeof rs.beta_slow === 'number' ? rs.beta_slow : 1,
      };
    } else if (type && type !== 'default') {
      throw new QuantMoeError('E_UNSUPPORTED', `config.json: rope_scaling type '${type}' is not supported`);
    }
  }
  const spec: ModelSpec = {
    arch,
    source: 'hf',
    vocabSize: num(c, 'vocab_size'),
    hidden,
    layers,
    heads,
    kvHeads: num(c, 'num_key_value_heads', heads),
    headDim,
    ropeDim: Math.round(headDim * num(c, 'partial_rotary_factor', 1)),
    ropeTheta: num(c, 'rope_theta', 10000),
    ropeStyle: 'neox', // transformers' rotate_half
    ropeScaling,
    normEps: num(c, 'rms_norm_eps', 1e-6),
    contextLength: num(c, 'max_position_embeddings', 2048),
    qkNorm: t.qkNorm,
    qkvBias: typeof c.attention_bias === 'boolean' ? c.attention_bias || t.qkvBias : t.qkvBias,
    ffnKinds,
    denseFfn: num(c, 'intermediate_size', 0),
    tieEmbeddings: c.tie_word_embeddings === true,
    activation: c.hidden_act === 'gelu' ? 'gelu' : c.hidden_act === 'gelu_pytorch_tanh' ? 'gelu_tanh' : 'silu',
  };
  if (experts > 0) {
    const sharedCount = num(c, 'n_shared_experts', 0);
    const expertFfn = num(c, 'moe_intermediate_size', num(c, 'intermediate_size'));
    const sharedFfn = arch === 'qwen2moe' ? num(c, 'shared_expert_intermediate_size', 0) : sharedCount * expertFfn;
    spec.moe = {
      experts,
      topk: num(c, 'num_experts_per_tok'),
      expertFfn,
      routing: t.routing,
      normTopk: typeof c.norm_topk_prob === 'boolean' ? c.norm_topk_prob : t.normTopk,
      routedScaling: num(c, 'routed_scaling_factor', 1),
      sharedFfn,
      sharedGate: arch === 'qwen2moe' && sharedFfn > 0,
    };
  }
  return spec;
}
