// ModelSpec: everything the generic forward pass needs to know about an architecture, derived
// from a Hugging Face config.json or from GGUF metadata. Tensor names are the GGUF names
// (token_embd.weight, blk.N.attn_q.weight, ...); Hugging Face names are mapped to them on load.

export type ArchName = 'llama' | 'qwen2' | 'qwen3' | 'qwen2moe' | 'qwen3moe' | 'olmoe' | 'deepseek';

/** RoPE pairing: 'adjacent' rotates (2i, 2i+1) (GGUF llama, whose Q/K rows were permuted by the
 * HF→GGUF converter); 'neox' rotates (i, i + d/2) (Hugging Face rotate_half, Qwen/OLMoE GGUFs). */
export type RopeStyle = 'adjacent' | 'neox';

export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | { type: 'yarn'; factor: number; originalContextLength: number; betaFast: number; betaSlow: number };

/** Routing function of a MoE layer (see native routing op). */
export type RoutingKind = 'softmax' | 'topk_softmax' | 'sigmoid';

/** Where q/k RMSNorm applies: per head over head_dim (Qwen3) or over the whole projection (OLMoE). */
export type QkNorm = 'none' | 'head' | 'full';

export interface MoeSpec {
  experts: number;
  topk: number;
  expertFfn: number;
  routing: RoutingKind;
  normTopk: boolean;
  routedScaling: number;
  /** Shared expert(s) FFN width (0 = none); several shared experts are stored as one wider FFN. */
  sharedFfn: number;
  /** Qwen2-MoE: the shared expert's output is scaled by sigmoid(w · x). */
  sharedGate: boolean;
}

export interface ModelSpec {
  arch: ArchName;
  /** Where the spec came from, e.g. 'gguf' or 'hf'. */
  source: 'gguf' | 'hf';
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ropeDim: number;
  ropeTheta: number;
  ropeStyle: RopeStyle;
  ropeScaling: RopeScaling;
  normEps: number;
  contextLength: number;
  qkNorm: QkNorm;
  /** Attention q/k/v projections carry biases (Qwen2 family). */
  qkvBias: boolean;
  /** FFN kind per layer. */
  ffnKinds: Array<'dense' | 'moe'>;
  /** Width of dense FFN layers (0 when there are none). */
  denseFfn: number;
  moe?: MoeSpec;
  tieEmbeddings: boolean;
  activation: 'silu' | 'gelu' | 'gelu_tanh';
}

/** Total and active parameter counts from the spec (active: k routed experts + shared). */
export function parameterCounts(s: ModelSpec): { total: number; active: number } {
  const attn = s.hidden * s.heads * s.headDim * 2 + s.hidden * s.kvHeads * s.headDim * 2;
  const embed = s.vocabSize * s.hidden * (s.tieEmbeddings ? 1 : 2);
  let total = embed;
  let active = embed;
  for (const kind of s.ffnKinds) {
    total += attn;
    active += attn;
    if (kind === 'dense' || !s.moe) {
      total += 3 * s.hidden * s.denseFfn;
      active += 3 * s.hidden * s.denseFfn;
    } else {
      const m = s.moe;
      const expert = 3 * s.hidden * m.expertFfn;
      const shared = 3 * s.hidden * m.sharedFfn + (m.sharedGate ? s.hidden : 0);
      total += m.experts * expert + shared + m.experts * s.hidden;
      active += m.topk * expert + shared + m.experts * s.hidden;
    }
  }
  return { total, active };
}
