// Per-architecture conventions, one entry per family. Everything here was checked against
// llama.cpp (through node-llama-cpp, in test/runtime/llama-cpp.test.ts) and, for the Qwen2-MoE
// layout, against PyTorch (the trained model's reference logits).
import type { ArchName, QkNorm, RopeStyle, RoutingKind } from './spec';

export interface ArchTraits {
  /** GGUF `general.architecture` value. */
  gguf: string;
  /** HF `model_type` values. */
  hfModelTypes: string[];
  /** RoPE pairing in GGUF files (HF checkpoints always use rotate_half = 'neox'). */
  ggufRope: RopeStyle;
  qkNorm: QkNorm;
  qkvBias: boolean;
  routing: RoutingKind;
  /** Default for renormalising the top-k weights when the file does not say. */
  normTopk: boolean;
  /** llama.cpp fixes normTopk per arch regardless of metadata (it ignores norm_topk_prob). */
  ggufNormTopk?: boolean;
  sharedGate: boolean;
}

export const ARCHS: Record<ArchName, ArchTraits> = {
  // Llama and Mixtral (GGUF arch `llama`, experts when expert_count > 0). Mixtral renormalises.
  llama: { gguf: 'llama', hfModelTypes: ['llama', 'mixtral', 'mistral'], ggufRope: 'adjacent', qkNorm: 'none', qkvBias: false,
    routing: 'softmax', normTopk: true, ggufNormTopk: true, sharedGate: false },
  qwen2: { gguf: 'qwen2', hfModelTypes: ['qwen2'], ggufRope: 'neox', qkNorm: 'none', qkvBias: true,
    routing: 'softmax', normTopk: false, sharedGate: false },
  qwen3: { gguf: 'qwen3', hfModelTypes: ['qwen3'], ggufRope: 'neox', qkNorm: 'head', qkvBias: false,
    routing: 'softmax', normTopk: false, sharedGate: false },
  // Qwen2-MoE: shared expert scaled by sigmoid(shared_expert_gate · x); llama.cpp never renormalises.
  qwen2moe: { gguf: 'qwen2moe', hfModelTypes: ['qwen2_moe'], ggufRope: 'neox', qkNorm: 'none', qkvBias: true,
    routing: 'softmax', normTopk: false, ggufNormTopk: false, sharedGate: true },
  // Qwen3-MoE: q/k RMSNorm per head; llama.cpp always renormalises (checkpoints set norm_topk_prob).
  qwen3moe: { gguf: 'qwen3moe', hfModelTypes: ['qwen3_moe'], ggufRope: 'neox', qkNorm: 'head', qkvBias: false,
    routing: 'softmax', normTopk: true, ggufNormTopk: true, sharedGate: false },
  // OLMoE: q/k RMSNorm over the whole projection; no renormalisation.
  olmoe: { gguf: 'olmoe', hfModelTypes: ['olmoe'], ggufRope: 'neox', qkNorm: 'full', qkvBias: false,
    routing: 'softmax', normTopk: false, ggufNormTopk: false, sharedGate: false },
  // DeepSeek-MoE (v1): leading dense layers, unscaled shared experts, softmax routing.
  deepseek: { gguf: 'deepseek', hfModelTypes: ['deepseek'], ggufRope: 'adjacent', qkNorm: 'none', qkvBias: false,
    routing: 'softmax', normTopk: false, ggufNormTopk: false, sharedGate: false },
};

export function archFromGGUF(name: string): ArchName | undefined {
  return (Object.keys(ARCHS) as ArchName[]).find((a) => ARCHS[a].gguf === name);
}

export function archFromHF(modelType: string): ArchName | undefined {
  return (Object.keys(ARCHS) as ArchName[]).find((a) => ARCHS[a].hfModelTypes.includes(modelType));
}
