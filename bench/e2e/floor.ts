// The decode bandwidth floor: weight bytes one decoded token must read, from the file's tensor
// types and sizes, over the memory read bandwidth measured in the same run.
import { readGGUF } from '../../lib/formats/gguf-read';
import { native } from '../../lib/native';

export interface DecodeBytes {
  /** Batch 1: attention + norms + router + top-k experts + shared expert + lm_head + one embedding row. */
  perToken: number;
  /** Of which routed-expert bytes. */
  experts: number;
  /**
   * One decode step of `batch` tokens: the non-expert weights once plus the experts the batch
   * touches, expected distinct experts per layer E·(1 − (1 − k/E)^batch) under uniform routing.
   */
  perBatchStep: number;
  batch: number;
}

export async function decodeBytes(file: string, experts: number, topk: number, batch: number): Promise<DecodeBytes> {
  const g = await readGGUF(file);
  let dense = 0, exps = 0, embRow = 0;
  for (const t of g.tensors) {
    if (t.name.includes('_exps.')) exps += t.byteSize; // [E, rows, cols]: k of E read per token
    else if (t.name === 'token_embd.weight') embRow = t.byteSize / t.shape[0]; // one row per token
    else dense += t.byteSize;
  }
  const distinct = experts * (1 - Math.pow(1 - topk / experts, batch));
  return {
    perToken: dense + embRow + (exps * topk) / experts,
    experts: (exps * topk) / experts,
    perBatchStep: dense + batch * embRow + (exps * distinct) / experts,
    batch,
  };
}

/**
 * Memory read bandwidth, GB/s: a native parallel f32 sum (readSumF32) over a buffer far larger
 * than the caches, the method of bench/qgemm.ts and bench/moe.ts. Best and median of `samples`
 * passes (on a shared machine the best pass is the better estimate of what the memory can do).
 */
export function readBandwidth(threads: number, bytes = 512 * 2 ** 20, samples = 7): { best: number; median: number } {
  const q = native();
  const n = Math.floor(bytes / 4);
  const buf = q.tensorFromData('f32', [n], new Float32Array(n).fill(1));
  try {
    q.readSumF32(buf, { threads }); // page in
    const gbs: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = process.hrtime.bigint();
      q.readSumF32(buf, { threads });
      gbs.push((n * 4) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e9);
    }
    const s = [...gbs].sort((a, b) => a - b);
    return { best: s[s.length - 1], median: s[s.length >> 1] };
  } finally {
    buf.dispose();
  }
}
