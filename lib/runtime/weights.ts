// Maps a model's weight files (or copies them into huge-page memory, see WeightPlacement) and wraps
// every tensor as a native Tensor that borrows those bytes (never copied through the JS heap).
// Names are GGUF names (see models/names.ts).
import * as fs from 'fs';
import * as path from 'path';

import { QuantMoeError } from '../errors';
import { readGGUF } from '../formats/gguf';
import type { GGUFFile } from '../formats/gguf-types';
import { readHFFolder } from '../formats/hf';
import type { HFFolder } from '../formats/hf';
import { specFromGGUF } from '../models/from-gguf';
import { specFromHF } from '../models/from-hf';
import { expertName, hfToGGUFName, stackedExpertName } from '../models/names';
import type { ModelSpec } from '../models/spec';
import { validateWeights } from '../models/validate';
import { native } from '../native';
import type { DTypeName, MappedFile, Tensor } from '../native';

export class WeightStore {
  private readonly tensors = new Map<string, Tensor>();
  private readonly files: MappedFile[] = [];
  private fileBytes = 0;

  addFile(file: MappedFile): void {
    this.files.push(file);
    this.fileBytes += file.byteLength;
  }

  set(name: string, t: Tensor): void {
    this.tensors.set(name, t);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new QuantMoeError('E_FORMAT', `model file has no tensor '${name}'`);
    return t;
  }

  opt(name: string): Tensor | undefined {
    return this.tensors.get(name);
  }

  /** A layer's experts for one projection: one stacked [E, rows, cols] tensor or E tensors. */
  experts(layer: number, proj: 'gate' | 'up' | 'down', count: number): Tensor | Tensor[] {
    const stacked = this.tensors.get(stackedExpertName(layer, proj));
    if (stacked) return stacked;
    const list: Tensor[] = [];
    for (let e = 0; e < count; e++) list.push(this.get(expertName(layer, proj, e)));
    return list;
  }

  lookup(): { has(name: string): boolean; shape(name: string): readonly number[] } {
    return { has: (n) => this.tensors.has(n), shape: (n) => this.get(n).shape };
  }

  entries(): IterableIterator<[string, Tensor]> {
    return this.tensors.entries();
  }

  get totalBytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteSize;
    return n;
  }

  get mappedBytes(): number {
    return this.fileBytes;
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
    for (const f of this.files) f.dispose();
    this.files.length = 0;
  }
}

export interface LoadedWeights {
  spec: ModelSpec;
  weights: WeightStore;
  gguf?: GGUFFile;
  hf?: HFFolder;
}

function ggufDType(typeName: string, tensor: string, file: string): DTypeName {
  const n = typeName.toLowerCase();
  const ok: DTypeName[] = ['f32', 'f16', 'bf16', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];
  if (!(ok as string[]).includes(n)) {
    throw new QuantMoeError('E_UNSUPPORTED', `${file}: tensor '${tensor}' has type ${typeName}, which quantmoe cannot compute with yet`);
  }
  return n as DTypeName;
}

/** Where the weights live: 'mapped' (the file's pages, shared, instant) or 'memory' (a huge-page copy, faster decode). */
export type WeightPlacement = 'mapped' | 'memory';

export interface WeightLoadOptions {
  placement?: WeightPlacement;
}

/**
 * Whether Q4_0 / Q8_0 matrices of an in-memory copy get the r16 layout (native repackR16: 16 rows
 * interleaved per block), which the AVX-512 GEMV reads without assembling scales and rows from 16
 * places (decode on Zen 4: see the README). Every op gives the same results on either layout. Only
 * on AVX-512 (other instruction sets would compute on plain copies of the rows).
 */
function repacksForGemv(placement: WeightPlacement | undefined): boolean {
  return placement === 'memory' && native().backends().cpu.isa === 'avx512';
}

/** t in the r16 layout where it has one: Q4_0 / Q8_0 with rows in multiples of 16. */
function inGemvLayout(t: Tensor): Tensor {
  if (t.dtype !== 'q4_0' && t.dtype !== 'q8_0') return t;
  if (t.shape.length < 2 || t.shape[t.shape.length - 2] % 16 !== 0) return t;
  return native().repackR16(t);
}

/** The type a tensor has in the model file (what `info` reports), whatever layout it has in memory. */
export function fileDType(t: DTypeName): DTypeName {
  return t === 'q4_0_r16' ? 'q4_0' : t === 'q8_0_r16' ? 'q8_0' : t;
}

const kFillSlice = 256 * 2 ** 20; // bytes per fill() call: progress and worker termination between slices

/**
 * Opens every weight file: mapped, or copied into memory with progress over [0, 0.9) of the load
 * (tensor wrapping takes the rest). Files are disposed again if a later one fails.
 */
async function openWeightFiles(
  files: readonly string[], opts: WeightLoadOptions, onProgress?: (fraction: number) => void,
): Promise<MappedFile[]> {
  const inMemory = opts.placement === 'memory';
  const out: MappedFile[] = [];
  try {
    for (const f of files) out.push(native().mapFile(f, { inMemory }));
    if (inMemory) {
      const total = out.reduce((a, m) => a + m.byteLength, 0);
      let done = 0;
      for (const m of out) {
        for (let off = 0; off < m.byteLength; off += kFillSlice) {
          const len = Math.min(kFillSlice, m.byteLength - off);
          // all hardware threads, whatever the inference thread count: the others idle during load,
          // and where a VM backs fresh memory slowly (0.3-0.5 GB/s per core here) it matters most
          m.fill(off, len);
          done += len;
          onProgress?.((0.9 * done) / Math.max(1, total));
          await new Promise((r) => setImmediate(r));
        }
      }
    }
    return out;
  } catch (e) {
    for (const m of out) m.dispose();
    throw e;
  }
}

export async function loadWeights(
  target: string, onProgress?: (fraction: number) => void, opts: WeightLoadOptions = {},
): Promise<LoadedWeights> {
  const tensorProgress = (f: number) => onProgress?.(opts.placement === 'memory' ? 0.9 + 0.1 * f : f);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(target);
  } catch (e) {
    throw new QuantMoeError('E_IO', `cannot open model '${target}': ${(e as Error).message}`);
  }
  const store = new WeightStore();
  try {
    if (stat.isFile()) {
      const gguf = await readGGUF(target);
      const spec = specFromGGUF(gguf);
      const [file] = await openWeightFiles([target], opts, onProgress);
      store.addFile(file);
      const repack = repacksForGemv(opts.placement);
      gguf.tensors.forEach((info, i) => {
        const t = native().tensorFromMapped(file, info.offset, ggufDType(info.typeName, info.name, target), [...info.shape]);
        store.set(info.name, repack ? inGemvLayout(t) : t);
        tensorProgress((i + 1) / gguf.tensors.length);
      });
      validateWeights(spec, store.lookup(), target);
      return { spec, weights: store, gguf };
    }
    const hf = await readHFFolder(target);
    const spec = specFromHF(hf.config);
    if (!hf.weights) throw new QuantMoeError('E_FORMAT', `${target}: no safetensors weights found`);
    const mapped = new Map<string, MappedFile>();
    const opened = await openWeightFiles(hf.weights.files, opts, onProgress);
    hf.weights.files.forEach((f, i) => {
      mapped.set(path.resolve(f), opened[i]);
      store.addFile(opened[i]);
    });
    hf.weights.tensors.forEach((info, i) => {
      const name = hfToGGUFName(info.name);
      if (!name) return; // tensors we do not use (e.g. rotary inv_freq buffers)
      const dtype = info.dtype.toLowerCase();
      if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16') {
        throw new QuantMoeError('E_UNSUPPORTED', `${info.file}: tensor '${info.name}' has dtype ${info.dtype}; only F32/F16/BF16 are supported`);
      }
      const file = mapped.get(path.resolve(info.file));
      if (!file) throw new QuantMoeError('E_FORMAT', `${target}: tensor '${info.name}' points at an unknown shard ${info.file}`);
      store.set(name, native().tensorFromMapped(file, info.offset, dtype, [...info.shape]));
      tensorProgress((i + 1) / hf.weights!.tensors.length);
    });
    validateWeights(spec, store.lookup(), target);
    return { spec, weights: store, hf };
  } catch (e) {
    store.dispose();
    throw e;
  }
}
