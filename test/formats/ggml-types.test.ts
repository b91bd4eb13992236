import {
  GGML_TYPES, GGMLType, ggmlTypeId, ggmlTypeInfo, ggmlTypeName, rowByteSize, tensorByteSize,
} from '../../lib/formats/ggml-types';
import { expectCodeSync } from './helpers';

describe('ggml types', () => {
  test('ids, block sizes and type sizes match ggml', () => {
    const expected: Record<string, [number, number, number]> = {
      F32: [0, 1, 4], F16: [1, 1, 2], BF16: [30, 1, 2], F64: [28, 1, 8],
      Q4_0: [2, 32, 18], Q4_1: [3, 32, 20], Q5_0: [6, 32, 22], Q5_1: [7, 32, 24],
      Q8_0: [8, 32, 34], Q8_1: [9, 32, 36],
      Q2_K: [10, 256, 84], Q3_K: [11, 256, 110], Q4_K: [12, 256, 144], Q5_K: [13, 256, 176],
      Q6_K: [14, 256, 210], Q8_K: [15, 256, 292],
      I8: [24, 1, 1], I16: [25, 1, 2], I32: [26, 1, 4], I64: [27, 1, 8],
      IQ4_NL: [20, 32, 18], IQ4_XS: [23, 256, 136], MXFP4: [39, 32, 17],
    };
    for (const [name, [id, block, size]] of Object.entries(expected)) {
      const info = ggmlTypeInfo(name);
      expect(info).toBeDefined();
      expect([info?.id, info?.blockSize, info?.typeSize]).toEqual([id, block, size]);
      expect(ggmlTypeId(name)).toBe(id);
      expect(ggmlTypeName(id)).toBe(name);
    }
    expect(GGMLType.Q4_K).toBe(12);
    expect(ggmlTypeInfo('q6_k')?.id).toBe(14);
    expect(new Set(GGML_TYPES.map((t) => t.id)).size).toBe(GGML_TYPES.length);
  });

  test('kernel palette flags', () => {
    for (const n of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K']) {
      expect(ggmlTypeInfo(n)?.kernels).toBe(true);
    }
    expect(ggmlTypeInfo('IQ4_XS')?.kernels).toBe(false);
    expect(ggmlTypeInfo('MXFP4')?.kernels).toBe(false);
  });

  test('tensorByteSize', () => {
    expect(tensorByteSize('F32', [3, 4])).toBe(48);
    expect(tensorByteSize('Q4_0', [2, 64])).toBe(2 * 2 * 18);
    expect(tensorByteSize(GGMLType.Q4_K, [3, 512])).toBe(3 * 2 * 144);
    expect(tensorByteSize('BF16', [])).toBe(2);
    expect(tensorByteSize('Q8_0', [0, 32])).toBe(0);
    expect(rowByteSize('Q6_K', 256)).toBe(210);
    expectCodeSync(() => tensorByteSize('Q4_0', [2, 33]), 'E_SHAPE', /multiple of the Q4_0 block size 32/);
    expectCodeSync(() => tensorByteSize('F32', [2, -1]), 'E_SHAPE');
    expectCodeSync(() => tensorByteSize('F32', [1.5]), 'E_SHAPE');
    expectCodeSync(() => tensorByteSize(99, [4]), 'E_UNSUPPORTED');
    expectCodeSync(() => tensorByteSize('F32', [2 ** 30, 2 ** 30, 2 ** 30]), 'E_SHAPE');
    expectCodeSync(() => ggmlTypeId('Q9_9'), 'E_UNSUPPORTED');
  });
});
