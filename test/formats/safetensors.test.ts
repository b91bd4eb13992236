import { promises as fsp } from 'fs';
import * as path from 'path';
import { isQuantMoeError } from '../../lib/errors';
import {
  readSafetensors, readSafetensorsCheckpoint, requireFloatDtype, SafetensorsWriteTensor, writeSafetensors,
  writeSafetensorsSharded,
} from '../../lib/formats/safetensors';
import { expectCode, expectCodeSync, randomBytes, rng, tempDir } from './helpers';

let dir: string;
beforeAll(async () => { dir = await tempDir('st'); });
afterAll(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

const rand = rng(3);
const sizes = { F32: 4, F16: 2, BF16: 2, I32: 4, U8: 1, I64: 8 } as const;
function t(name: string, dtype: keyof typeof sizes, shape: number[]): SafetensorsWriteTensor {
  return { name, dtype, shape, data: randomBytes(shape.reduce((a, b) => a * b, 1) * sizes[dtype], rand) };
}

function raw(header: unknown, dataLen: number, headerLenOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLenOverride ?? BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(dataLen)]);
}

async function readBuf(buf: Uint8Array, name = 'x.safetensors') {
  const file = path.join(dir, name);
  await fsp.writeFile(file, buf);
  try {
    return await readSafetensors(file);
  } finally {
    await fsp.unlink(file);
  }
}

async function bytesAt(file: string, offset: number, n: number): Promise<Buffer> {
  return (await fsp.readFile(file)).subarray(offset, offset + n);
}

describe('safetensors', () => {
  const tensors = [
    t('model.embed_tokens.weight', 'BF16', [10, 8]),
    t('model.layers.0.mlp.experts.0.up_proj.weight', 'F16', [16, 8]),
    t('model.norm.weight', 'F32', [8]),
    t('model.layers.0.mlp.experts.0.up_proj.qweight', 'I32', [1, 16]),
    t('scalar', 'F32', []),
    t('empty', 'U8', [0, 4]),
  ];

  test('single file round trip', async () => {
    const file = path.join(dir, 'model.safetensors');
    await writeSafetensors(file, tensors, { format: 'pt' });
    const f = await readSafetensors(file);
    expect(f.headerSize % 8).toBe(0);
    expect(f.dataOffset).toBe(8 + f.headerSize);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.tensors.map((x) => x.name)).toEqual(tensors.map((x) => x.name));
    for (const [i, info] of f.tensors.entries()) {
      expect(info.dtype).toBe(tensors[i].dtype);
      expect(info.shape).toEqual(tensors[i].shape);
      expect(info.file).toBe(file);
      expect(await bytesAt(file, info.offset, info.byteSize)).toEqual(Buffer.from(tensors[i].data));
    }
    expect(f.tensors[4].nElements).toBe(1);
    const cp = await readSafetensorsCheckpoint(dir);
    expect(cp.files).toEqual([file]);
    expect(cp.indexFile).toBeUndefined();
    requireFloatDtype(f.tensors[0]);
    expectCodeSync(() => requireFloatDtype(f.tensors[3]), 'E_UNSUPPORTED', /qweight.*I32/);
  });

  test('sharded write and read', async () => {
    const sdir = path.join(dir, 'sharded');
    const res = await writeSafetensorsSharded(sdir, tensors, { maxShardBytes: 200 });
    expect(res.files.length).toBeGreaterThan(1);
    expect(path.basename(res.files[0])).toBe(`model-00001-of-${String(res.files.length).padStart(5, '0')}.safetensors`);
    const index = JSON.parse(await fsp.readFile(res.indexFile ?? '', 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(index.metadata.total_size).toBe(tensors.reduce((s, x) => s + x.data.length, 0));
    const cp = await readSafetensorsCheckpoint(sdir);
    expect(cp.indexFile).toBe(res.indexFile);
    expect(cp.files).toEqual(res.files);
    expect(cp.metadata.total_size).toBe(index.metadata.total_size);
    const byName = new Map(cp.tensors.map((x) => [x.name, x]));
    for (const src of tensors) {
      const info = byName.get(src.name);
      expect(info).toBeDefined();
      if (!info) continue;
      expect(path.basename(info.file)).toBe(index.weight_map[src.name]);
      expect(await bytesAt(info.file, info.offset, info.byteSize)).toEqual(Buffer.from(src.data));
    }
    // reading the index file directly works too
    expect((await readSafetensorsCheckpoint(res.indexFile ?? '')).tensors).toHaveLength(tensors.length);
    // one shard only: plain model.safetensors, no index
    const one = await writeSafetensorsSharded(path.join(dir, 'one'), tensors, { maxShardBytes: 1 << 20 });
    expect(one.indexFile).toBeUndefined();
    expect(path.basename(one.files[0])).toBe('model.safetensors');
  });

  test('sharded checkpoint errors', async () => {
    const sdir = path.join(dir, 'bad-shards');
    const res = await writeSafetensorsSharded(sdir, tensors, { maxShardBytes: 200 });
    const indexFile = res.indexFile ?? '';
    const index = JSON.parse(await fsp.readFile(indexFile, 'utf8')) as { weight_map: Record<string, string> };
    const rewrite = async (wm: Record<string, unknown>): Promise<void> => {
      await fsp.writeFile(indexFile, JSON.stringify({ weight_map: wm }));
    };
    await rewrite({ ...index.weight_map, ghost: path.basename(res.files[0]) });
    await expectCode(readSafetensorsCheckpoint(sdir), 'E_FORMAT', /'ghost' is listed/);
    await rewrite({ ...index.weight_map, x: 'model-00099-of-00099.safetensors' });
    await expectCode(readSafetensorsCheckpoint(sdir), 'E_FORMAT', /missing/);
    await rewrite({ ...index.weight_map, x: '../evil.safetensors' });
    await expectCode(readSafetensorsCheckpoint(sdir), 'E_FORMAT', /same folder/);
    await fsp.writeFile(indexFile, '{"weight_map": ');
    await expectCode(readSafetensorsCheckpoint(sdir), 'E_FORMAT', /invalid JSON/);
    await fsp.writeFile(indexFile, '[]');
    await expectCode(readSafetensorsCheckpoint(sdir), 'E_FORMAT', /weight_map/);
    // duplicate tensor across shards
    const ddir = path.join(dir, 'dup');
    await fsp.mkdir(ddir);
    const a = [t('w', 'F32', [2])];
    await writeSafetensors(path.join(ddir, 'a.safetensors'), a);
    await writeSafetensors(path.join(ddir, 'b.safetensors'), [t('w', 'F32', [2]), t('v', 'F32', [1])]);
    await fsp.writeFile(path.join(ddir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'a.safetensors', v: 'b.safetensors' } }));
    await expectCode(readSafetensorsCheckpoint(ddir), 'E_FORMAT', /'w' appears in both a\.safetensors and b\.safetensors/);
    // empty folder, missing path
    const edir = path.join(dir, 'empty');
    await fsp.mkdir(edir);
    await fsp.writeFile(path.join(edir, 'pytorch_model.bin'), '');
    await expectCode(readSafetensorsCheckpoint(edir), 'E_FORMAT', /no safetensors weights.*\.bin/);
    await expectCode(readSafetensorsCheckpoint(path.join(dir, 'nope')), 'E_IO');
  });

  test('corrupt headers', async () => {
    const good = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };
    await expect(readBuf(raw(good, 16))).resolves.toBeDefined();
    await expectCode(readBuf(raw(good, 16, 10n ** 12n), 'len.safetensors'), 'E_FORMAT', /len\.safetensors: header length/);
    await expectCode(readBuf(raw('{"w": {', 16)), 'E_FORMAT', /JSON/);
    await expectCode(readBuf(raw('[1,2]', 0)), 'E_FORMAT', /object/);
    await expectCode(readBuf(Buffer.concat([raw('', 0).subarray(0, 8), Buffer.from([0xff, 0xfe])]).fill(2, 0, 1)), 'E_FORMAT', /UTF-8/);
    await expectCode(readBuf(raw({ w: { ...good.w, data_offsets: [0, 32] } }, 16)), 'E_FORMAT', /past the 16-byte data buffer/);
    await expectCode(readBuf(raw({ w: { ...good.w, data_offsets: [0, 12] } }, 16)), 'E_FORMAT', /needs 16 bytes but data_offsets span 12/);
    await expectCode(readBuf(raw({ w: { ...good.w, data_offsets: [8, 4] } }, 16)), 'E_FORMAT', /end before/);
    await expectCode(readBuf(raw({ w: { ...good.w, shape: [2, -2] } }, 16)), 'E_FORMAT', /shape/);
    await expectCode(readBuf(raw({ w: { ...good.w, dtype: 'F4' } }, 16)), 'E_UNSUPPORTED', /tensor 'w'.*F4/);
    await expectCode(readBuf(raw({ w: 5 }, 16)), 'E_FORMAT', /'w'/);
    await expectCode(readBuf(raw({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, 16)), 'E_FORMAT', /overlap/);
    await expectCode(readBuf(new Uint8Array(5)), 'E_FORMAT', /too small/);
    const ok = await readBuf(raw({ __metadata__: { a: 'b', n: 5 }, ...good }, 16));
    expect(ok.metadata).toEqual({ a: 'b' });
  });

  test('truncation anywhere gives E_FORMAT', async () => {
    const file = path.join(dir, 'trunc-src.safetensors');
    await writeSafetensors(file, [t('a', 'F32', [3]), t('b', 'F16', [5])]);
    const full = await fsp.readFile(file);
    for (let n = 0; n < full.length; n++) {
      try {
        await readBuf(full.subarray(0, n));
        throw new Error(`accepted a file truncated to ${n} bytes`);
      } catch (e) {
        if (!isQuantMoeError(e, 'E_FORMAT')) throw e;
      }
    }
  });

  test('writer validation', async () => {
    await expectCode(writeSafetensors(path.join(dir, 'w.safetensors'), [{ name: 'a', dtype: 'F32', shape: [3], data: new Uint8Array(8) }]), 'E_SHAPE');
    await expectCode(writeSafetensors(path.join(dir, 'w.safetensors'), [t('a', 'F32', [1]), t('a', 'F32', [1])]), 'E_ARGUMENT', /duplicate/);
    await expectCode(writeSafetensorsSharded(path.join(dir, 'w'), [t('a', 'F32', [1])], { maxShardBytes: 0 }), 'E_ARGUMENT');
  });
});
