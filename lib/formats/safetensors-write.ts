// safetensors writer (used for fixtures and converters): header JSON padded with spaces to a
// multiple of 8 bytes (as the reference implementation does), tensors stored contiguously in the
// given order. The sharded writer follows Hugging Face naming: model-00001-of-00003.safetensors
// plus model.safetensors.index.json ({ metadata: { total_size }, weight_map }).

import { promises as fsp } from 'fs';
import * as path from 'path';
import { QuantMoeError } from '../errors';
import { ioError, writeFully } from './file-reader';
import { isSafetensorsDtype, SAFETENSORS_DTYPE_SIZE, SafetensorsDtype } from './safetensors-types';

export interface SafetensorsWriteTensor {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

function validate(tensors: readonly SafetensorsWriteTensor[]): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === '__metadata__') {
      throw new QuantMoeError('E_ARGUMENT', `invalid tensor name ${JSON.stringify(t.name)}`);
    }
    if (names.has(t.name)) throw new QuantMoeError('E_ARGUMENT', `duplicate tensor name '${t.name}'`);
    names.add(t.name);
    if (!isSafetensorsDtype(t.dtype)) throw new QuantMoeError('E_UNSUPPORTED', `tensor '${t.name}': unknown dtype ${String(t.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new QuantMoeError('E_SHAPE', `tensor '${t.name}': shape must be an array of non-negative integers`);
    }
    const bytes = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_SIZE[t.dtype];
    if (!(t.data instanceof Uint8Array) || t.data.byteLength !== bytes) {
      throw new QuantMoeError('E_SHAPE',
        `tensor '${t.name}': ${t.dtype} [${t.shape.join(', ')}] takes ${bytes} bytes, data has ${t.data instanceof Uint8Array ? t.data.byteLength : 'no'} bytes`);
    }
  }
}

/** Writes one .safetensors file. `metadata` becomes `__metadata__` (string values). */
export async function writeSafetensors(file: string, tensors: readonly SafetensorsWriteTensor[],
  metadata?: Readonly<Record<string, string>>): Promise<void> {
  validate(tensors);
  const header = Object.create(null) as Record<string, unknown>; // tolerate a tensor named __proto__
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));

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
    for (const part of [len, json, ...tensors.map((t) => t.data)]) {
      await writeFully(fh, part, pos).catch((e: unknown) => { throw ioError(file, 'write', e); });
      pos += part.byteLength;
    }
    await fh.close();
    await fsp.rename(tmp, file).catch((e: unknown) => { throw ioError(file, 'rename into place', e); });
    ok = true;
  } finally {
    if (!ok) {
      await fh.close().catch(() => undefined);
      await fsp.unlink(tmp).catch(() => undefined);
    }
  }
}

export interface ShardedWriteOptions {
  /** Largest data size of one shard; a tensor bigger than this gets a shard of its own. */
  readonly maxShardBytes: number;
  readonly metadata?: Readonly<Record<string, string>>;
  /** File name stem, default 'model'. */
  readonly baseName?: string;
}

export interface ShardedWriteResult {
  readonly files: readonly string[];
  /** Absent when everything fit into a single `${baseName}.safetensors`. */
  readonly indexFile?: string;
}

/** Writes `tensors` into `dir`, split into shards of at most maxShardBytes, plus the index JSON. */
export async function writeSafetensorsSharded(dir: string, tensors: readonly SafetensorsWriteTensor[],
  options: ShardedWriteOptions): Promise<ShardedWriteResult> {
  validate(tensors);
  const { maxShardBytes, metadata } = options;
  const base = options.baseName ?? 'model';
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes <= 0) {
    throw new QuantMoeError('E_ARGUMENT', `maxShardBytes must be a positive integer, got ${String(maxShardBytes)}`);
  }
  const shards: SafetensorsWriteTensor[][] = [];
  let cur: SafetensorsWriteTensor[] = [];
  let curBytes = 0;
  for (const t of tensors) {
    if (cur.length > 0 && curBytes + t.data.byteLength > maxShardBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += t.data.byteLength;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  await fsp.mkdir(dir, { recursive: true }).catch((e: unknown) => { throw ioError(dir, 'create', e); });

  if (shards.length === 1) {
    const file = path.join(dir, `${base}.safetensors`);
    await writeSafetensors(file, shards[0], metadata);
    return { files: [file] };
  }
  const n = shards.length;
  const pad = (i: number): string => String(i).padStart(5, '0');
  const files: string[] = [];
  const weightMap = Object.create(null) as Record<string, string>;
  for (let i = 0; i < n; i++) {
    const name = `${base}-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    const file = path.join(dir, name);
    await writeSafetensors(file, shards[i], metadata);
    files.push(file);
    for (const t of shards[i]) weightMap[t.name] = name;
  }
  const totalSize = tensors.reduce((s, t) => s + t.data.byteLength, 0);
  const indexFile = path.join(dir, `${base}.safetensors.index.json`);
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  await fsp.writeFile(indexFile, `${JSON.stringify(index, null, 2)}\n`).catch((e: unknown) => { throw ioError(indexFile, 'write', e); });
  return { files, indexFile };
}
