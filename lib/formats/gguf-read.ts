// GGUF v2/v3 header reader (layout: ggml docs/gguf.md):
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count × { string key | u32 value_type | value }
//   tensor_count × { string name | u32 n_dims | u64 ne[n_dims] (innermost first) | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32) | data section (tensor offsets are relative to it)
// Strings are u64 length + UTF-8 bytes (no terminator); arrays are u32 item type + u64 count + items.
// Only the header is read, in chunks; tensor data stays on disk.

import * as path from 'path';
import { QuantMoeError } from '../errors';
import { ChunkedReader, openForRead } from './file-reader';
import { requireGGMLType, tensorByteSize } from './ggml-types';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAX_DIMS, GGUFFile, GGUFScalar, GGUFTensorInfo, GGUFTypedArray, GGUFTypedValue,
  GGUFValue, GGUFValueType, valueTypeName,
} from './gguf-types';

/** Longest single string accepted (chat templates and embedded tokenizer.json are a few MB). */
const MAX_STRING_BYTES = 256 * 1024 * 1024;
/** Most items accepted in one metadata array. */
const MAX_ARRAY_ITEMS = 1 << 24;
/** Deepest nesting of arrays accepted. */
const MAX_ARRAY_DEPTH = 8;

const FIXED_SIZE: Partial<Record<GGUFValueType, number>> = {
  [GGUFValueType.UINT8]: 1, [GGUFValueType.INT8]: 1, [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT16]: 2, [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4, [GGUFValueType.INT32]: 4, [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.UINT64]: 8, [GGUFValueType.INT64]: 8, [GGUFValueType.FLOAT64]: 8,
};

function minEncodedSize(type: GGUFValueType): number {
  if (type === GGUFValueType.STRING) return 8;
  if (type === GGUFValueType.ARRAY) return 12;
  return FIXED_SIZE[type] ?? 1;
}

function toPlainInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

class GGUFParser {
  private readonly name: string;

  constructor(private readonly r: ChunkedReader, private readonly file: string) {
    this.name = path.basename(file);
  }

  fail(msg: string, code: 'E_FORMAT' | 'E_UNSUPPORTED' = 'E_FORMAT'): QuantMoeError {
    return new QuantMoeError(code, `${this.name}: ${msg} (${this.file})`);
  }

  async need(n: number, what: string): Promise<void> {
    if (this.r.available < n) await this.r.need(n, what);
  }

  async string(what: string): Promise<string> {
    await this.need(8, what);
    const at = this.r.pos;
    const len = this.r.u64();
    if (len > BigInt(this.r.remaining)) {
      throw this.fail(`${what}: string length ${len} at offset ${at} runs past the end of the file (corrupt or truncated)`);
    }
    if (len > BigInt(MAX_STRING_BYTES)) {
      throw this.fail(`${what}: string length ${len} at offset ${at} is larger than ${MAX_STRING_BYTES} bytes`);
    }
    const n = Number(len);
    await this.need(n, what);
    return this.r.utf8(n);
  }

  /** A string read without awaiting when it is entirely buffered; undefined otherwise. */
  private stringNow(): string | undefined {
    const r = this.r;
    if (r.available < 8) return undefined;
    const len = r.peekU64();
    if (len > BigInt(r.available - 8)) return undefined;
    r.u64();
    return r.utf8(Number(len));
  }

  /** Reads one scalar of a fixed-size type that is already buffered. */
  private scalarNow(type: GGUFValueType, what: string): GGUFScalar {
    const r = this.r;
    switch (type) {
      case GGUFValueType.UINT8: return r.u8();
      case GGUFValueType.INT8: return r.i8();
      case GGUFValueType.UINT16: return r.u16();
      case GGUFValueType.INT16: return r.i16();
      case GGUFValueType.UINT32: return r.u32();
      case GGUFValueType.INT32: return r.i32();
      case GGUFValueType.FLOAT32: return r.f32();
      case GGUFValueType.FLOAT64: return r.f64();
      case GGUFValueType.UINT64: return toPlainInt(r.u64());
      case GGUFValueType.INT64: return toPlainInt(r.i64());
      case GGUFValueType.BOOL: {
        const at = r.pos;
        const b = r.u8();
        if (b > 1) throw this.fail(`${what}: bool value ${b} at offset ${at} is neither 0 nor 1`);
        return b === 1;
      }
      default:
        throw this.fail(`${what}: not a fixed-size value type ${String(type)}`);
    }
  }

  async value(type: GGUFValueType, what: string, depth: number): Promise<{ plain: GGUFValue; typed: GGUFTypedValue }> {
    if (type === GGUFValueType.STRING) {
      const s = await this.string(what);
      return { plain: s, typed: { type, value: s } };
    }
    if (type === GGUFValueType.ARRAY) return this.array(what, depth);
    const size = FIXED_SIZE[type];
    if (size === undefined) throw this.fail(`${what}: unknown value type ${String(type)}`);
    await this.need(size, what);
    const v = this.scalarNow(type, what);
    return { plain: v, typed: { type: type as Exclude<GGUFValueType, GGUFValueType.ARRAY>, value: v } };
  }

  private async array(what: string, depth: number): Promise<{ plain: GGUFValue; typed: GGUFTypedArray }> {
    if (depth >= MAX_ARRAY_DEPTH) throw this.fail(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
    await this.need(12, what);
    const at = this.r.pos;
    const itemType = this.r.u32() as GGUFValueType;
    const count = this.r.u64();
    if (!(itemType in GGUFValueType)) {
      throw this.fail(`${what}: array at offset ${at} has unknown item type ${itemType}`);
    }
    const minSize = minEncodedSize(itemType);
    if (count * BigInt(minSize) > BigInt(this.r.remaining)) {
      throw this.fail(`${what}: array of ${count} ${valueTypeName(itemType)} items at offset ${at} cannot fit in the rest of the file (corrupt or truncated)`);
    }
    if (count > BigInt(MAX_ARRAY_ITEMS)) {
      throw this.fail(`${what}: array of ${count} items is larger than the supported ${MAX_ARRAY_ITEMS}`, 'E_UNSUPPORTED');
    }
    const n = Number(count);
    if (itemType === GGUFValueType.ARRAY) {
      const plain: GGUFValue[] = [];
      const typed: GGUFTypedArray[] = [];
      for (let i = 0; i < n; i++) {
        const v = await this.array(`${what}[${i}]`, depth + 1);
        plain.push(v.plain);
        typed.push(v.typed);
      }
      return { plain, typed: { type: GGUFValueType.ARRAY, itemType, value: typed } };
    }
    const items: GGUFScalar[] = new Array<GGUFScalar>(n);
    if (itemType === GGUFValueType.STRING) {
      for (let i = 0; i < n; i++) items[i] = this.stringNow() ?? await this.string(`${what}[${i}]`);
    } else {
      const size = FIXED_SIZE[itemType] ?? 1;
      const perChunk = Math.max(1, Math.floor((1 << 20) / size));
      for (let i = 0; i < n;) {
        const k = Math.min(perChunk, n - i);
        await this.need(k * size, what);
        for (let j = 0; j < k; j++, i++) items[i] = this.scalarNow(itemType, what);
      }
    }
    return { plain: items, typed: { type: GGUFValueType.ARRAY, itemType, value: items } };
  }
}

/** Reads and validates the header of a GGUF v2/v3 file. Errors: E_IO, E_FORMAT, E_UNSUPPORTED. */
export async function readGGUF(file: string): Promise<GGUFFile> {
  const { fh, size } = await openForRead(file);
  try {
    return await parse(new ChunkedReader(fh, size, file), file, size);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function parse(r: ChunkedReader, file: string, size: number): Promise<GGUFFile> {
  const p = new GGUFParser(r, file);
  if (size < 4) throw p.fail(`file of ${size} bytes is too small to be a GGUF file`);
  await p.need(4, 'magic');
  const magic = r.bytes(4);
  if (magic.toString('latin1') !== 'GGUF') {
    throw p.fail(`not a GGUF file: magic bytes are ${magic.toString('hex')} instead of "GGUF" (47475546)`);
  }
  await p.need(4, 'version');
  const version = r.u32();
  if (version === 1) {
    throw p.fail('GGUF version 1 is not supported; re-convert the model with a current llama.cpp', 'E_UNSUPPORTED');
  }
  if (version !== 2 && version !== 3) {
    const swapped = Buffer.alloc(4);
    swapped.writeUInt32BE(version);
    const be = swapped.readUInt32LE(0);
    if (be === 2 || be === 3) throw p.fail('big-endian GGUF files are not supported', 'E_UNSUPPORTED');
    throw p.fail(`unknown GGUF version ${version} (supported: 2, 3)`);
  }
  await p.need(16, 'tensor and metadata counts');
  const nTensors = r.u64();
  const nKV = r.u64();
  // Every tensor info takes at least 24 bytes and every key/value at least 13.
  if (nTensors * 24n + nKV * 13n > BigInt(r.remaining)) {
    throw p.fail(`header claims ${nTensors} tensors and ${nKV} metadata entries, more than a ${size}-byte file can hold`);
  }

  const metadata: Record<string, GGUFValue> = Object.create(null) as Record<string, GGUFValue>;
  const typedMetadata: Record<string, GGUFTypedValue> = Object.create(null) as Record<string, GGUFTypedValue>;
  for (let i = 0, n = Number(nKV); i < n; i++) {
    const key = await p.string(`metadata key #${i}`);
    if (key in metadata) throw p.fail(`duplicate metadata key '${key}'`);
    await p.need(4, `metadata '${key}' type`);
    const at = r.pos;
    const type = r.u32() as GGUFValueType;
    if (!(type in GGUFValueType)) throw p.fail(`metadata '${key}' has unknown value type ${type} at offset ${at}`);
    const v = await p.value(type, `metadata '${key}'`, 0);
    metadata[key] = v.plain;
    typedMetadata[key] = v.typed;
  }

  const alignment = readAlignment(p, typedMetadata);

  interface RawInfo { name: string; type: number; ne: number[]; rel: bigint }
  const raw: RawInfo[] = [];
  const names = new Set<string>();
  for (let i = 0, n = Number(nTensors); i < n; i++) {
    const name = await p.string(`tensor #${i} name`);
    if (names.has(name)) throw p.fail(`duplicate tensor name '${name}'`);
    names.add(name);
    await p.need(4, `tensor '${name}' n_dims`);
    const nDims = r.u32();
    if (nDims > GGUF_MAX_DIMS) throw p.fail(`tensor '${name}' has ${nDims} dimensions (at most ${GGUF_MAX_DIMS})`);
    await p.need(8 * nDims + 12, `tensor '${name}' info`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = r.u64();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw p.fail(`tensor '${name}' dimension ${d} = ${v} is absurd`);
      ne.push(Number(v));
    }
    const type = r.u32();
    const rel = r.u64();
    raw.push({ name, type, ne, rel });
  }

  const dataOffset = alignUp(r.pos, alignment);
  const tensors: GGUFTensorInfo[] = raw.map(({ name, type, ne, rel }) => {
    const info = requireGGMLType(type, `${path.basename(file)}: tensor '${name}'`);
    const shape = [...ne].reverse();
    let byteSize: number;
    try {
      byteSize = tensorByteSize(type, shape, `tensor '${name}'`);
    } catch (e) {
      if (e instanceof QuantMoeError && e.code === 'E_SHAPE') throw p.fail(e.message);
      throw e;
    }
    if (rel % BigInt(alignment) !== 0n) {
      throw p.fail(`tensor '${name}' data offset ${rel} is not a multiple of the alignment ${alignment}`);
    }
    const abs = BigInt(dataOffset) + rel;
    if (abs + BigInt(byteSize) > BigInt(size)) {
      throw p.fail(`tensor '${name}' data (${byteSize} bytes at offset ${abs}) lies past the end of the ${size}-byte file; the file is truncated or corrupt`);
    }
    const nElements = ne.reduce((a, b) => a * b, 1);
    return Object.freeze({
      name, type, typeName: info.name, ne: Object.freeze(ne), shape: Object.freeze(shape), nElements,
      offset: Number(abs), relativeOffset: Number(rel), byteSize,
    });
  });
  checkOverlaps(p, tensors);

  return Object.freeze({
    path: file, version, fileSize: size, alignment, dataOffset, metadata, typedMetadata,
    tensors: Object.freeze(tensors),
  });
}

function readAlignment(p: GGUFParser, typed: Record<string, GGUFTypedValue>): number {
  const v = typed['general.alignment'];
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const unsigned = [GGUFValueType.UINT8, GGUFValueType.UINT16, GGUFValueType.UINT32, GGUFValueType.UINT64];
  if (!unsigned.includes(v.type) || typeof v.value !== 'number') {
    throw p.fail(`general.alignment must be an unsigned integer (uint32), got ${valueTypeName(v.type)}`);
  }
  const a = v.value;
  if (a <= 0 || a > 0x40000000 || (a & (a - 1)) !== 0) {
    throw p.fail(`general.alignment ${a} is not a power of two`);
  }
  return a;
}

function checkOverlaps(p: GGUFParser, tensors: readonly GGUFTensorInfo[]): void {
  const sorted = tensors.filter((t) => t.byteSize > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.offset < prev.offset + prev.byteSize) {
      throw p.fail(`tensors '${prev.name}' and '${cur.name}' overlap (offsets ${prev.offset}+${prev.byteSize} and ${cur.offset})`);
    }
  }
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
