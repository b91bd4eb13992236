// safetensors reader: single files and sharded checkpoints. Only headers are read.

import { promises as fsp } from 'fs';
import * as path from 'path';
import { QuantMoeError } from '../errors';
import { ioError, openForRead, readExactly } from './file-reader';
import {
  isSafetensorsDtype, SAFETENSORS_DTYPE_SIZE, SAFETENSORS_FLOAT_DTYPES, SafetensorsCheckpoint, SafetensorsFile,
  SafetensorsTensorInfo,
} from './safetensors-types';

/** The safetensors library refuses headers above 100 MB. */
const MAX_HEADER = 100_000_000;
const INDEX_NAME = 'model.safetensors.index.json';
const SINGLE_NAME = 'model.safetensors';

function fail(file: string, msg: string, code: 'E_FORMAT' | 'E_UNSUPPORTED' = 'E_FORMAT'): QuantMoeError {
  return new QuantMoeError(code, `${path.basename(file)}: ${msg} (${file})`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads and validates one .safetensors file header. Errors: E_IO, E_FORMAT, E_UNSUPPORTED. */
export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  const { fh, size } = await openForRead(file);
  let header: Buffer;
  let headerSize: number;
  try {
    if (size < 8) throw fail(file, `file of ${size} bytes is too small to be a safetensors file`);
    const len = (await readExactly(fh, file, 0, 8, 'header length')).readBigUInt64LE(0);
    if (len > BigInt(size - 8)) {
      throw fail(file, `header length ${len} runs past the end of the ${size}-byte file (not a safetensors file, or truncated)`);
    }
    if (len > BigInt(MAX_HEADER)) throw fail(file, `header length ${len} is larger than the 100 MB limit`);
    headerSize = Number(len);
    header = await readExactly(fh, file, 8, headerSize, 'JSON header');
  } finally {
    await fh.close().catch(() => undefined);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(header));
  } catch (e) {
    throw fail(file, `header is not valid UTF-8 JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isPlainObject(json)) throw fail(file, 'header JSON must be an object');
  return parseHeader(file, size, headerSize, json);
}

function parseHeader(file: string, size: number, headerSize: number, json: Record<string, unknown>): SafetensorsFile {
  const dataOffset = 8 + headerSize;
  const dataSize = size - dataOffset;
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (isPlainObject(entry)) {
        for (const [k, v] of Object.entries(entry)) if (typeof v === 'string') metadata[k] = v;
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (!isPlainObject(entry)) throw fail(file, `${where}: entry must be an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offs } = entry;
    if (typeof dtype !== 'string') throw fail(file, `${where}: dtype must be a string`);
    if (!isSafetensorsDtype(dtype)) {
      throw fail(file, `${where}: dtype ${dtype} is not supported (supported: ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')})`, 'E_UNSUPPORTED');
    }
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw fail(file, `${where}: shape must be an array of non-negative integers`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
      throw fail(file, `${where}: data_offsets must be two non-negative integers [begin, end]`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) throw fail(file, `${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataSize) {
      throw fail(file, `${where}: data_offsets [${begin}, ${end}] lie past the ${dataSize}-byte data buffer; the file is truncated or corrupt`);
    }
    let nElements = 1;
    for (const d of shape as number[]) nElements *= d;
    const expected = nElements * SAFETENSORS_DTYPE_SIZE[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      throw fail(file, `${where}: ${dtype} [${(shape as number[]).join(', ')}] needs ${expected} bytes but data_offsets span ${end - begin}`);
    }
    tensors.push(Object.freeze({
      name, dtype, shape: Object.freeze([...(shape as number[])]), nElements, file,
      offset: dataOffset + begin, byteSize: end - begin,
    }));
  }
  const sorted = tensors.filter((t) => t.byteSize > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].byteSize) {
      throw fail(file, `tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
    }
  }
  return Object.freeze({ path: file, fileSize: size, headerSize, dataOffset, metadata, tensors: Object.freeze(tensors) });
}

/** E_UNSUPPORTED naming the tensor unless its dtype is F32, F16 or BF16. */
export function requireFloatDtype(t: SafetensorsTensorInfo): void {
  if (!SAFETENSORS_FLOAT_DTYPES.includes(t.dtype)) {
    throw new QuantMoeError('E_UNSUPPORTED',
      `${path.basename(t.file)}: tensor '${t.name}' has dtype ${t.dtype}; only F32, F16 and BF16 weights are supported here`);
  }
}

async function statKind(p: string): Promise<'file' | 'dir' | 'none'> {
  try {
    const st = await fsp.stat(p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'none';
  } catch {
    return 'none';
  }
}

/**
 * Reads a checkpoint: a .safetensors file, a *.safetensors.index.json, or a folder holding either
 * (model.safetensors.index.json preferred, then model.safetensors, then a lone *.safetensors).
 */
export async function readSafetensorsCheckpoint(target: string): Promise<SafetensorsCheckpoint> {
  const kind = await statKind(target);
  if (kind === 'none') throw new QuantMoeError('E_IO', `cannot open ${target}: no such file or directory`);
  if (kind === 'file') {
    return target.endsWith('.json') ? readSharded(target) : readSingle(target);
  }
  let names: string[];
  try {
    names = await fsp.readdir(target);
  } catch (e) {
    throw ioError(target, 'list', e);
  }
  const indexes = names.filter((n) => n.endsWith('.safetensors.index.json')).sort();
  if (names.includes(INDEX_NAME)) return readSharded(path.join(target, INDEX_NAME));
  if (indexes.length === 1) return readSharded(path.join(target, indexes[0]));
  if (names.includes(SINGLE_NAME)) return readSingle(path.join(target, SINGLE_NAME));
  const singles = names.filter((n) => n.endsWith('.safetensors'));
  if (singles.length === 1) return readSingle(path.join(target, singles[0]));
  const hint = names.some((n) => n.endsWith('.bin') || n.endsWith('.pt'))
    ? '; PyTorch .bin checkpoints are not supported: re-save with safetensors (save_pretrained(..., safe_serialization=True))'
    : '';
  throw new QuantMoeError('E_FORMAT',
    `${target}: no safetensors weights found (expected ${INDEX_NAME} or ${SINGLE_NAME})${hint}`);
}

async function readSingle(file: string): Promise<SafetensorsCheckpoint> {
  const f = await readSafetensors(file);
  return Object.freeze({ dir: path.dirname(file), files: [file], tensors: f.tensors, metadata: f.metadata });
}

async function readSharded(indexFile: string): Promise<SafetensorsCheckpoint> {
  const dir = path.dirname(indexFile);
  let text: string;
  try {
    text = await fsp.readFile(indexFile, 'utf8');
  } catch (e) {
    throw ioError(indexFile, 'read', e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail(indexFile, `invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isPlainObject(json) || !isPlainObject(json.weight_map)) {
    throw fail(indexFile, 'index must be an object with a "weight_map" object');
  }
  const weightMap = json.weight_map;
  const shardNames: string[] = [];
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard.length === 0 || shard.includes('/') || shard.includes('\\') || shard === '..' || shard === '.') {
      throw fail(indexFile, `weight_map entry for tensor '${tensor}' must be a file name in the same folder, got ${JSON.stringify(shard)}`);
    }
    if (!shardNames.includes(shard)) shardNames.push(shard);
  }
  shardNames.sort();
  const files = shardNames.map((n) => path.join(dir, n));
  const shards: SafetensorsFile[] = [];
  for (const f of files) {
    if ((await statKind(f)) !== 'file') {
      throw fail(indexFile, `shard ${path.basename(f)} listed in weight_map is missing; download all shards`);
    }
    shards.push(await readSafetensors(f));
  }
  const seen = new Map<string, SafetensorsTensorInfo>();
  for (const s of shards) {
    for (const t of s.tensors) {
      const prev = seen.get(t.name);
      if (prev) {
        throw fail(indexFile, `tensor '${t.name}' appears in both ${path.basename(prev.file)} and ${path.basename(t.file)}`);
      }
      seen.set(t.name, t);
    }
  }
  for (const [tensor, shard] of Object.entries(weightMap)) {
    const t = seen.get(tensor);
    if (t === undefined || path.basename(t.file) !== shard) {
      throw fail(indexFile, `tensor '${tensor}' is listed in shard ${String(shard)} but not stored there`);
    }
  }
  const metadata: Record<string, string | number> = Object.create(null) as Record<string, string | number>;
  if (isPlainObject(json.metadata)) {
    for (const [k, v] of Object.entries(json.metadata)) if (typeof v === 'string' || typeof v === 'number') metadata[k] = v;
  }
  return Object.freeze({ dir, indexFile, files, tensors: Object.freeze([...seen.values()]), metadata });
}
