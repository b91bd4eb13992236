// GGML tensor types as stored in GGUF files: numeric id (enum ggml_type in ggml.h), elements per
// block and bytes per block (the block structs in ggml-common.h). Note Q8_1 is 36 bytes per block
// in ggml (two fp16 + 32 int8); gguf-py's table still lists the older 40.

import { QuantMoeError } from '../errors';

export type GGMLTypeName =
  | 'F32' | 'F16' | 'BF16' | 'F64'
  | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q8_1'
  | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K'
  | 'I8' | 'I16' | 'I32' | 'I64'
  | 'IQ2_XXS' | 'IQ2_XS' | 'IQ3_XXS' | 'IQ1_S' | 'IQ4_NL' | 'IQ3_S' | 'IQ2_S' | 'IQ4_XS'
  | 'IQ1_M' | 'TQ1_0' | 'TQ2_0' | 'MXFP4';

export interface GGMLTypeInfo {
  readonly id: number;
  readonly name: GGMLTypeName;
  /** Elements per block (1 for plain float / int types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  readonly kind: 'float' | 'int' | 'quant';
  /**
   * True when quantmoe's kernels read weights of this type (the palette of DESIGN.md §2).
   * False for types recognised in files but not (yet) computed on: the IQ/TQ families, MXFP4,
   * the activation-side Q8_1/Q8_K, and the integer types.
   */
  readonly kernels: boolean;
}

const QK_K = 256;

function t(id: number, name: GGMLTypeName, blockSize: number, typeSize: number,
  kind: GGMLTypeInfo['kind'], kernels: boolean): GGMLTypeInfo {
  return Object.freeze({ id, name, blockSize, typeSize, kind, kernels });
}

/** Every type this library recognises, in id order. */
export const GGML_TYPES: readonly GGMLTypeInfo[] = Object.freeze([
  t(0, 'F32', 1, 4, 'float', true),
  t(1, 'F16', 1, 2, 'float', true),
  t(2, 'Q4_0', 32, 2 + 16, 'quant', true),
  t(3, 'Q4_1', 32, 2 + 2 + 16, 'quant', true),
  t(6, 'Q5_0', 32, 2 + 4 + 16, 'quant', true),
  t(7, 'Q5_1', 32, 2 + 2 + 4 + 16, 'quant', true),
  t(8, 'Q8_0', 32, 2 + 32, 'quant', true),
  t(9, 'Q8_1', 32, 2 + 2 + 32, 'quant', false),
  t(10, 'Q2_K', QK_K, 2 + 2 + QK_K / 16 + QK_K / 4, 'quant', true),
  t(11, 'Q3_K', QK_K, 2 + QK_K / 4 + QK_K / 8 + 12, 'quant', true),
  t(12, 'Q4_K', QK_K, 2 + 2 + QK_K / 2 + 12, 'quant', true),
  t(13, 'Q5_K', QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12, 'quant', true),
  t(14, 'Q6_K', QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16, 'quant', true),
  t(15, 'Q8_K', QK_K, 4 + QK_K + QK_K / 8, 'quant', false),
  t(16, 'IQ2_XXS', QK_K, 2 + QK_K / 4, 'quant', false),
  t(17, 'IQ2_XS', QK_K, 2 + QK_K / 4 + QK_K / 32, 'quant', false),
  t(18, 'IQ3_XXS', QK_K, 2 + QK_K / 4 + QK_K / 8, 'quant', false),
  t(19, 'IQ1_S', QK_K, 2 + QK_K / 8 + QK_K / 16, 'quant', false),
  t(20, 'IQ4_NL', 32, 2 + 16, 'quant', false),
  t(21, 'IQ3_S', QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4, 'quant', false),
  t(22, 'IQ2_S', QK_K, 2 + QK_K / 4 + QK_K / 16, 'quant', false),
  t(23, 'IQ4_XS', QK_K, 2 + 2 + QK_K / 2 + QK_K / 64, 'quant', false),
  t(24, 'I8', 1, 1, 'int', false),
  t(25, 'I16', 1, 2, 'int', false),
  t(26, 'I32', 1, 4, 'int', false),
  t(27, 'I64', 1, 8, 'int', false),
  t(28, 'F64', 1, 8, 'float', false),
  t(29, 'IQ1_M', QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, 'quant', false),
  t(30, 'BF16', 1, 2, 'float', true),
  t(34, 'TQ1_0', QK_K, 2 + 4 * 13, 'quant', false),
  t(35, 'TQ2_0', QK_K, 2 + 64, 'quant', false),
  t(39, 'MXFP4', 32, 1 + 16, 'quant', false),
]);

const BY_ID = new Map<number, GGMLTypeInfo>(GGML_TYPES.map((x) => [x.id, x]));
const BY_NAME = new Map<string, GGMLTypeInfo>(GGML_TYPES.map((x) => [x.name, x]));

/** Name → id, e.g. `GGMLType.Q4_K === 12`. */
export const GGMLType: Readonly<Record<GGMLTypeName, number>> = Object.freeze(
  Object.fromEntries(GGML_TYPES.map((x) => [x.name, x.id])) as Record<GGMLTypeName, number>,
);

/** Type info by id or name (case-insensitive), or undefined when not recognised. */
export function ggmlTypeInfo(type: number | string): GGMLTypeInfo | undefined {
  if (typeof type === 'number') return BY_ID.get(type);
  if (typeof type === 'string') return BY_NAME.get(type.toUpperCase());
  return undefined;
}

/** Type info by id or name; throws E_UNSUPPORTED (naming `context`, e.g. a tensor) when unknown. */
export function requireGGMLType(type: number | string, context?: string): GGMLTypeInfo {
  const info = ggmlTypeInfo(type);
  if (info === undefined) {
    const where = context ? `${context}: ` : '';
    throw new QuantMoeError('E_UNSUPPORTED',
      `${where}GGML tensor type ${JSON.stringify(type)} is not recognised; known types: ` +
      `${GGML_TYPES.map((x) => x.name).join(', ')}`);
  }
  return info;
}

export function ggmlTypeId(name: string): number {
  return requireGGMLType(name).id;
}

export function ggmlTypeName(id: number): GGMLTypeName {
  return requireGGMLType(id).name;
}

function checkDims(shape: readonly number[], context: string): void {
  if (!Array.isArray(shape)) {
    throw new QuantMoeError('E_SHAPE', `${context}: shape must be an array of dimensions`);
  }
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new QuantMoeError('E_SHAPE',
        `${context}: shape [${shape.join(', ')}] has an invalid dimension ${String(d)} ` +
        '(dimensions must be non-negative integers)');
    }
  }
}

/** Element count of a shape ([] counts as one element, like a ggml tensor with all ne = 1). */
export function shapeElements(shape: readonly number[], context = 'tensor'): number {
  checkDims(shape, context);
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new QuantMoeError('E_SHAPE', `${context}: shape [${shape.join(', ')}] has too many elements`);
    }
  }
  return n;
}

/**
 * Bytes taken by a tensor of `type` and row-major `shape` (outermost first; the last dimension
 * is the innermost, ggml's ne[0]). Throws E_SHAPE when the innermost dimension is not a multiple
 * of the type's block size, E_UNSUPPORTED for an unknown type.
 */
export function tensorByteSize(type: number | string, shape: readonly number[], context = 'tensor'): number {
  const info = requireGGMLType(type, context);
  const n = shapeElements(shape, context);
  const inner = shape.length > 0 ? shape[shape.length - 1] : 1;
  if (inner % info.blockSize !== 0) {
    throw new QuantMoeError('E_SHAPE',
      `${context}: innermost dimension ${inner} of shape [${shape.join(', ')}] is not a multiple of ` +
      `the ${info.name} block size ${info.blockSize}; pad the rows or pick another type`);
  }
  const bytes = (n / info.blockSize) * info.typeSize;
  if (!Number.isSafeInteger(bytes)) {
    throw new QuantMoeError('E_SHAPE', `${context}: shape [${shape.join(', ')}] is too large`);
  }
  return bytes;
}

/** Bytes in one row of `ne0` elements. */
export function rowByteSize(type: number | string, ne0: number): number {
  return tensorByteSize(type, [ne0]);
}
