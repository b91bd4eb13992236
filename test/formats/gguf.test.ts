import { promises as fsp } from 'fs';
import * as path from 'path';
import { isQuantMoeError } from '../../lib/errors';
import * as gguf from '../../lib/formats/gguf';
import { GGUFValueType } from '../../lib/formats/gguf';
import { tensorByteSize } from '../../lib/formats/ggml-types';
import { Bytes, expectCode, randomBytes, rawGGUF, rng, tempDir } from './helpers';

let dir: string;
beforeAll(async () => { dir = await tempDir('gguf'); });
afterAll(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

const rand = rng(42);
function tensor(name: string, type: string, shape: number[]): gguf.GGUFWriteTensor & { data: Uint8Array } {
  return { name, type: type as gguf.GGUFWriteTensor['type'], shape, data: randomBytes(tensorByteSize(type, shape), rand) };
}

async function readBytes(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, offset);
    return b;
  } finally {
    await fh.close();
  }
}

const metadata = {
  'general.architecture': 'qwen2moe',
  'general.name': 'tiny ünïcödé 中文 🚀',
  'qwen2moe.block_count': gguf.u32(2),
  'qwen2moe.rope.freq_base': gguf.f32(10000),
  'qwen2moe.attention.layer_norm_rms_epsilon': gguf.f32(1e-6),
  'test.u8': gguf.u8(255), 'test.i8': gguf.i8(-128), 'test.u16': gguf.u16(65535), 'test.i16': gguf.i16(-32768),
  'test.i32': gguf.i32(-5), 'test.f64': gguf.f64(Math.PI),
  'test.u64.small': gguf.u64(12345), 'test.u64.big': gguf.u64(2n ** 63n + 7n), 'test.i64': gguf.i64(-(2n ** 62n)),
  'test.bool': true, 'test.plain.int': 7, 'test.plain.float': 0.5, 'test.plain.neg': -3,
  'tokenizer.ggml.tokens': gguf.strArr(['a', 'b', 'Ġhello', '']),
  'tokenizer.ggml.scores': gguf.f32Arr([0, -1.5, -2.25, 0]),
  'tokenizer.ggml.token_type': gguf.i32Arr([1, 1, 1, 3]),
  'test.empty': gguf.strArr([]),
  'test.nested': gguf.arrArr([gguf.i32Arr([1, 2]), gguf.strArr(['x'])]),
  'test.plain.strs': ['p', 'q'], 'test.plain.nums': [1, 2, 3], 'test.plain.floats': [1.5, 2],
};

describe('GGUF round trip', () => {
  test('metadata of every type and tensor bytes survive write → read', async () => {
    const file = path.join(dir, 'rt.gguf');
    const tensors = [
      tensor('token_embd.weight', 'F32', [3, 4]),
      tensor('blk.0.ffn_down_exps.weight', 'Q4_0', [2, 3, 64]),
      tensor('blk.0.attn_q.weight', 'Q8_0', [1, 32]),
      tensor('output_norm.weight', 'F16', [5]),
      tensor('blk.0.ffn_up_exps.weight', 'Q4_K', [2, 256]),
      tensor('bf', 'BF16', [7]),
    ];
    const progress: gguf.GGUFWriteProgress[] = [];
    const res = await gguf.writeGGUF(file, { metadata, tensors }, { onProgress: (p) => progress.push(p) });
    const f = await gguf.readGGUF(file);
    expect(f.version).toBe(3);
    expect(f.fileSize).toBe(res.fileSize);
    expect(f.alignment).toBe(32);
    expect(f.dataOffset % 32).toBe(0);
    expect(f.dataOffset).toBe(res.dataOffset);
    expect(progress.at(-1)?.tensorsWritten).toBe(tensors.length);
    expect(progress.at(-1)?.bytesWritten).toBe(f.fileSize);

    const m = f.metadata;
    expect(m['general.architecture']).toBe('qwen2moe');
    expect(m['general.name']).toBe('tiny ünïcödé 中文 🚀');
    expect(m['qwen2moe.block_count']).toBe(2);
    expect(m['qwen2moe.rope.freq_base']).toBe(10000);
    expect(m['qwen2moe.attention.layer_norm_rms_epsilon']).toBe(Math.fround(1e-6));
    expect([m['test.u8'], m['test.i8'], m['test.u16'], m['test.i16'], m['test.i32']]).toEqual([255, -128, 65535, -32768, -5]);
    expect(m['test.f64']).toBe(Math.PI);
    expect(m['test.u64.small']).toBe(12345);
    expect(m['test.u64.big']).toBe(2n ** 63n + 7n);
    expect(m['test.i64']).toBe(-(2n ** 62n));
    expect(m['test.bool']).toBe(true);
    expect(m['tokenizer.ggml.tokens']).toEqual(['a', 'b', 'Ġhello', '']);
    expect(m['tokenizer.ggml.scores']).toEqual([0, -1.5, -2.25, 0]);
    expect(m['test.empty']).toEqual([]);
    expect(m['test.nested']).toEqual([[1, 2], ['x']]);
    expect(m['test.plain.strs']).toEqual(['p', 'q']);

    const t = f.typedMetadata;
    expect(t['qwen2moe.block_count'].type).toBe(GGUFValueType.UINT32);
    expect(t['qwen2moe.rope.freq_base'].type).toBe(GGUFValueType.FLOAT32);
    expect(t['test.plain.int'].type).toBe(GGUFValueType.UINT32);
    expect(t['test.plain.float'].type).toBe(GGUFValueType.FLOAT32);
    expect(t['test.plain.neg'].type).toBe(GGUFValueType.INT32);
    expect(t['test.u64.small'].type).toBe(GGUFValueType.UINT64);
    const tt = t['tokenizer.ggml.token_type'];
    expect(tt.type === GGUFValueType.ARRAY && tt.itemType).toBe(GGUFValueType.INT32);
    const nums = t['test.plain.nums'];
    expect(nums.type === GGUFValueType.ARRAY && nums.itemType).toBe(GGUFValueType.INT32);
    const floats = t['test.plain.floats'];
    expect(floats.type === GGUFValueType.ARRAY && floats.itemType).toBe(GGUFValueType.FLOAT32);

    expect(f.tensors.map((x) => x.name)).toEqual(tensors.map((x) => x.name));
    for (const [i, info] of f.tensors.entries()) {
      const src = tensors[i];
      expect(info.shape).toEqual(src.shape);
      expect(info.ne).toEqual([...src.shape].reverse());
      expect(info.typeName).toBe(src.type);
      expect(info.byteSize).toBe(src.data.length);
      expect(info.relativeOffset % 32).toBe(0);
      expect(info.offset).toBe(f.dataOffset + info.relativeOffset);
      expect(Buffer.compare(await readBytes(file, info.offset, info.byteSize), Buffer.from(src.data))).toBe(0);
    }
    expect(gguf.requireTensor(f, 'bf').typeName).toBe('BF16');
    expect(gguf.findTensor(f, 'nope')).toBeUndefined();
  });

  test('re-writing typed metadata preserves every type', async () => {
    const a = path.join(dir, 'a.gguf');
    const b = path.join(dir, 'b.gguf');
    await gguf.writeGGUF(a, { metadata });
    const fa = await gguf.readGGUF(a);
    await gguf.writeGGUF(b, { metadata: fa.typedMetadata });
    const fb = await gguf.readGGUF(b);
    expect(fb.typedMetadata).toEqual(fa.typedMetadata);
    expect(await fsp.readFile(b)).toEqual(await fsp.readFile(a));
  });

  test('custom alignment, streamed and lazy tensor data', async () => {
    const file = path.join(dir, 'align.gguf');
    const x = tensor('x', 'F32', [3, 5]);
    const y = tensor('y', 'Q5_K', [1, 256]);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < y.data.length; i += 50) yield y.data.subarray(i, i + 50);
    }
    await gguf.writeGGUF(file, {
      alignment: 64,
      tensors: [{ ...x, data: async () => x.data }, { ...y, data: chunks() }],
    });
    const f = await gguf.readGGUF(file);
    expect(f.alignment).toBe(64);
    expect(f.metadata['general.alignment']).toBe(64);
    expect(f.typedMetadata['general.alignment'].type).toBe(GGUFValueType.UINT32);
    for (const t of f.tensors) expect(t.offset % 64).toBe(0);
    expect(await readBytes(file, f.tensors[1].offset, f.tensors[1].byteSize)).toEqual(Buffer.from(y.data));
  });

  test('typed getters', async () => {
    const file = path.join(dir, 'get.gguf');
    await gguf.writeGGUF(file, { metadata });
    const f = await gguf.readGGUF(file);
    expect(gguf.getString(f, 'general.architecture')).toBe('qwen2moe');
    expect(gguf.getUint(f, 'qwen2moe.block_count')).toBe(2);
    expect(gguf.getNumber(f, 'qwen2moe.rope.freq_base')).toBe(10000);
    expect(gguf.getNumber(f, 'missing.key', 3)).toBe(3);
    expect(gguf.getBool(f, 'test.bool')).toBe(true);
    expect(gguf.getStringArray(f, 'tokenizer.ggml.tokens')).toHaveLength(4);
    expect(gguf.getNumberArray(f, 'tokenizer.ggml.scores')).toHaveLength(4);
    expect(gguf.getOptionalString(f, 'nope')).toBeUndefined();
    const err = (g: () => unknown, re: RegExp): void => {
      try { g(); throw new Error('no throw'); } catch (e) {
        expect(isQuantMoeError(e, 'E_FORMAT')).toBe(true);
        expect((e as Error).message).toMatch(re);
      }
    };
    err(() => gguf.getString(f, 'nope'), /'nope' is missing.*get\.gguf/);
    err(() => gguf.getString(f, 'qwen2moe.block_count'), /has type uint32, expected string/);
    err(() => gguf.getNumber(f, 'test.u64.big'), /safe integer/);
    err(() => gguf.getStringArray(f, 'tokenizer.ggml.scores'), /array of float32, expected array of string/);
    err(() => gguf.getUint(f, 'test.i32'), /non-negative integer/);
  });
});

describe('GGUF writer validation', () => {
  const file = (): string => path.join(dir, `w-${Math.floor(rand() * 1e9)}.gguf`);
  test('data size must match type × shape', async () => {
    await expectCode(gguf.writeGGUF(file(), { tensors: [{ name: 'w', type: 'Q4_0', shape: [2, 32], data: new Uint8Array(35) }] }), 'E_SHAPE', /'w'.*36/);
    await expectCode(gguf.writeGGUF(file(), { tensors: [{ name: 'w', type: 'Q4_0', shape: [2, 33], data: new Uint8Array(36) }] }), 'E_SHAPE', /block size/);
    async function* short(): AsyncGenerator<Uint8Array> { yield new Uint8Array(10); }
    const f = file();
    await expectCode(gguf.writeGGUF(f, { tensors: [{ name: 'w', type: 'F32', shape: [4], data: short() }] }), 'E_SHAPE', /produced 10 bytes, expected 16/);
    await expect(fsp.readdir(dir)).resolves.not.toContain(path.basename(f));
  });
  test('bad names, types, metadata', async () => {
    const data = new Uint8Array(4);
    await expectCode(gguf.writeGGUF(file(), { tensors: [{ name: 'x'.repeat(64), type: 'F32', shape: [1], data }] }), 'E_ARGUMENT', /shorter than 64/);
    await expectCode(gguf.writeGGUF(file(), { tensors: [{ name: 'a', type: 'F32', shape: [1], data }, { name: 'a', type: 'F32', shape: [1], data }] }), 'E_ARGUMENT', /duplicate/);
    await expectCode(gguf.writeGGUF(file(), { tensors: [{ name: 'a', type: 99 as unknown as 'F32', shape: [1], data }] }), 'E_UNSUPPORTED', /'a'/);
    await expectCode(gguf.writeGGUF(file(), { tensors: [{ name: 'a', type: 'F32', shape: [1, 1, 1, 1, 1], data }] }), 'E_SHAPE');
    await expectCode(gguf.writeGGUF(file(), { metadata: { k: gguf.u32(1) }, alignment: 3 }), 'E_ARGUMENT', /power of two/);
    await expectCode(gguf.writeGGUF(file(), { metadata: { 'general.alignment': 64 }, alignment: 32 }), 'E_ARGUMENT', /contradicts/);
    await expectCode(gguf.writeGGUF(file(), { metadata: { k: { type: GGUFValueType.UINT8, value: 300 } } }), 'E_ARGUMENT', /out of range/);
    await expectCode(gguf.writeGGUF(file(), { metadata: { k: [1, 'a'] as unknown as number[] } }), 'E_ARGUMENT');
    expect(() => gguf.u32(-1)).toThrow(/out of range/);
    expect(() => gguf.i32Arr([1, 2 ** 40])).toThrow(/out of range/);
  });
  test('abort leaves no file behind', async () => {
    const f = file();
    const ac = new AbortController();
    const big = tensor('big', 'F32', [64, 1024]);
    const p = gguf.writeGGUF(f, { tensors: [big, { ...big, name: 'big2' }] }, {
      signal: ac.signal,
      onProgress: (pr) => { if (pr.tensorsWritten >= 1) ac.abort(); },
    });
    await expectCode(p, 'E_ABORTED');
    const left = (await fsp.readdir(dir)).filter((n) => n.startsWith(path.basename(f)));
    expect(left).toEqual([]);
  });
});

describe('GGUF reader rejects corrupt files', () => {
  let good: Buffer;
  let dataEnd: number;
  beforeAll(async () => {
    const file = path.join(dir, 'good.gguf');
    await gguf.writeGGUF(file, {
      metadata: { 'general.architecture': 'x', 'a.arr': gguf.strArr(['one', 'two']), 'a.f': gguf.f32Arr([1, 2]) },
      tensors: [tensor('t0', 'F32', [2, 4]), tensor('t1', 'Q8_0', [1, 32])],
    });
    good = await fsp.readFile(file);
    const f = await gguf.readGGUF(file);
    dataEnd = Math.max(...f.tensors.map((t) => t.offset + t.byteSize));
  });

  async function readBuf(buf: Uint8Array, name = `c-${Math.floor(rand() * 1e9)}.gguf`): Promise<gguf.GGUFFile> {
    const file = path.join(dir, name);
    await fsp.writeFile(file, buf);
    try {
      return await gguf.readGGUF(file);
    } finally {
      await fsp.unlink(file);
    }
  }

  test('version 2 files read like version 3', async () => {
    const v2 = Buffer.from(good); v2.writeUInt32LE(2, 4);
    const f = await readBuf(v2);
    expect(f.version).toBe(2);
    expect(f.tensors.map((t) => t.name)).toEqual(['t0', 't1']);
  });

  test('bad magic, versions', async () => {
    const b = Buffer.from(good);
    b[0] = 0x47 ^ 0xff;
    await expectCode(readBuf(b, 'magic.gguf'), 'E_FORMAT', /magic\.gguf.*not a GGUF file/);
    const v1 = Buffer.from(good); v1.writeUInt32LE(1, 4);
    await expectCode(readBuf(v1), 'E_UNSUPPORTED', /version 1/);
    const v9 = Buffer.from(good); v9.writeUInt32LE(9, 4);
    await expectCode(readBuf(v9), 'E_FORMAT', /unknown GGUF version 9/);
    const be = Buffer.from(good); be.writeUInt32BE(3, 4);
    await expectCode(readBuf(be), 'E_UNSUPPORTED', /big-endian/);
    await expectCode(readBuf(new Uint8Array(0)), 'E_FORMAT');
  });

  test('truncation at every offset inside header and data', async () => {
    for (let n = 0; n < dataEnd; n++) {
      await expectCode(readBuf(good.subarray(0, n), 'trunc.gguf'), 'E_FORMAT');
    }
    await expect(readBuf(good.subarray(0, dataEnd))).resolves.toBeDefined();
  });

  test('bogus counts and lengths', async () => {
    await expectCode(readBuf(rawGGUF({ tensorCount: 2n ** 40n })), 'E_FORMAT', /tensors/);
    await expectCode(readBuf(rawGGUF({ kvCount: 2n ** 63n })), 'E_FORMAT');
    const hugeString = new Bytes().raw(Buffer.from('GGUF')).u32(3).u64(0).u64(1).u64(2n ** 62n).raw(new Uint8Array(64)).build();
    await expectCode(readBuf(hugeString), 'E_FORMAT', /string length/);
    const hugeArr = rawGGUF({ kvs: [{ key: 'k', type: GGUFValueType.ARRAY, value: (b) => b.u32(GGUFValueType.UINT32).u64(2n ** 50n) }] });
    await expectCode(readBuf(hugeArr), 'E_FORMAT', /cannot fit/);
    const badItem = rawGGUF({ kvs: [{ key: 'k', type: GGUFValueType.ARRAY, value: (b) => b.u32(77).u64(1) }] });
    await expectCode(readBuf(badItem), 'E_FORMAT', /unknown item type 77/);
    const badType = rawGGUF({ kvs: [{ key: 'k', type: 42, value: () => undefined }] });
    await expectCode(readBuf(badType), 'E_FORMAT', /unknown value type 42/);
    const badBool = rawGGUF({ kvs: [{ key: 'k', type: GGUFValueType.BOOL, value: (b) => b.u8(7) }] });
    await expectCode(readBuf(badBool), 'E_FORMAT', /bool/);
    const dupKey = rawGGUF({ kvs: [{ key: 'k', type: GGUFValueType.UINT8, value: (b) => b.u8(1) }, { key: 'k', type: GGUFValueType.UINT8, value: (b) => b.u8(1) }] });
    await expectCode(readBuf(dupKey), 'E_FORMAT', /duplicate metadata key 'k'/);
    let deep = (b: Bytes): void => { b.u32(GGUFValueType.INT8).u64(0); };
    for (let i = 0; i < 20; i++) { const inner = deep; deep = (b) => { b.u32(GGUFValueType.ARRAY).u64(1); inner(b); }; }
    await expectCode(readBuf(rawGGUF({ kvs: [{ key: 'deep', type: GGUFValueType.ARRAY, value: deep }] })), 'E_FORMAT', /nested/);
    const badAlign = rawGGUF({ kvs: [{ key: 'general.alignment', type: GGUFValueType.UINT32, value: (b) => b.u32(48) }] });
    await expectCode(readBuf(badAlign), 'E_FORMAT', /power of two/);
  });

  test('tensor infos: unknown type, bounds, overlap, alignment, duplicates, dims', async () => {
    const data = new Uint8Array(64);
    const t = (over: Partial<{ name: string; ne: number[]; type: number; offset: number }>) =>
      ({ name: 'w', ne: [4], type: 0, offset: 0, ...over });
    await expectCode(readBuf(rawGGUF({ tensors: [t({ name: 'blk.0.weird', type: 99 })], data })), 'E_UNSUPPORTED', /tensor 'blk\.0\.weird'.*99/);
    await expectCode(readBuf(rawGGUF({ tensors: [t({ offset: 64 })], data })), 'E_FORMAT', /past the end/);
    await expectCode(readBuf(rawGGUF({ tensors: [t({ ne: [1000] })], data })), 'E_FORMAT', /past the end/);
    await expectCode(readBuf(rawGGUF({ tensors: [t({ name: 'a', ne: [8] }), t({ name: 'b', ne: [8], offset: 0 })], data })), 'E_FORMAT', /overlap/);
    await expectCode(readBuf(rawGGUF({ tensors: [t({ offset: 4 })], data })), 'E_FORMAT', /not a multiple of the alignment/);
    await expectCode(readBuf(rawGGUF({ tensors: [t({ name: 'a' }), t({ name: 'a', offset: 32 })], data })), 'E_FORMAT', /duplicate tensor name 'a'/);
    await expectCode(readBuf(rawGGUF({ tensors: [t({ ne: [1, 1, 1, 1, 1] })], data })), 'E_FORMAT', /dimensions/);
    await expectCode(readBuf(rawGGUF({ tensors: [t({ type: 2, ne: [31] })], data })), 'E_FORMAT', /block size/);
    const ok = await readBuf(rawGGUF({ tensors: [t({ name: 'a', ne: [8] }), t({ name: 'b', ne: [8], offset: 32 })], data }));
    expect(ok.tensors.map((x) => x.byteSize)).toEqual([32, 32]);
  });

  test('random corruption never crashes or hangs', async () => {
    const r = rng(7);
    const headerEnd = (await readBuf(good)).dataOffset;
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(good);
      const flips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < flips; k++) b[Math.floor(r() * headerEnd)] = Math.floor(r() * 256);
      try {
        await readBuf(b, 'fuzz.gguf');
      } catch (e) {
        if (!isQuantMoeError(e)) throw e;
        expect(['E_FORMAT', 'E_UNSUPPORTED']).toContain(e.code);
      }
    }
  });

  test('missing file and directory give E_IO', async () => {
    await expectCode(gguf.readGGUF(path.join(dir, 'does-not-exist.gguf')), 'E_IO', /no such file/);
    await expectCode(gguf.readGGUF(dir), 'E_IO');
  });
});
