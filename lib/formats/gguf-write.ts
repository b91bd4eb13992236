// GGUF v3 writer. The header (metadata + tensor infos) is built in memory (it is small: the
// largest part is a tokenizer vocabulary); tensor data is streamed to disk tensor by tensor, each
// padded to the alignment, exactly as ggml's gguf writer lays it out. The file is written under a
// temporary name and renamed into place only when complete.

import { promises as fsp } from 'fs';
import * as path from 'path';
import { abortError, QuantMoeError } from '../errors';
import { ioError, writeFully } from './file-reader';
import { GGMLTypeName, requireGGMLType, tensorByteSize } from './ggml-types';
import { alignUp } from './gguf-read';
import {
  checkScalar, GGML_MAX_NAME, GGUF_DEFAULT_ALIGNMENT, GGUF_MAX_DIMS, GGUFMetadataInput, GGUFTypedArray,
  GGUFTypedValue, GGUFValueType, inferTyped, u32, valueTypeName,
} from './gguf-types';

/** Tensor bytes: in memory, produced on demand, or streamed in chunks. */
export type GGUFTensorData =
  | Uint8Array
  | (() => Uint8Array | Promise<Uint8Array>)
  | AsyncIterable<Uint8Array>;

export interface GGUFWriteTensor {
  readonly name: string;
  /** GGML type id or name ('Q4_K', ...). */
  readonly type: number | GGMLTypeName;
  /** Row-major shape, outermost first (stored reversed as ne[]). */
  readonly shape: readonly number[];
  readonly data: GGUFTensorData;
}

export interface GGUFWriteInput {
  readonly metadata?: Readonly<Record<string, GGUFMetadataInput>>;
  readonly tensors?: readonly GGUFWriteTensor[];
  /** Data alignment; written as general.alignment (uint32) when not the default 32. */
  readonly alignment?: number;
}

export interface GGUFWriteProgress {
  readonly bytesWritten: number;
  readonly totalBytes: number;
  readonly tensorsWritten: number;
  readonly tensorCount: number;
  readonly tensor?: string;
}

export interface GGUFWriteOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: GGUFWriteProgress) => void;
}

export interface GGUFWriteResult {
  readonly path: string;
  readonly fileSize: number;
  readonly dataOffset: number;
}

const WRITE_CHUNK = 16 << 20;

class HeaderBuilder {
  private buf = Buffer.alloc(1 << 16);
  len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): void { this.ensure(1); this.buf.writeUInt8(v, this.len); this.len += 1; }
  i8(v: number): void { this.ensure(1); this.buf.writeInt8(v, this.len); this.len += 1; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16LE(v, this.len); this.len += 2; }
  i16(v: number): void { this.ensure(2); this.buf.writeInt16LE(v, this.len); this.len += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v, this.len); this.len += 4; }
  i32(v: number): void { this.ensure(4); this.buf.writeInt32LE(v, this.len); this.len += 4; }
  f32(v: number): void { this.ensure(4); this.buf.writeFloatLE(v, this.len); this.len += 4; }
  f64(v: number): void { this.ensure(8); this.buf.writeDoubleLE(v, this.len); this.len += 8; }
  u64(v: number | bigint): void { this.ensure(8); this.buf.writeBigUInt64LE(BigInt(v), this.len); this.len += 8; }
  i64(v: number | bigint): void { this.ensure(8); this.buf.writeBigInt64LE(BigInt(v), this.len); this.len += 8; }

  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    this.ensure(n);
    this.buf.write(s, this.len, 'utf8');
    this.len += n;
  }

  pad(alignment: number): void {
    const n = alignUp(this.len, alignment) - this.len;
    this.ensure(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }

  bytes(): Buffer { return this.buf.subarray(0, this.len); }
}

function writeScalar(h: HeaderBuilder, type: GGUFValueType, v: unknown, context: string): void {
  if (type === GGUFValueType.ARRAY) throw new QuantMoeError('E_ARGUMENT', `${context}: nested array item is not tagged`);
  const x = checkScalar(type, v, context);
  switch (type) {
    case GGUFValueType.UINT8: h.u8(x as number); break;
    case GGUFValueType.INT8: h.i8(x as number); break;
    case GGUFValueType.UINT16: h.u16(x as number); break;
    case GGUFValueType.INT16: h.i16(x as number); break;
    case GGUFValueType.UINT32: h.u32(x as number); break;
    case GGUFValueType.INT32: h.i32(x as number); break;
    case GGUFValueType.FLOAT32: h.f32(x as number); break;
    case GGUFValueType.FLOAT64: h.f64(x as number); break;
    case GGUFValueType.UINT64: h.u64(x as number | bigint); break;
    case GGUFValueType.INT64: h.i64(x as number | bigint); break;
    case GGUFValueType.BOOL: h.u8(x ? 1 : 0); break;
    case GGUFValueType.STRING: h.string(x as string); break;
    default: throw new QuantMoeError('E_ARGUMENT', `${context}: unknown GGUF value type ${String(type)}`);
  }
}

function writeValue(h: HeaderBuilder, v: GGUFTypedValue, context: string, depth = 0): void {
  if (v.type !== GGUFValueType.ARRAY) {
    writeScalar(h, v.type, v.value, context);
    return;
  }
  const arr = v as GGUFTypedArray;
  if (!(arr.itemType in GGUFValueType)) {
    throw new QuantMoeError('E_ARGUMENT', `${context}: unknown array item type ${String(arr.itemType)}`);
  }
  if (!Array.isArray(arr.value)) throw new QuantMoeError('E_ARGUMENT', `${context}: array value must be an array`);
  if (depth > 8) throw new QuantMoeError('E_ARGUMENT', `${context}: arrays nested too deeply`);
  h.u32(arr.itemType);
  h.u64(arr.value.length);
  if (arr.itemType === GGUFValueType.ARRAY) {
    (arr.value as readonly GGUFTypedArray[]).forEach((item, i) => {
      if (typeof item !== 'object' || item === null || item.type !== GGUFValueType.ARRAY) {
        throw new QuantMoeError('E_ARGUMENT', `${context}[${i}]: items of an array of arrays must be tagged arrays (gguf.strArr(...), ...)`);
      }
      writeValue(h, item, `${context}[${i}]`, depth + 1);
    });
  } else {
    const t = arr.itemType;
    (arr.value as readonly unknown[]).forEach((item, i) => writeScalar(h, t, item, `${context}[${i}]`));
  }
}

interface PlannedTensor {
  readonly name: string;
  readonly typeId: number;
  readonly ne: readonly number[];
  readonly byteSize: number;
  readonly rel: number;
  readonly data: GGUFTensorData;
}

function resolveAlignment(input: GGUFWriteInput, metadata: Record<string, GGUFTypedValue>): number {
  const existing = metadata['general.alignment'];
  let a = input.alignment;
  if (existing !== undefined) {
    if (existing.type !== GGUFValueType.UINT32 || typeof existing.value !== 'number') {
      throw new QuantMoeError('E_ARGUMENT', `metadata general.alignment must be a uint32 (gguf.u32(n)), got ${valueTypeName(existing.type)}`);
    }
    if (a !== undefined && a !== existing.value) {
      throw new QuantMoeError('E_ARGUMENT', `alignment ${a} contradicts metadata general.alignment ${existing.value}`);
    }
    a = existing.value;
  }
  a ??= GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(a) || a <= 0 || a > 0x40000000 || (a & (a - 1)) !== 0) {
    throw new QuantMoeError('E_ARGUMENT', `alignment ${String(a)} must be a power of two`);
  }
  if (a !== GGUF_DEFAULT_ALIGNMENT && existing === undefined) metadata['general.alignment'] = u32(a);
  return a;
}

function planTensors(tensors: readonly GGUFWriteTensor[], alignment: number): PlannedTensor[] {
  const names = new Set<string>();
  let rel = 0;
  return tensors.map((t, i) => {
    if (typeof t !== 'object' || t === null) throw new QuantMoeError('E_ARGUMENT', `tensors[${i}] must be an object`);
    const name = t.name;
    if (typeof name !== 'string' || name.length === 0) throw new QuantMoeError('E_ARGUMENT', `tensors[${i}].name must be a non-empty string`);
    if (Buffer.byteLength(name, 'utf8') >= GGML_MAX_NAME) {
      throw new QuantMoeError('E_ARGUMENT', `tensor '${name}': names must be shorter than ${GGML_MAX_NAME} bytes for llama.cpp`);
    }
    if (names.has(name)) throw new QuantMoeError('E_ARGUMENT', `duplicate tensor name '${name}'`);
    names.add(name);
    const info = requireGGMLType(t.type, `tensor '${name}'`);
    if (!Array.isArray(t.shape) || t.shape.length === 0 || t.shape.length > GGUF_MAX_DIMS) {
      throw new QuantMoeError('E_SHAPE', `tensor '${name}': shape must have 1 to ${GGUF_MAX_DIMS} dimensions`);
    }
    const byteSize = tensorByteSize(info.id, t.shape, `tensor '${name}'`);
    const d = t.data;
    const isChunks = typeof d === 'object' && d !== null && Symbol.asyncIterator in d;
    if (!(d instanceof Uint8Array) && typeof d !== 'function' && !isChunks) {
      throw new QuantMoeError('E_ARGUMENT', `tensor '${name}': data must be a Uint8Array, a function returning one, or an async iterable of chunks`);
    }
    if (d instanceof Uint8Array && d.byteLength !== byteSize) {
      throw new QuantMoeError('E_SHAPE',
        `tensor '${name}': data has ${d.byteLength} bytes but ${info.name} [${t.shape.join(', ')}] takes ${byteSize}`);
    }
    const planned = { name, typeId: info.id, ne: [...t.shape].reverse(), byteSize, rel, data: d };
    rel += alignUp(byteSize, alignment);
    return planned;
  });
}

/**
 * Writes a GGUF v3 file. Metadata values may be tagged (gguf.u32(5), gguf.f32(1e-6),
 * gguf.strArr([...]) ...) or plain JS values, typed as described at inferTyped().
 * Errors: E_ARGUMENT (bad metadata or tensor list), E_SHAPE (data size ≠ type × shape),
 * E_UNSUPPORTED (unknown type), E_ABORTED, E_IO. A partial file never replaces `file`.
 */
export async function writeGGUF(file: string, input: GGUFWriteInput, options: GGUFWriteOptions = {}): Promise<GGUFWriteResult> {
  const { signal, onProgress } = options;
  if (signal?.aborted) throw abortError(`writeGGUF(${path.basename(file)})`);
  const metadata: Record<string, GGUFTypedValue> = Object.create(null) as Record<string, GGUFTypedValue>;
  for (const [key, v] of Object.entries(input.metadata ?? {})) {
    if (key.length === 0 || Buffer.byteLength(key) > 65535) throw new QuantMoeError('E_ARGUMENT', `metadata key '${key}' must be 1..65535 bytes`);
    metadata[key] = inferTyped(v, `metadata '${key}'`);
  }
  const alignment = resolveAlignment(input, metadata);
  const planned = planTensors(input.tensors ?? [], alignment);

  const h = new HeaderBuilder();
  h.u8(0x47); h.u8(0x47); h.u8(0x55); h.u8(0x46); // "GGUF"
  h.u32(3);
  h.u64(planned.length);
  h.u64(Object.keys(metadata).length);
  for (const [key, v] of Object.entries(metadata)) {
    h.string(key);
    h.u32(v.type);
    writeValue(h, v, `metadata '${key}'`);
  }
  for (const t of planned) {
    h.string(t.name);
    h.u32(t.ne.length);
    for (const d of t.ne) h.u64(d);
    h.u32(t.typeId);
    h.u64(t.rel);
  }
  h.pad(alignment);
  const dataOffset = h.len;
  const dataBytes = planned.reduce((s, t) => s + alignUp(t.byteSize, alignment), 0);
  const totalBytes = dataOffset + dataBytes;

  const tmp = `${file}.partial-${process.pid}-${Date.now().toString(36)}`;
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(tmp, 'w');
  } catch (e) {
    throw ioError(file, 'create', e);
  }
  let ok = false;
  try {
    let pos = 0;
    const write = async (bytes: Uint8Array): Promise<void> => {
      try {
        await writeFully(fh, bytes, pos);
      } catch (e) {
        throw ioError(file, 'write', e);
      }
      pos += bytes.length;
    };
    await write(h.bytes());
    const zeros = new Uint8Array(alignment);
    for (let i = 0; i < planned.length; i++) {
      const t = planned[i];
      const start = pos;
      for await (const chunk of tensorChunks(t)) {
        if (signal?.aborted) throw abortError(`writeGGUF(${path.basename(file)})`);
        if (pos - start + chunk.byteLength > t.byteSize) {
          throw new QuantMoeError('E_SHAPE', `tensor '${t.name}': data source produced more than the ${t.byteSize} bytes its type and shape take`);
        }
        await write(chunk);
        onProgress?.({ bytesWritten: pos, totalBytes, tensorsWritten: i, tensorCount: planned.length, tensor: t.name });
      }
      if (pos - start !== t.byteSize) {
        throw new QuantMoeError('E_SHAPE', `tensor '${t.name}': data source produced ${pos - start} bytes, expected ${t.byteSize}`);
      }
      const padding = alignUp(t.byteSize, alignment) - t.byteSize;
      if (padding > 0) await write(zeros.subarray(0, padding));
      onProgress?.({ bytesWritten: pos, totalBytes, tensorsWritten: i + 1, tensorCount: planned.length, tensor: t.name });
    }
    await fh.close();
    await fsp.rename(tmp, file).catch((e: unknown) => { throw ioError(file, 'rename into place', e); });
    ok = true;
    return { path: file, fileSize: pos, dataOffset };
  } finally {
    if (!ok) {
      await fh.close().catch(() => undefined);
      await fsp.unlink(tmp).catch(() => undefined);
    }
  }
}

async function* tensorChunks(t: PlannedTensor): AsyncGenerator<Uint8Array> {
  let d = t.data;
  if (typeof d === 'function') {
    d = await d();
    if (!(d instanceof Uint8Array)) {
      throw new QuantMoeError('E_ARGUMENT', `tensor '${t.name}': data function must return a Uint8Array`);
    }
    if (d.byteLength !== t.byteSize) {
      throw new QuantMoeError('E_SHAPE', `tensor '${t.name}': data has ${d.byteLength} bytes, expected ${t.byteSize}`);
    }
  }
  if (d instanceof Uint8Array) {
    for (let off = 0; off < d.byteLength; off += WRITE_CHUNK) {
      yield d.subarray(off, Math.min(d.byteLength, off + WRITE_CHUNK));
    }
    return;
  }
  for await (const chunk of d) {
    if (!(chunk instanceof Uint8Array)) {
      throw new QuantMoeError('E_ARGUMENT', `tensor '${t.name}': data chunks must be Uint8Arrays`);
    }
    yield chunk;
  }
}
