// Independent TypeScript ports of llama.cpp's block decoders (ggml-quants.c dequantize_row_*) and of
// the Q4_0 / Q8_0 reference quantizers (quantize_row_q4_0_ref / quantize_row_q8_0_ref), written from
// the C source, operating on raw bytes: the tests check the native code against these, never
// against itself. float32 arithmetic is emulated with Math.fround at every C float operation.

export type BlockType =
  | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q8_1' | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k';

/** [elements per block, bytes per block] (ggml-common.h). */
export const BLOCK: Record<BlockType, [number, number]> = {
  q4_0: [32, 18], q4_1: [32, 20], q5_0: [32, 22], q5_1: [32, 24], q8_0: [32, 34], q8_1: [32, 36],
  q2_k: [256, 84], q3_k: [256, 110], q4_k: [256, 144], q5_k: [256, 176], q6_k: [256, 210], q8_k: [256, 292],
};

const f = Math.fround;

/** IEEE binary16 -> number (exact). */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number (a float32 value) -> binary16, round to nearest even (what GGML_FP32_TO_FP16 does). */
export function floatToHalf(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (Number.isNaN(v)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00; // rounds to infinity
  if (a < 2 ** -14) {
    // subnormal: units of 2^-24, ties to even
    const u = a / 2 ** -24;
    let r = Math.floor(u);
    const rem = u - r;
    if (rem > 0.5 || (rem === 0.5 && r & 1)) r++;
    return sign | r; // r == 1024 becomes the smallest normal, which is the right encoding
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const u = (a / 2 ** e - 1) * 1024;
  let m = Math.floor(u);
  const rem = u - m;
  if (rem > 0.5 || (rem === 0.5 && m & 1)) m++;
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
function i8(b: Uint8Array, o: number): number {
  return (b[o] << 24) >> 24;
}
function hf(b: Uint8Array, o: number): number {
  return halfToFloat(u16(b, o));
}
function f32at(b: Uint8Array, o: number): number {
  return new DataView(b.buffer, b.byteOffset + o, 4).getFloat32(0, true);
}

function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j] & 63, q[o + j + 4] & 63];
  return [(q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4), (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4)];
}

/** Decodes one block at byte offset o into out[base .. base + block elements). */
function decodeBlock(t: BlockType, b: Uint8Array, o: number, out: Float64Array, base: number): void {
  switch (t) {
    case 'q4_0': {
      const d = hf(b, o);
      for (let j = 0; j < 16; j++) {
        out[base + j] = f(((b[o + 2 + j] & 0xf) - 8) * d);
        out[base + j + 16] = f(((b[o + 2 + j] >> 4) - 8) * d);
      }
      return;
    }
    case 'q4_1': {
      const d = hf(b, o), m = hf(b, o + 2);
      for (let j = 0; j < 16; j++) {
        out[base + j] = f(f((b[o + 4 + j] & 0xf) * d) + m);
        out[base + j + 16] = f(f((b[o + 4 + j] >> 4) * d) + m);
      }
      return;
    }
    case 'q5_0':
    case 'q5_1': {
      const has_m = t === 'q5_1';
      const d = hf(b, o), m = has_m ? hf(b, o + 2) : 0;
      const ho = o + (has_m ? 4 : 2);
      const qh = (b[ho] | (b[ho + 1] << 8) | (b[ho + 2] << 16) | (b[ho + 3] << 24)) >>> 0;
      for (let j = 0; j < 16; j++) {
        const x0 = (b[ho + 4 + j] & 0xf) | (((qh >>> j) & 1) << 4);
        const x1 = (b[ho + 4 + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4);
        if (has_m) {
          out[base + j] = f(f(x0 * d) + m);
          out[base + j + 16] = f(f(x1 * d) + m);
        } else {
          out[base + j] = f((x0 - 16) * d);
          out[base + j + 16] = f((x1 - 16) * d);
        }
      }
      return;
    }
    case 'q8_0':
    case 'q8_1': {
      const d = hf(b, o);
      const qo = o + (t === 'q8_1' ? 4 : 2);
      for (let j = 0; j < 32; j++) out[base + j] = f(i8(b, qo + j) * d);
      return;
    }
    case 'q8_k': {
      const d = f32at(b, o);
      for (let j = 0; j < 256; j++) out[base + j] = f(d * i8(b, o + 4 + j));
      return;
    }
    case 'q2_k': {
      // scales[16] qs[64] d dmin
      const d = hf(b, o + 80), mn = hf(b, o + 82);
      let y = base, is = 0;
      for (let n = 0; n < 2; n++) {
        const q = o + 16 + 32 * n;
        for (let shift = 0; shift < 8; shift += 2) {
          for (let half = 0; half < 2; half++) {
            const sc = b[o + is++];
            const dl = f(d * (sc & 0xf)), ml = f(mn * (sc >> 4));
            for (let l = 0; l < 16; l++) out[y++] = f(f(dl * ((b[q + 16 * half + l] >> shift) & 3)) - ml);
          }
        }
      }
      return;
    }
    case 'q3_k': {
      // hmask[32] qs[64] scales[12] d
      const d = hf(b, o + 108);
      const sc = new Int8Array(16);
      const s = o + 96;
      for (let j = 0; j < 16; j++) {
        const lo = j < 8 ? b[s + j] & 0xf : b[s + j - 8] >> 4;
        const hi = (b[s + 8 + (j % 4)] >> (2 * Math.floor(j / 4))) & 3;
        sc[j] = (lo | (hi << 4)) - 32;
      }
      let y = base, is = 0, m = 1;
      for (let n = 0; n < 2; n++) {
        const q = o + 32 + 32 * n;
        for (let shift = 0; shift < 8; shift += 2) {
          for (let half = 0; half < 2; half++) {
            const dl = f(d * sc[is++]);
            for (let l = 16 * half; l < 16 * half + 16; l++) {
              const v = ((b[q + l] >> shift) & 3) - (b[o + l] & m ? 0 : 4);
              out[y++] = f(dl * v);
            }
          }
          m <<= 1;
        }
      }
      return;
    }
    case 'q4_k':
    case 'q5_k': {
      // d dmin scales[12] (qh[32]) qs[128]
      const five = t === 'q5_k';
      const d = hf(b, o), mn = hf(b, o + 2);
      const qh = o + 16;
      const qs = o + 16 + (five ? 32 : 0);
      let y = base;
      for (let c = 0; c < 4; c++) {
        const [s1, m1] = scaleMinK4(2 * c, b, o + 4);
        const [s2, m2] = scaleMinK4(2 * c + 1, b, o + 4);
        const d1 = f(d * s1), mm1 = f(mn * m1), d2 = f(d * s2), mm2 = f(mn * m2);
        for (let l = 0; l < 32; l++) {
          const h = five ? ((b[qh + l] >> (2 * c)) & 1) << 4 : 0;
          out[y++] = f(f(d1 * ((b[qs + 32 * c + l] & 0xf) + h)) - mm1);
        }
        for (let l = 0; l < 32; l++) {
          const h = five ? ((b[qh + l] >> (2 * c + 1)) & 1) << 4 : 0;
          out[y++] = f(f(d2 * ((b[qs + 32 * c + l] >> 4) + h)) - mm2);
        }
      }
      return;
    }
    case 'q6_k': {
      // ql[128] qh[64] scales[16] d
      const d = hf(b, o + 208);
      for (let n = 0; n < 2; n++) {
        const ql = o + 64 * n, qh = o + 128 + 32 * n, sc = o + 192 + 8 * n, y = base + 128 * n;
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const q1 = ((b[ql + l] & 0xf) | (((b[qh + l] >> 0) & 3) << 4)) - 32;
          const q2 = ((b[ql + l + 32] & 0xf) | (((b[qh + l] >> 2) & 3) << 4)) - 32;
          const q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32;
          const q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32;
          out[y + l] = f(f(d * i8(b, sc + is)) * q1);
          out[y + l + 32] = f(f(d * i8(b, sc + is + 2)) * q2);
          out[y + l + 64] = f(f(d * i8(b, sc + is + 4)) * q3);
          out[y + l + 96] = f(f(d * i8(b, sc + is + 6)) * q4);
        }
      }
      return;
    }
  }
}

/** Decodes rows of K elements (all blocks) of raw GGUF bytes. */
export function decodeBlocks(t: BlockType, bytes: Uint8Array, nElements: number): Float64Array {
  const [qk, bs] = BLOCK[t];
  const out = new Float64Array(nElements);
  for (let i = 0; i < nElements / qk; i++) decodeBlock(t, bytes, i * bs, out, i * qk);
  return out;
}

/** For Q8_1 activations: the stored s (= d * sum(qs), rounded to half) of every block. */
export function q81Sums(bytes: Uint8Array, nElements: number): Float64Array {
  const out = new Float64Array(nElements / 32);
  for (let i = 0; i < out.length; i++) out[i] = hf(bytes, i * 36 + 2);
  return out;
}

/** For Q4_1 / Q5_1 weights: the m of every block. */
export function blockMins(t: 'q4_1' | 'q5_1', bytes: Uint8Array, nElements: number): Float64Array {
  const bs = BLOCK[t][1];
  const out = new Float64Array(nElements / 32);
  for (let i = 0; i < out.length; i++) out[i] = hf(bytes, i * bs + 2);
  return out;
}

// (int8_t)v for a float in range, then llama.cpp's MIN(...)
function truncI8(v: number): number {
  return Math.trunc(v);
}
// C roundf: half away from zero.
function roundf(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** quantize_row_q4_0_ref, byte for byte. */
export function refQuantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  for (let i = 0; i < nb; i++) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i * 32 + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d ? f(1 / d) : 0;
    const h = floatToHalf(d);
    out[i * 18] = h & 0xff;
    out[i * 18 + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      const x0 = f(x[i * 32 + j] * id), x1 = f(x[i * 32 + 16 + j] * id);
      const xi0 = Math.min(15, truncI8(f(x0 + 8.5)));
      const xi1 = Math.min(15, truncI8(f(x1 + 8.5)));
      out[i * 18 + 2 + j] = xi0 | (xi1 << 4);
    }
  }
  return out;
}

/** quantize_row_q8_0_ref, byte for byte. */
export function refQuantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i * 32 + j]));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    const h = floatToHalf(d);
    out[i * 34] = h & 0xff;
    out[i * 34 + 1] = h >> 8;
    for (let j = 0; j < 32; j++) out[i * 34 + 2 + j] = roundf(f(x[i * 32 + j] * id)) & 0xff;
  }
  return out;
}
