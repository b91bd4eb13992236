// TypeScript types of the native 'attention' and 'sparse_attention' op families
// (native/ops/attention.cc, native/ops/sparse_attention.cc).
//
// Layout: tensors are row-major q [T, Hq, D], k/v [T, Hkv, D] for T tokens of ONE sequence;
// outputs [T, Hq, D]. Hq must be a multiple of Hkv (GQA; Hq == Hkv is MHA, Hkv == 1 MQA).
// The KV cache is a plain native tensor f32|f16 [layers, maxSeqs, 2, kvHeads, capacity, headDim]
// made by kvCacheCreate; the runtime tracks how many positions of each sequence are filled.
import type { Tensor, ThreadOptions } from '../native';

/** A KV cache: a native tensor f32|f16 [layers, maxSeqs, 2, kvHeads, capacity, headDim] (kvCacheCreate). */
export type KvCache = Tensor;

export interface KvCacheOptions {
  layers: number;
  /** Sequences held at once (rows of a batched decode). */
  maxSeqs: number;
  /** Tokens per sequence. */
  capacity: number;
  kvHeads: number;
  headDim: number;
  /** Storage type, default 'f16' (keys/values are converted on write; attention reads both). */
  dtype?: 'f32' | 'f16';
}

export interface AttentionOptions extends ThreadOptions {
  /** Softmax scale, default 1/sqrt(D). */
  scale?: number;
  /** Default true: the query at position p sees keys 0..p. false: every key (still windowed). */
  causal?: boolean;
  /** Sliding window W (0 or absent = off): the query at p sees keys p−W+1..p. */
  slidingWindow?: number;
  /** gpt-oss sinks: one learned logit per query head, added to the softmax denominator only. */
  sinks?: Tensor | Float32Array;
  /** Gemma-2 style logit softcap c: s = c·tanh(s/c) after scaling (0 = off). */
  softcap?: number;
  /** Write the output here (f32, q's shape); must not alias an input. */
  out?: Tensor;
}

export interface CachedAttentionOptions extends AttentionOptions {
  /** Position of q's first token; keys 0..startPos+T−1 must already be in the cache. Default 0. */
  startPos?: number;
  /**
   * Block-sparse read: query head h attends only to key blocks blocks[h] (ascending ids of blockK
   * keys each, e.g. from selectDecodeBlocks); causal/window masks still apply.
   */
  kvBlocks?: { blockK: number; blocks: Int32Array[] };
}

export interface DenseAttentionOptions extends AttentionOptions {
  /** Position of q's first token relative to k's first key. Default S − T (q is the tail of k). */
  startPos?: number;
}

export interface SparseAttentionOptions extends ThreadOptions {
  /** Query rows per block (default 128). */
  blockQ?: number;
  /** Key rows per block (default 64). */
  blockK?: number;
  /** θ: blocks whose mean pairwise cosine is ≤ θ are not self-similar and always computed (default 0.3; −1 = all similar). */
  simThreshold?: number;
  /** τ: keep, per query block, the key blocks that reach this cumulative pooled-softmax mass (default 0.95; 1 = all). */
  cdfThreshold?: number;
  /** Alternative to τ: keep this fraction of key blocks per query block. */
  topk?: number;
  /** λ (stage 2): skip a row's P·V for a key block whose max score is more than λ below the running max (default 20; Infinity = off). */
  pvThreshold?: number;
  /** Always keep the first key block (attention sink), default true. */
  keepSinkBlock?: boolean;
  /** Always keep the key blocks overlapping the query block itself (the causal diagonal), default true. */
  keepDiagonal?: boolean;
  /** With keepDiagonal: also keep the key blocks within this many tokens before the query block (default 64). */
  localWindow?: number;
  /** Default true. */
  causal?: boolean;
  /** Softmax scale, default 1/sqrt(D). */
  scale?: number;
  /** Q·K in INT8 (per-block scales, K smoothed by its mean over the sequence), default true. */
  int8Qk?: boolean;
  /** A block mask [Hq, nQb, nKb] (1 = compute) that replaces the prediction. */
  blockMask?: Uint8Array;
  out?: Tensor;
}

export interface SparseAttentionStats {
  /** Causally visible (query block, key block) pairs over all heads. */
  blocksTotal: number;
  /** Of which skipped by the stage-1 block mask. */
  blocksSkippedStage1: number;
  /** Row-block P·V products skipped by stage 2, in units of whole blocks (rows / blockQ). */
  blocksSkippedStage2: number;
  /** (stage-1 skipped + stage-2 skipped) / total. */
  sparsity: number;
}

export interface DecodeBlockOptions {
  /** Keys per block, default 64. */
  blockK?: number;
  /** Cumulative pooled-softmax mass to reach (default 0.9). */
  cdfThreshold?: number;
  /** Alternative: fraction of blocks to keep. */
  topk?: number;
  /** Always keep the first block, default true. */
  keepSinkBlock?: boolean;
  /** Always keep the last (most recent) block, default true. */
  keepLastBlock?: boolean;
  /** Softmax scale, default 1/sqrt(D). */
  scale?: number;
  /** With a cache: which layer/seq and how many keys (length) to read. */
  layer?: number;
  seq?: number;
  length?: number;
}

export interface DenseAttentionOps {
  kvCacheCreate(options: KvCacheOptions): KvCache;
  /** Writes k/v f32 [T, Hkv, D] at positions pos..pos+T−1 (E_CONTEXT_OVERFLOW beyond capacity). */
  kvCacheWrite(cache: KvCache, layer: number, seq: number, pos: number, k: Tensor, v: Tensor, options?: ThreadOptions): void;
  /** Zeroes one sequence in every layer; its whole pages go back to the system (no memory until written again). */
  kvCacheClear(cache: KvCache, seq: number): void;
  /** Copies the first `length` positions of srcSeq to dstSeq in every layer (prefix sharing). */
  kvCacheCopy(cache: KvCache, srcSeq: number, dstSeq: number, length: number): void;
  /** Attention of q f32 [T, Hq, D] (positions startPos..startPos+T−1) over one cached sequence. */
  attention(q: Tensor, cache: KvCache, layer: number, seq: number, options?: CachedAttentionOptions): Tensor;
  /** One new token per row: q [B, Hq, D]; row b reads sequence seqs[b] up to positions[b] (its K/V already written). */
  attentionDecodeBatch(
    q: Tensor, cache: KvCache, layer: number, seqs: Int32Array | Tensor, positions: Int32Array | Tensor,
    options?: AttentionOptions,
  ): Tensor;
  /** Attention without a cache: q [T, Hq, D], k/v f32|f16 [S, Hkv, D]. */
  attentionDense(q: Tensor, k: Tensor, v: Tensor, options?: DenseAttentionOptions): Tensor;
  /** Measured f32 FMA throughput of the active ISA (benchmark compute floor). */
  fmaPeakGflops(options?: ThreadOptions & { iterations?: number }): { gflops: number; threads: number; checksum: number };
}

export interface SparseAttentionResult {
  out: Tensor;
  stats: SparseAttentionStats;
}

export interface SparseAttentionOps {
  /** SpargeAttn block-sparse attention of q [T, Hq, D] over k/v f32 [T, Hkv, D] (one sequence, prefill). */
  sparseAttention(q: Tensor, k: Tensor, v: Tensor, options?: SparseAttentionOptions): SparseAttentionResult;
  /** The stage-1 block mask [Hq, nQb, nKb] (1 = compute) sparseAttention would use. */
  predictBlockMask(q: Tensor, k: Tensor, options?: SparseAttentionOptions): Uint8Array;
  /**
   * Decode: the key blocks one query token should read, per query head (ascending block ids), from
   * pooled-K scores. k is f32 [S, Hkv, D] or a KV cache (then options.layer/seq/length).
   */
  selectDecodeBlocks(q: Tensor, k: Tensor, options?: DecodeBlockOptions): Int32Array[];
}

/** Both families, as lib/native.ts's NativeAddon includes them. */
export interface AttentionOps extends DenseAttentionOps, SparseAttentionOps {
  readonly _attentionFamilies?: never;
}
