// qgemm benchmark: per weight type, GEMV (T=1) in GB/s of weight bytes read and GEMM (T tokens, the
// size of one expert's batch in a prefill) in GFLOP/s, at the expert FFN shapes of real MoE models,
// with 1 and 2 threads, next to the memory read bandwidth measured in the same run.
import * as os from 'os';

import { native } from '../lib/native';
import type { Tensor } from '../lib/native';
import type { QgemmWeightType } from '../lib/native-ops/qgemm';

export interface QgemmBenchOptions {
  threads: number[];
  /** Tokens of the GEMM runs. */
  gemmTokens: number;
  /** Runs per measurement (median reported). */
  runs: number;
  /** Bytes of the read-bandwidth buffer. */
  bandwidthBytes: number;
  /** GEMV reads at least this many weight bytes in rotation (larger than the caches). */
  coldBytes: number;
  types: QgemmWeightType[];
  log: (line: string) => void;
}

interface Shape {
  model: string;
  matrix: string;
  N: number;
  K: number;
}

// Expert FFN matrices: gate/up are [FFN, D], down is [D, FFN] (w is [N, K]).
const SHAPES: Shape[] = [
  { model: 'OLMoE-1B-7B', matrix: 'gate/up', N: 1024, K: 2048 },
  { model: 'OLMoE-1B-7B', matrix: 'down', N: 2048, K: 1024 },
  { model: 'Qwen1.5-MoE-A2.7B', matrix: 'gate/up', N: 1408, K: 2048 },
  { model: 'Qwen1.5-MoE-A2.7B', matrix: 'down', N: 2048, K: 1408 },
];

const BLOCK: Record<string, number> = { q4_0: 32, q4_1: 32, q5_0: 32, q5_1: 32, q8_0: 32, q2_k: 256, q3_k: 256, q4_k: 256, q5_k: 256, q6_k: 256 };

/**
 * K-quants need K % 256 == 0; where it is not (Qwen's down projection, K = 1408) a GGUF writer
 * falls back to a 32-block type, as llama.cpp does (q4_k→q5_0, q5_k→q5_1, q6_k→q8_0; q2_k/q3_k→
 * iq4_nl there, q4_0 here since iq4_nl is not implemented).
 */
export function fallbackType(t: QgemmWeightType, K: number): QgemmWeightType {
  if (K % (BLOCK[t] ?? 1) === 0) return t;
  const fb: Record<string, QgemmWeightType> = { q2_k: 'q4_0', q3_k: 'q4_0', q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0' };
  return fb[t];
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median seconds per call of fn, each sample timing enough calls to last ~minSample seconds. */
function timeIt(fn: () => void, runs: number, minSample = 0.02): number {
  fn(); // warm up (page-in, caches)
  let reps = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt >= minSample || reps >= 1 << 16) break;
    reps *= 2;
  }
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9 / reps);
  }
  return median(samples);
}

function randomF32(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 0.1;
  }
  return a;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padEnd(n) : s.padStart(n);
}

export function benchQgemm(o: QgemmBenchOptions): void {
  const q = native();
  const b = q.backends();
  o.log(`qgemm benchmark: cpu isa ${b.cpu.isa}, ${b.cpu.threads} hardware threads, load average ${os.loadavg()[0].toFixed(1)}; ` +
    `medians of ${o.runs} runs; GEMV weights rotate through >= ${(o.coldBytes / 2 ** 20).toFixed(0)} MiB (cold caches); GEMM T=${o.gemmTokens}`);

  // Memory read bandwidth: a native parallel sum over a buffer far larger than the caches.
  const n = Math.floor(o.bandwidthBytes / 4);
  const host = new Float32Array(n).fill(1);
  const buf = q.tensorFromData('f32', [n], host);
  const bw: Record<number, number> = {};
  for (const th of o.threads) {
    const t = timeIt(() => q.readSumF32(buf, { threads: th }), o.runs, 0.2);
    bw[th] = (n * 4) / t / 1e9;
  }
  buf.dispose();
  o.log(`memory read bandwidth (${(o.bandwidthBytes / 2 ** 30).toFixed(2)} GiB f32 sum): ` +
    o.threads.map((th) => `${th} thread${th > 1 ? 's' : ''} ${bw[th].toFixed(1)} GB/s`).join(', '));

  // Integer peak of the same threads, derived (not measured) from the measured f32 FMA peak: an
  // AVX-512 VNNI vpdpbusd does 64 int8 multiply-adds per instruction where an FMA does 16, assuming
  // both issue at the same rate; AVX2 (vpmaddubsw + vpmaddwd) does 32 per 2 instructions vs 8 per
  // FMA. The GEMM counts 2 ops per multiply-add, like the FMA peak.
  const int8PerFma = b.cpu.isa === 'avx512' ? 4 : b.cpu.isa === 'avx2' ? 2 : 1;
  const peak: Record<number, number> = {};
  for (const t of o.threads) {
    const g = median(Array.from({ length: 5 }, () => q.fmaPeakGflops({ threads: t }).gflops));
    peak[t] = g * int8PerFma;
  }
  o.log(`int8 peak (derived: measured f32 FMA peak × ${int8PerFma} for ${b.cpu.isa}): ` +
    o.threads.map((t) => `${t}T ${peak[t].toFixed(0)} GOP/s`).join(', '));

  const th = o.threads;
  const header = [pad('model', 18, true), pad('matrix', 8, true), pad('[N,K]', 11, true), pad('type', 5, true),
    ...th.map((t) => pad(`GEMV GB/s ${t}T`, 14)), ...th.map((t) => pad(`% of bw ${t}T`, 12)),
    ...th.map((t) => pad(`GEMM GFLOP/s ${t}T`, 17)), ...th.map((t) => pad(`% of int8 ${t}T`, 14))].join(' | ');
  o.log(header);
  o.log('-'.repeat(header.length));
  for (const s of SHAPES) {
    const wf = q.tensorFromData('f32', [s.N, s.K], randomF32(s.N * s.K, s.N * 31 + s.K));
    const x1 = q.tensorFromData('f32', [1, s.K], randomF32(s.K, 7));
    const xT = q.tensorFromData('f32', [o.gemmTokens, s.K], randomF32(o.gemmTokens * s.K, 11));
    const y1 = q.tensorEmpty('f32', [1, s.N]);
    const yT = q.tensorEmpty('f32', [o.gemmTokens, s.N]);
    for (const want of o.types) {
      const t = fallbackType(want, s.K);
      const w: Tensor = q.quantize(t, wf, { threads: Math.max(...th) });
      // GEMV cycles through copies of the matrix totalling >= o.coldBytes, so the weights come
      // from DRAM as experts do in a real forward pass (one matrix would stay in the L2/L3 cache).
      const copies: Tensor[] = [];
      const bytes = w.toArrayBuffer();
      const nCopies = Math.min(4096, Math.ceil(o.coldBytes / w.byteSize));
      for (let i = 0; i < nCopies; i++) copies.push(q.tensorFromData(t, [s.N, s.K], bytes));
      const gemv: number[] = [], gemm: number[] = [];
      for (const threads of th) {
        let next = 0;
        const tv = timeIt(() => {
          q.qmatmul(x1, copies[next], { threads, out: y1 });
          next = (next + 1) % copies.length;
        }, o.runs);
        gemv.push(w.byteSize / tv / 1e9);
        const tg = timeIt(() => q.qmatmul(xT, w, { threads, out: yT }), o.runs, 0.05);
        gemm.push((2 * o.gemmTokens * s.N * s.K) / tg / 1e9);
      }
      w.dispose();
      for (const c of copies) c.dispose();
      const name = t === want ? t : `${t}*`;
      o.log([pad(s.model, 18, true), pad(s.matrix, 8, true), pad(`[${s.N},${s.K}]`, 11, true), pad(name, 5, true),
        ...gemv.map((v) => pad(v.toFixed(1), 14)), ...gemv.map((v, i) => pad(`${((100 * v) / bw[th[i]]).toFixed(0)}%`, 12)),
        ...gemm.map((v) => pad(v.toFixed(1), 17)), ...gemm.map((v, i) => pad(`${((100 * v) / peak[th[i]]).toFixed(0)}%`, 14))].join(' | '));
    }
    for (const t of [wf, x1, xT, y1, yT]) t.dispose();
  }
  o.log('* K = 1408 is not a multiple of 256: the K-quant falls back to a 32-block type (see fallbackType).');
}
