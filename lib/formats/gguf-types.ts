// GGUF data model (spec: ggml docs/gguf.md). Metadata values come in two views:
//  - `metadata`: plain JS values. 8..32-bit integers and floats are numbers; 64-bit integers
//    (uint64/int64) are numbers when they fit in Number.MAX_SAFE_INTEGER and bigint otherwise;
//    bools are booleans, strings strings, arrays JS arrays (nested arrays nest).
//  - `typedMetadata`: the same values tagged with their GGUF value type, so a file can be read
//    and re-written without changing any type (llama.cpp checks types strictly).

import { QuantMoeError } from '../errors';

export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export const GGUF_MAGIC = 'GGUF';
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;
/** ggml's GGML_MAX_NAME: tensor names must be shorter than this many bytes for llama.cpp. */
export const GGML_MAX_NAME = 64;

export type GGUFScalar = number | bigint | boolean | string;
export type GGUFValue = GGUFScalar | GGUFValue[];

export type GGUFScalarType = Exclude<GGUFValueType, GGUFValueType.ARRAY>;

export interface GGUFTypedScalar {
  readonly type: GGUFScalarType;
  readonly value: GGUFScalar;
}

export interface GGUFTypedArray {
  readonly type: GGUFValueType.ARRAY;
  readonly itemType: GGUFValueType;
  /** Scalars when itemType is a scalar type; GGUFTypedArray items when itemType is ARRAY. */
  readonly value: readonly GGUFScalar[] | readonly GGUFTypedArray[];
}

export type GGUFTypedValue = GGUFTypedScalar | GGUFTypedArray;

export interface GGUFTensorInfo {
  readonly name: string;
  /** GGML type id. */
  readonly type: number;
  readonly typeName: string;
  /** Dimensions as stored: innermost first (ggml's ne[]). */
  readonly ne: readonly number[];
  /** Row-major dimensions, outermost first (ne reversed). */
  readonly shape: readonly number[];
  readonly nElements: number;
  /** Absolute byte offset of the tensor data in the file. */
  readonly offset: number;
  /** Offset relative to the start of the data section, as stored in the file. */
  readonly relativeOffset: number;
  readonly byteSize: number;
}

export interface GGUFFile {
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  readonly alignment: number;
  /** Absolute offset of the (aligned) data section. */
  readonly dataOffset: number;
  readonly metadata: Readonly<Record<string, GGUFValue>>;
  readonly typedMetadata: Readonly<Record<string, GGUFTypedValue>>;
  readonly tensors: readonly GGUFTensorInfo[];
}

// ---- tagged values for the writer -------------------------------------------------------------

const INT_RANGES: Partial<Record<GGUFValueType, readonly [number, number]>> = {
  [GGUFValueType.UINT8]: [0, 0xff],
  [GGUFValueType.INT8]: [-0x80, 0x7f],
  [GGUFValueType.UINT16]: [0, 0xffff],
  [GGUFValueType.INT16]: [-0x8000, 0x7fff],
  [GGUFValueType.UINT32]: [0, 0xffffffff],
  [GGUFValueType.INT32]: [-0x80000000, 0x7fffffff],
};

export function valueTypeName(type: GGUFValueType): string {
  return GGUFValueType[type]?.toLowerCase() ?? `unknown(${String(type)})`;
}

/** Throws E_ARGUMENT when `v` cannot be stored as GGUF scalar type `type`. */
export function checkScalar(type: GGUFScalarType, v: unknown, context: string): GGUFScalar {
  const bad = (why: string): never => {
    throw new QuantMoeError('E_ARGUMENT', `${context}: ${why} (GGUF type ${valueTypeName(type)})`);
  };
  switch (type) {
    case GGUFValueType.STRING:
      if (typeof v !== 'string') bad(`expected a string, got ${typeof v}`);
      return v as string;
    case GGUFValueType.BOOL:
      if (typeof v !== 'boolean') bad(`expected a boolean, got ${typeof v}`);
      return v as boolean;
    case GGUFValueType.FLOAT32:
    case GGUFValueType.FLOAT64:
      if (typeof v !== 'number') bad(`expected a number, got ${typeof v}`);
      return v as number;
    case GGUFValueType.UINT64:
    case GGUFValueType.INT64: {
      let b: bigint;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else return bad(`expected an integer (number or bigint), got ${String(v)}`);
      const lo = type === GGUFValueType.UINT64 ? 0n : -(1n << 63n);
      const hi = type === GGUFValueType.UINT64 ? (1n << 64n) - 1n : (1n << 63n) - 1n;
      if (b < lo || b > hi) bad(`${String(v)} is out of range`);
      return v as number | bigint;
    }
    default: {
      const range = INT_RANGES[type];
      if (range === undefined) return bad('unknown value type');
      if (typeof v !== 'number' || !Number.isInteger(v)) return bad(`expected an integer, got ${String(v)}`);
      if (v < range[0] || v > range[1]) bad(`${v} is out of range [${range[0]}, ${range[1]}]`);
      return v;
    }
  }
}

function scalar(type: GGUFScalarType) {
  return (value: GGUFScalar): GGUFTypedScalar => {
    checkScalar(type, value, 'gguf value');
    return Object.freeze({ type, value });
  };
}

function scalarArray(itemType: GGUFScalarType) {
  return (values: readonly GGUFScalar[] | ArrayLike<number>): GGUFTypedArray => {
    const arr = Array.from(values as ArrayLike<GGUFScalar>);
    arr.forEach((v, i) => checkScalar(itemType, v, `gguf array item ${i}`));
    return Object.freeze({ type: GGUFValueType.ARRAY as const, itemType, value: arr });
  };
}

export const u8 = scalar(GGUFValueType.UINT8);
export const i8 = scalar(GGUFValueType.INT8);
export const u16 = scalar(GGUFValueType.UINT16);
export const i16 = scalar(GGUFValueType.INT16);
export const u32 = scalar(GGUFValueType.UINT32);
export const i32 = scalar(GGUFValueType.INT32);
export const f32 = scalar(GGUFValueType.FLOAT32);
export const f64 = scalar(GGUFValueType.FLOAT64);
export const u64 = scalar(GGUFValueType.UINT64);
export const i64 = scalar(GGUFValueType.INT64);
export const bool = scalar(GGUFValueType.BOOL);
export const str = scalar(GGUFValueType.STRING);

export const u8Arr = scalarArray(GGUFValueType.UINT8);
export const i8Arr = scalarArray(GGUFValueType.INT8);
export const u16Arr = scalarArray(GGUFValueType.UINT16);
export const i16Arr = scalarArray(GGUFValueType.INT16);
export const u32Arr = scalarArray(GGUFValueType.UINT32);
export const i32Arr = scalarArray(GGUFValueType.INT32);
export const f32Arr = scalarArray(GGUFValueType.FLOAT32);
export const f64Arr = scalarArray(GGUFValueType.FLOAT64);
export const u64Arr = scalarArray(GGUFValueType.UINT64);
export const i64Arr = scalarArray(GGUFValueType.INT64);
export const boolArr = scalarArray(GGUFValueType.BOOL);
export const strArr = scalarArray(GGUFValueType.STRING);

/** An array of arrays (GGUF allows nesting). */
export function arrArr(items: readonly GGUFTypedArray[]): GGUFTypedArray {
  return Object.freeze({ type: GGUFValueType.ARRAY as const, itemType: GGUFValueType.ARRAY, value: [...items] });
}

export function isTypedValue(v: unknown): v is GGUFTypedValue {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as { type?: unknown; value?: unknown };
  return typeof o.type === 'number' && o.type in GGUFValueType && 'value' in o;
}

/** Input accepted for one metadata entry by the writer. */
export type GGUFMetadataInput =
  | GGUFTypedValue
  | string
  | boolean
  | number
  | bigint
  | readonly string[]
  | readonly number[]
  | readonly boolean[];

/**
 * The GGUF type used when a plain JS value is given to the writer:
 * string → string; boolean → bool; integer number in [0, 2^32) → uint32; negative integer in
 * int32 range → int32; other safe integers → int64 (negative) / uint64; non-integer number →
 * float32; bigint → int64 (negative) / uint64. Arrays: string[] → string array; boolean[] →
 * bool array; number[] → int32 array when every item is an int32, otherwise float32 array.
 * An integral float (e.g. rope.freq_base = 10000) must be tagged with f32() explicitly.
 */
export function inferTyped(v: GGUFMetadataInput, context: string): GGUFTypedValue {
  if (isTypedValue(v)) return v;
  if (typeof v === 'string') return { type: GGUFValueType.STRING, value: v };
  if (typeof v === 'boolean') return { type: GGUFValueType.BOOL, value: v };
  if (typeof v === 'bigint') return { type: v < 0n ? GGUFValueType.INT64 : GGUFValueType.UINT64, value: v };
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || !Number.isInteger(v)) return { type: GGUFValueType.FLOAT32, value: v };
    if (v >= 0 && v <= 0xffffffff) return { type: GGUFValueType.UINT32, value: v };
    if (v < 0 && v >= -0x80000000) return { type: GGUFValueType.INT32, value: v };
    if (!Number.isSafeInteger(v)) {
      throw new QuantMoeError('E_ARGUMENT', `${context}: ${v} is not a safe integer; pass a bigint with gguf.u64()/i64()`);
    }
    return { type: v < 0 ? GGUFValueType.INT64 : GGUFValueType.UINT64, value: v };
  }
  if (Array.isArray(v)) {
    const arr = v as readonly unknown[];
    if (arr.every((x) => typeof x === 'string')) return { type: GGUFValueType.ARRAY, itemType: GGUFValueType.STRING, value: arr as string[] };
    if (arr.every((x) => typeof x === 'boolean')) return { type: GGUFValueType.ARRAY, itemType: GGUFValueType.BOOL, value: arr as boolean[] };
    if (arr.every((x) => typeof x === 'number')) {
      const nums = arr as number[];
      const allI32 = nums.every((x) => Number.isInteger(x) && x >= -0x80000000 && x <= 0x7fffffff);
      return { type: GGUFValueType.ARRAY, itemType: allI32 ? GGUFValueType.INT32 : GGUFValueType.FLOAT32, value: nums };
    }
    throw new QuantMoeError('E_ARGUMENT',
      `${context}: arrays must hold only strings, only booleans or only numbers; tag mixed or nested arrays explicitly`);
  }
  throw new QuantMoeError('E_ARGUMENT', `${context}: unsupported metadata value of type ${typeof v}`);
}
