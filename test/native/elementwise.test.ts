import { QuantMoeError } from '../../lib/errors';
import { native } from '../../lib/native';
import { tensorFromArray, tensorToFloat32 } from '../../lib/tensor';
import { Rng, relError, testSeed } from '../helpers/random';

const seed = testSeed();
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuantMoeError);
    return (e as QuantMoeError).code;
  }
  return undefined;
};

describe(`elementwise ops (seed ${seed})`, () => {
  const rng = new Rng(seed);
  const n = 37;
  const a = rng.floats(n);
  const b = rng.floats(n);
  const ta = tensorFromArray(a, [n]);
  const tb = tensorFromArray(b, [n]);

  it('add, scale, addRowBias match float64', () => {
    expect(relError(tensorToFloat32(native().add(ta, tb)), Array.from(a, (v, i) => v + b[i]))).toBeLessThan(1e-7);
    expect(relError(tensorToFloat32(native().scale(ta, 0.37)), Array.from(a, (v) => v * 0.37))).toBeLessThan(1e-7);
    const x = rng.floats(3 * 5);
    const bias = rng.floats(5);
    const tx = tensorFromArray(x, [3, 5]);
    native().addRowBias(tx, tensorFromArray(bias, [5]));
    expect(relError(tensorToFloat32(tx), Array.from(x, (v, i) => v + bias[i % 5]))).toBeLessThan(1e-7);
  });

  it('gated activations match float64 formulas', () => {
    const erf = (x: number) => {
      // Abramowitz-Stegun 7.1.26 is too coarse; integrate numerically (Simpson, 2000 steps).
      const s = Math.sign(x);
      const z = Math.abs(x);
      const m = 2000;
      let acc = 0;
      for (let i = 0; i <= m; i++) {
        const t = (z * i) / m;
        const w = i === 0 || i === m ? 1 : i % 2 ? 4 : 2;
        acc += w * Math.exp(-t * t);
      }
      return (s * (2 / Math.sqrt(Math.PI)) * acc * z) / (3 * m);
    };
    const refs: Record<string, (g: number) => number> = {
      silu: (g) => g / (1 + Math.exp(-g)),
      gelu: (g) => 0.5 * g * (1 + erf(g / Math.SQRT2)),
      gelu_tanh: (g) => 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3))),
    };
    for (const [act, f] of Object.entries(refs)) {
      const y = tensorToFloat32(native().gatedAct(ta, tb, { activation: act as 'silu' }));
      expect(relError(y, Array.from(a, (g, i) => f(g) * b[i]))).toBeLessThan(1e-6);
    }
  });

  it('view and slice share memory', () => {
    const t = tensorFromArray(Float32Array.from({ length: 12 }, (_, i) => i + 1), [4, 3]);
    const v = native().view(t, [2, 6]);
    expect(v.shape).toEqual([2, 6]);
    const s = native().slice(t, 1, 3);
    expect(Array.from(tensorToFloat32(s))).toEqual([4, 5, 6, 7, 8, 9]);
    t.write(new Float32Array(12).fill(2));
    expect(Array.from(tensorToFloat32(s))).toEqual([2, 2, 2, 2, 2, 2]);
    t.dispose(); // views keep the storage alive
    expect(tensorToFloat32(v)[0]).toBe(2);
  });

  it('rejects bad input', () => {
    expect(code(() => native().add(ta, tensorFromArray(new Float32Array(3).fill(1), [3])))).toBe('E_SHAPE');
    expect(code(() => native().add(ta, native().tensorEmpty('f16', [n])))).toBe('E_DTYPE');
    expect(code(() => native().gatedAct(ta, tb, { activation: 'relu' as never }))).toBe('E_ARGUMENT');
    expect(code(() => native().view(ta, [n + 1]))).toBe('E_SHAPE');
    expect(code(() => native().slice(ta, 3, 2))).toBe('E_ARGUMENT');
    expect(code(() => native().slice(ta, 0, n + 1))).toBe('E_ARGUMENT');
    expect(code(() => native().addRowBias(tensorFromArray(a, [n]), tensorFromArray(b.slice(0, 5), [5])))).toBe('E_SHAPE');
  });
});
