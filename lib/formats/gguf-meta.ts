// Typed getters over GGUF metadata with errors that name the file and key.

import * as path from 'path';
import { QuantMoeError } from '../errors';
import { GGUFFile, GGUFTensorInfo, GGUFTypedValue, GGUFValue, GGUFValueType, valueTypeName } from './gguf-types';

/** What the getters need: a file read by readGGUF, or anything with the same fields. */
export interface GGUFMetadataSource {
  readonly path: string;
  readonly metadata: Readonly<Record<string, GGUFValue>>;
  readonly typedMetadata?: Readonly<Record<string, GGUFTypedValue>>;
}

function has(src: GGUFMetadataSource, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(src.metadata, key);
}

function typeOf(src: GGUFMetadataSource, key: string): string {
  const t = src.typedMetadata?.[key];
  if (t === undefined) return typeof src.metadata[key];
  return t.type === GGUFValueType.ARRAY ? `array of ${valueTypeName(t.itemType)}` : valueTypeName(t.type);
}

function missing(src: GGUFMetadataSource, key: string): QuantMoeError {
  return new QuantMoeError('E_FORMAT',
    `${path.basename(src.path)}: metadata key '${key}' is missing; the file was not written for this use or is incomplete (${src.path})`);
}

function wrongType(src: GGUFMetadataSource, key: string, expected: string): QuantMoeError {
  return new QuantMoeError('E_FORMAT',
    `${path.basename(src.path)}: metadata key '${key}' has type ${typeOf(src, key)}, expected ${expected} (${src.path})`);
}

export function hasKey(src: GGUFMetadataSource, key: string): boolean {
  return has(src, key);
}

export function getValue(src: GGUFMetadataSource, key: string): GGUFValue | undefined {
  return has(src, key) ? src.metadata[key] : undefined;
}

export function getString(src: GGUFMetadataSource, key: string, fallback?: string): string {
  if (!has(src, key)) {
    if (fallback !== undefined) return fallback;
    throw missing(src, key);
  }
  const v = src.metadata[key];
  if (typeof v !== 'string') throw wrongType(src, key, 'string');
  return v;
}

export function getOptionalString(src: GGUFMetadataSource, key: string): string | undefined {
  return has(src, key) ? getString(src, key) : undefined;
}

/** Any numeric type; 64-bit values outside the safe integer range are an E_FORMAT error. */
export function getNumber(src: GGUFMetadataSource, key: string, fallback?: number): number {
  if (!has(src, key)) {
    if (fallback !== undefined) return fallback;
    throw missing(src, key);
  }
  const v = src.metadata[key];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') throw wrongType(src, key, 'a number within the safe integer range');
  throw wrongType(src, key, 'number');
}

export function getOptionalNumber(src: GGUFMetadataSource, key: string): number | undefined {
  return has(src, key) ? getNumber(src, key) : undefined;
}

/** A non-negative integer (counts, ids, lengths). */
export function getUint(src: GGUFMetadataSource, key: string, fallback?: number): number {
  const v = getNumber(src, key, fallback);
  if (!Number.isSafeInteger(v) || v < 0) throw wrongType(src, key, 'a non-negative integer');
  return v;
}

export function getOptionalUint(src: GGUFMetadataSource, key: string): number | undefined {
  return has(src, key) ? getUint(src, key) : undefined;
}

export function getBool(src: GGUFMetadataSource, key: string, fallback?: boolean): boolean {
  if (!has(src, key)) {
    if (fallback !== undefined) return fallback;
    throw missing(src, key);
  }
  const v = src.metadata[key];
  if (typeof v !== 'boolean') throw wrongType(src, key, 'bool');
  return v;
}

export function getOptionalBool(src: GGUFMetadataSource, key: string): boolean | undefined {
  return has(src, key) ? getBool(src, key) : undefined;
}

export function getArray(src: GGUFMetadataSource, key: string): readonly GGUFValue[] {
  if (!has(src, key)) throw missing(src, key);
  const v = src.metadata[key];
  if (!Array.isArray(v)) throw wrongType(src, key, 'array');
  return v;
}

export function getStringArray(src: GGUFMetadataSource, key: string): readonly string[] {
  const a = getArray(src, key);
  const t = src.typedMetadata?.[key];
  if (t !== undefined ? (t.type !== GGUFValueType.ARRAY || t.itemType !== GGUFValueType.STRING) : !a.every((x) => typeof x === 'string')) {
    throw wrongType(src, key, 'array of string');
  }
  return a as readonly string[];
}

/** An array of any numeric item type, as numbers. */
export function getNumberArray(src: GGUFMetadataSource, key: string): readonly number[] {
  const a = getArray(src, key);
  for (const x of a) {
    if (typeof x !== 'number') throw wrongType(src, key, 'array of numbers');
  }
  return a as readonly number[];
}

/** Looks a tensor up by name (a Map is built once per file). */
export function findTensor(file: GGUFFile, name: string): GGUFTensorInfo | undefined {
  let index = tensorIndex.get(file);
  if (index === undefined) {
    index = new Map(file.tensors.map((t) => [t.name, t]));
    tensorIndex.set(file, index);
  }
  return index.get(name);
}

/** Like findTensor, but E_FORMAT naming the file and tensor when absent. */
export function requireTensor(file: GGUFFile, name: string): GGUFTensorInfo {
  const t = findTensor(file, name);
  if (t === undefined) {
    throw new QuantMoeError('E_FORMAT', `${path.basename(file.path)}: tensor '${name}' is missing (${file.path})`);
  }
  return t;
}

const tensorIndex = new WeakMap<GGUFFile, Map<string, GGUFTensorInfo>>();
