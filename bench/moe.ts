// Fused MoE layer benchmark at the OLMoE-1B-7B shape (D=2048, expert FFN 1024, 64 experts, top-8):
//  - decode: 1 token; consecutive calls route to disjoint expert sets (rotating through all 64) of
//    several copies of the layer (>= 1 GB in all, so more than any last-level cache: some server CPUs
//    have 260 MB of L3), so the 8 × 3 expert matrices come from DRAM, not from the caches; reported
//    as GB/s of expert weight bytes read, next to the memory read bandwidth measured in the same run
//    (native parallel sum);
//  - prefill: 512 tokens with random routing (every expert active); GFLOP/s of the expert GEMMs.
// The full 64-expert layer (~0.23 GB for q4_0/q4_k, 0.43 GB for q8_0) is allocated in as many copies
// as make 1 GB: weights are random block bytes with valid scales (the speed does not depend on them).
// Build with `npx tsc`, run with `node dist/bench/moe.js [--quick] [--types q4_0,q4_0_r16,q8_0]`
// (default: q4_0, q8_0 and q4_k, plus q4_0_r16 / q8_0_r16 on AVX-512).
import { randomFillSync } from 'crypto';

import { native } from '../lib/native';
import type { Tensor } from '../lib/native';
import type { QgemmWeightType } from '../lib/native-ops/qgemm';
import { fileDType } from '../lib/runtime/weights';

const D = 2048, F = 1024, E = 64, K = 8;

// Block size, bytes, byte offsets of the f16 scale fields (ggml-common.h layouts).
const LAYOUT: Partial<Record<QgemmWeightType, { block: number; bytes: number; halves: number[] }>> = {
  q4_0: { block: 32, bytes: 18, halves: [0] },
  q4_1: { block: 32, bytes: 20, halves: [0, 2] },
  q5_0: { block: 32, bytes: 22, halves: [0] },
  q5_1: { block: 32, bytes: 24, halves: [0, 2] },
  q8_0: { block: 32, bytes: 34, halves: [0] },
  q2_k: { block: 256, bytes: 84, halves: [80, 82] },
  q3_k: { block: 256, bytes: 110, halves: [108] },
  q4_k: { block: 256, bytes: 144, halves: [0, 2] },
  q5_k: { block: 256, bytes: 176, halves: [0, 2] },
  q6_k: { block: 256, bytes: 210, halves: [208] },
};

/** The file type behind an r16 layout (native/cpu/repack.h: same bytes per row). */
const plainOf = (t: QgemmWeightType): QgemmWeightType => fileDType(t) as QgemmWeightType;

function rowBytes(t: QgemmWeightType, k: number): number {
  t = plainOf(t);
  if (t === 'f32') return 4 * k;
  if (t === 'f16' || t === 'bf16') return 2 * k;
  const l = LAYOUT[t]!;
  return (k / l.block) * l.bytes;
}

/**
 * A random weight tensor: random bytes, every f16 scale set to a small normal value; r16 types are
 * made as their plain type and repacked (as models loaded into memory are on AVX-512).
 */
function randomWeight(type: QgemmWeightType, shape: number[]): Tensor {
  const t = plainOf(type);
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const k = shape[shape.length - 1];
  const bytes = new Uint8Array(rows * rowBytes(t, k));
  randomFillSync(bytes);
  if (t === 'f16' || t === 'bf16' || t === 'f32') {
    // small finite values: clear the top exponent bits
    const step = t === 'f32' ? 4 : 2;
    for (let i = step - 1; i < bytes.length; i += step) bytes[i] = (bytes[i] & 0x83) | (t === 'f16' ? 0x20 : 0x3c);
  } else {
    const l = LAYOUT[t]!;
    for (let b = 0; b < bytes.length; b += l.bytes)
      for (const h of l.halves) {
        bytes[b + h] = 0x00;
        bytes[b + h + 1] = 0x1c; // 2^-8
      }
  }
  const w = native().tensorFromData(t, shape, bytes);
  return type === t ? w : native().repackR16(w);
}

function randomF32(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 2;
  }
  return a;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median seconds per call: each of `runs` samples times enough calls to last >= minSample s. */
function timeIt(fn: (i: number) => void, runs: number, minSample: number, warmUp = true): number {
  let calls = 0;
  if (warmUp) fn(calls++);
  let reps = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) fn(calls++);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt >= minSample || reps >= 1 << 14) break;
    reps *= 2;
  }
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) fn(calls++);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9 / reps);
  }
  return median(samples);
}

const pad = (s: string, n: number): string => s.padStart(n);

export function benchMoe(o: { types: QgemmWeightType[]; threads: number[]; prefillTokens: number; runs: number; log: (l: string) => void }): void {
  const q = native();
  const b = q.backends();
  o.log(`moe benchmark (OLMoE shape: D=${D}, FFN=${F}, E=${E}, top-${K}): cpu isa ${b.cpu.isa}, ${b.cpu.threads} hardware threads, decode: medians of ${o.runs} runs, prefill: median of 2 calls`);

  // Memory read bandwidth, as bench/qgemm.ts measures it.
  const n = (512 * 2 ** 20) / 4;
  const buf = q.tensorFromData('f32', [n], new Float32Array(n).fill(1));
  const bw: Record<number, number> = {};
  for (const th of o.threads) bw[th] = (n * 4) / timeIt(() => q.readSumF32(buf, { threads: th }), o.runs, 0.3) / 1e9;
  buf.dispose();
  o.log(`memory read bandwidth (0.5 GiB f32 sum): ${o.threads.map((t) => `${t}T ${bw[t].toFixed(1)} GB/s`).join(', ')}`);

  // Decode routing: call i uses experts 8·(i mod 8) .. 8·(i mod 8)+7 (disjoint sets back to back).
  const decodeLogits: Tensor[] = [];
  for (let i = 0; i < E / K; i++) {
    const l = new Float32Array(E);
    for (let j = 0; j < K; j++) l[i * K + j] = 8 - j;
    decodeLogits.push(q.tensorFromData('f32', [1, E], l));
  }
  const x1 = q.tensorFromData('f32', [1, D], randomF32(D, 1));
  const y1 = q.tensorEmpty('f32', [1, D]);
  const T = o.prefillTokens;
  const xT = q.tensorFromData('f32', [T, D], randomF32(T * D, 2));
  const yT = q.tensorEmpty('f32', [T, D]);
  const lT = q.tensorFromData('f32', [T, E], randomF32(T * E, 3));

  const header = ['type', 'layer GB', 'thr', 'decode ms', 'decode GB/s', '% of bw', 'prefill ms', 'prefill GFLOP/s', 'tok/s'];
  const widths = [8, 9, 4, 10, 12, 8, 11, 16, 8];
  o.log(header.map((h, i) => pad(h, widths[i])).join(' | '));
  o.log('-'.repeat(widths.reduce((a, w) => a + w + 3, -3)));
  for (const t of o.types) {
    const layerBytes = E * (2 * F * rowBytes(t, D) + D * rowBytes(t, F));
    const copies = Math.max(1, Math.ceil(1e9 / layerBytes));
    const layers = Array.from({ length: copies }, () => ({ gate: randomWeight(t, [E, F, D]), up: randomWeight(t, [E, F, D]), down: randomWeight(t, [E, D, F]) }));
    const experts = layers[0];
    const decodeBytes = K * (2 * F * rowBytes(t, D) + D * rowBytes(t, F));
    const sets = decodeLogits.length;
    for (const threads of o.threads) {
      const td = timeIt((i) => q.moe(x1, { topK: K, routerLogits: decodeLogits[i % sets], experts: layers[Math.floor(i / sets) % copies], threads, out: y1 }), o.runs, 0.25);
      let active = 0;
      const tp = timeIt(() => {
        const r = q.moe(xT, { topK: K, routerLogits: lT, experts, threads, out: yT });
        active = r.counts.reduce((a, c) => a + (c > 0 ? 1 : 0), 0);
      }, 2, 0, false); // seconds per call: 2 samples, no warm-up
      const flops = 2 * T * K * 3 * F * D;
      const gbs = decodeBytes / td / 1e9;
      o.log([t, (layerBytes / 1e9).toFixed(3), String(threads), (td * 1e3).toFixed(3), gbs.toFixed(1),
        `${((100 * gbs) / bw[threads]).toFixed(0)}%`, (tp * 1e3).toFixed(1), (flops / tp / 1e9).toFixed(1),
        (T / tp).toFixed(0)].map((s, i) => pad(s, widths[i])).join(' | '));
      if (active !== E) o.log(`  (prefill: ${active} of ${E} experts active)`);
    }
    for (const l of layers) for (const w of [l.gate, l.up, l.down]) w.dispose();
  }
  o.log(`decode GB/s = ${K} experts × 3 matrices of expert weight bytes per call / time; prefill: ${T} tokens, ` +
    `GFLOP/s = 2·T·k·3·F·D / time (routing, quantization, combine included in the time).`);
  for (const t of [...decodeLogits, x1, y1, xT, yT, lT]) t.dispose();
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const ti = process.argv.indexOf('--types');
  // (the r16 layouts: what Q4_0 / Q8_0 models loaded into memory run on AVX-512)
  const avx512 = native().backends().cpu.isa === 'avx512';
  const types = (ti > 0 ? process.argv[ti + 1].split(',') : ['q4_0', ...(avx512 ? ['q4_0_r16'] : []), 'q8_0', ...(avx512 ? ['q8_0_r16'] : []), 'q4_k']) as QgemmWeightType[];
  const t0 = Date.now();
  benchMoe({ types, threads: [1, 2], prefillTokens: 512, runs: quick ? 3 : 5, log: (l) => console.log(l) });
  console.log(`(${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

if (require.main === module) main();
