// Convenience helpers over native tensors for users and tests.
import { QuantMoeError } from './errors';
import { native } from './native';
import type { DTypeName, MatmulOptions, Tensor } from './native';

/** A tensor from JS numbers: f32 from a Float32Array, f16/bf16 converted from F32 values. */
export function tensorFromArray(data: Float32Array, shape: number[], dtype: 'f32' | 'f16' | 'bf16' = 'f32'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) {
    throw new QuantMoeError('E_SHAPE', `tensorFromArray: shape [${shape}] has ${n} elements, data has ${data.length}`);
  }
  if (dtype === 'f32') return native().tensorFromData('f32', shape, data);
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) bits[i] = dtype === 'f16' ? f32ToF16(data[i]) : f32ToBf16(data[i]);
  return native().tensorFromData(dtype as DTypeName, shape, bits);
}

/** The values of an f32 tensor (a copy). */
export function tensorToFloat32(t: Tensor): Float32Array {
  if (t.dtype !== 'f32') throw new QuantMoeError('E_DTYPE', `tensorToFloat32 needs an f32 tensor, got ${t.dtype}`);
  return new Float32Array(t.toArrayBuffer());
}

/** y[T,N] = x[T,K] · W[N,K]ᵀ for f32/f16/bf16 weights. */
export function matmul(x: Tensor, w: Tensor, options?: MatmulOptions): Tensor {
  return native().matmul(x, w, options);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half from float, round to nearest even. */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const a = x & 0x7fffffff;
  if (a >= 0x7f800000) return sign | 0x7c00 | (a > 0x7f800000 ? 0x200 : 0);
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    if (a < 0x33000000) return sign;
    const e = a >>> 23;
    const m = (a & 0x7fffff) | 0x800000;
    const shift = 126 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (a >>> 13) - (112 << 10);
  const rem = a & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

export function f32ToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}
