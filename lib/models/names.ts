// Tensor names. The runtime uses GGUF names throughout; Hugging Face checkpoints are mapped onto
// them. Per-expert tensors (HF layout, or our mixed-precision GGUF layout) are named
// blk.N.ffn_gate.E.weight (the split-expert names older llama.cpp Mixtral files used).

const HF_RULES: Array<[RegExp, string]> = [
  [/^model\.embed_tokens\.weight$/, 'token_embd.weight'],
  [/^model\.norm\.weight$/, 'output_norm.weight'],
  [/^lm_head\.weight$/, 'output.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'blk.$1.attn_norm.weight'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)$/, 'blk.$1.attn_q.$2'],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)$/, 'blk.$1.attn_k.$2'],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)$/, 'blk.$1.attn_v.$2'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, 'blk.$1.attn_output.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.q_norm\.weight$/, 'blk.$1.attn_q_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.k_norm\.weight$/, 'blk.$1.attn_k_norm.weight'],
  // MoE router (Qwen2/3-MoE, OLMoE, DeepSeek: mlp.gate; Mixtral: block_sparse_moe.gate)
  [/^model\.layers\.(\d+)\.(?:mlp|block_sparse_moe)\.gate\.weight$/, 'blk.$1.ffn_gate_inp.weight'],
  [/^model\.layers\.(\d+)\.mlp\.gate\.e_score_correction_bias$/, 'blk.$1.exp_probs_b.bias'],
  [/^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.gate_proj\.weight$/, 'blk.$1.ffn_gate.$2.weight'],
  [/^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.up_proj\.weight$/, 'blk.$1.ffn_up.$2.weight'],
  [/^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.down_proj\.weight$/, 'blk.$1.ffn_down.$2.weight'],
  [/^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.w1\.weight$/, 'blk.$1.ffn_gate.$2.weight'],
  [/^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.w3\.weight$/, 'blk.$1.ffn_up.$2.weight'],
  [/^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.w2\.weight$/, 'blk.$1.ffn_down.$2.weight'],
  // shared expert(s): Qwen2-MoE shared_expert (+ shared_expert_gate), DeepSeek shared_experts
  [/^model\.layers\.(\d+)\.mlp\.shared_experts?\.gate_proj\.weight$/, 'blk.$1.ffn_gate_shexp.weight'],
  [/^model\.layers\.(\d+)\.mlp\.shared_experts?\.up_proj\.weight$/, 'blk.$1.ffn_up_shexp.weight'],
  [/^model\.layers\.(\d+)\.mlp\.shared_experts?\.down_proj\.weight$/, 'blk.$1.ffn_down_shexp.weight'],
  [/^model\.layers\.(\d+)\.mlp\.shared_expert_gate\.weight$/, 'blk.$1.ffn_gate_inp_shexp.weight'],
  // dense FFN
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$/, 'blk.$1.ffn_gate.weight'],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\.weight$/, 'blk.$1.ffn_up.weight'],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, 'blk.$1.ffn_down.weight'],
];

/** GGUF name for a Hugging Face tensor name, or undefined when we do not use that tensor. */
export function hfToGGUFName(hf: string): string | undefined {
  for (const [re, to] of HF_RULES) if (re.test(hf)) return hf.replace(re, to);
  return undefined;
}

export const blk = (layer: number, name: string): string => `blk.${layer}.${name}`;
export const expertName = (layer: number, proj: 'gate' | 'up' | 'down', e: number): string =>
  `blk.${layer}.ffn_${proj}.${e}.weight`;
export const stackedExpertName = (layer: number, proj: 'gate' | 'up' | 'down'): string =>
  `blk.${layer}.ffn_${proj}_exps.weight`;
