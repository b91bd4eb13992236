// Test helpers: temp dirs, a seeded RNG and an independent raw GGUF byte builder (written from
// the spec, not from lib/formats, so reader tests do not just mirror the writer).

import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isQuantMoeError, ErrorCode } from '../../lib/errors';

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `quantmoe-${prefix}-`));
}

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(n: number, rand: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

export async function expectCode(p: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  if (!isQuantMoeError(err, code)) {
    throw new Error(`expected QuantMoeError ${code}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }
  if (pattern && !pattern.test(err.message)) throw new Error(`message "${err.message}" does not match ${String(pattern)}`);
}

export function expectCodeSync(f: () => unknown, code: ErrorCode, pattern?: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  if (!isQuantMoeError(err, code)) {
    throw new Error(`expected QuantMoeError ${code}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }
  if (pattern && !pattern.test(err.message)) throw new Error(`message "${err.message}" does not match ${String(pattern)}`);
}

/** Little-endian byte builder. */
export class Bytes {
  private parts: Buffer[] = [];
  get length(): number { return this.parts.reduce((s, p) => s + p.length, 0); }
  raw(b: Uint8Array | number[]): this { this.parts.push(Buffer.from(b)); return this; }
  u8(v: number): this { const b = Buffer.alloc(1); b.writeUInt8(v); return this.raw(b); }
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v); return this.raw(b); }
  i32(v: number): this { const b = Buffer.alloc(4); b.writeInt32LE(v); return this.raw(b); }
  f32(v: number): this { const b = Buffer.alloc(4); b.writeFloatLE(v); return this.raw(b); }
  u64(v: number | bigint): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return this.raw(b); }
  str(s: string): this { const b = Buffer.from(s, 'utf8'); return this.u64(b.length).raw(b); }
  padTo(alignment: number): this {
    const n = (alignment - (this.length % alignment)) % alignment;
    return this.raw(new Uint8Array(n));
  }
  build(): Buffer { return Buffer.concat(this.parts); }
}

export interface RawTensor { name: string; ne: number[]; type: number; offset: number | bigint }

/** A GGUF file from raw parts: kv entries are pre-encoded (key, type, value bytes). */
export function rawGGUF(opts: {
  version?: number;
  tensorCount?: number | bigint;
  kvCount?: number | bigint;
  kvs?: { key: string; type: number; value: (b: Bytes) => void }[];
  tensors?: RawTensor[];
  alignment?: number;
  data?: Uint8Array;
}): Buffer {
  const b = new Bytes().raw(Buffer.from('GGUF', 'latin1')).u32(opts.version ?? 3);
  const kvs = opts.kvs ?? [];
  const tensors = opts.tensors ?? [];
  b.u64(opts.tensorCount ?? tensors.length).u64(opts.kvCount ?? kvs.length);
  for (const kv of kvs) {
    b.str(kv.key).u32(kv.type);
    kv.value(b);
  }
  for (const t of tensors) {
    b.str(t.name).u32(t.ne.length);
    for (const d of t.ne) b.u64(d);
    b.u32(t.type).u64(t.offset);
  }
  b.padTo(opts.alignment ?? 32);
  if (opts.data) b.raw(opts.data);
  return b.build();
}
