// Loads the native addon (node-gyp-build: build/Release first, then prebuilds/) and gives every
// native function a TypeScript type. Errors thrown by native code carry a stable `code`; the
// wrappers here rethrow them as QuantMoeError.

import * as fs from 'fs';
import * as path from 'path';

import { ERROR_CODES, QuantMoeError } from './errors';
import type { ErrorCode } from './errors';
import type { AttentionOps } from './native-ops/attention';
import type { ElementwiseOps } from './native-ops/elementwise';
import type { MoeOps } from './native-ops/moe';
import type { NormRopeOps } from './native-ops/norm-rope';
import type { QgemmOps } from './native-ops/qgemm';
import type { RoutingOps } from './native-ops/routing';

export type DTypeName =
  | 'f32' | 'f16' | 'bf16' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q8_1'
  | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k' | 'i8' | 'i16' | 'i32' | 'i64' | 'f64'
  /** Q4_0 / Q8_0 rows repacked in memory for the AVX-512 kernels (repackR16); never in a file. */
  | 'q4_0_r16' | 'q8_0_r16';

export type DeviceName = 'cpu' | 'cuda';
export type IsaName = 'scalar' | 'avx2' | 'avx512';

/** A native tensor handle: row-major shape (outermost first), memory owned or borrowed. */
export interface Tensor {
  readonly dtype: DTypeName;
  readonly shape: number[];
  readonly device: DeviceName;
  readonly byteSize: number;
  readonly disposed: boolean;
  /** true when quantmoe allocated the memory; false when it borrows a mapped file's pages. */
  readonly owned: boolean;
  /** Frees owned memory now (otherwise the GC finalizer does). Idempotent. */
  dispose(): void;
  /** A copy of the raw bytes. */
  toArrayBuffer(): ArrayBuffer;
  /** Overwrites the tensor's bytes (exactly byteSize of them). */
  write(data: ArrayBufferView): void;
}

/** A read-only memory mapping of a file; tensors made from it borrow its pages. */
export interface MappedFile {
  readonly path: string;
  readonly byteLength: number;
  /** A copy of bytes [offset, offset+length). */
  read(offset: number, length: number): Buffer;
  /** True for an anonymous in-memory copy (mapFile(path, { inMemory: true })), false for a mapping. */
  readonly inMemory: boolean;
  /** In-memory copies only: reads bytes [offset, offset+length) of the file into the copy (parallel pread). */
  fill(offset: number, length: number, options?: { threads?: number }): void;
  dispose(): void;
}

export interface CudaDevice {
  name: string;
  memoryBytes: number;
  computeCapability: string;
}

export interface Backends {
  cpu: {
    features: string[];
    threads: number;
    isa: IsaName;
    bestIsa: IsaName;
    compiledIsas: IsaName[];
    arch: 'x64' | 'arm64' | 'other';
  };
  cuda: {
    compiled: boolean;
    devices: CudaDevice[];
    unavailableReason?: string;
    runtimeVersion?: number;
  };
}

export interface ThreadOptions {
  /** CPU threads this call may use (default: all hardware threads). */
  threads?: number;
}

export interface MatmulOptions extends ThreadOptions {
  out?: Tensor;
  device?: DeviceName;
}

/** The raw addon surface, exactly as native/addon.cc exports it (one interface per op family). */
export interface NativeAddon extends QgemmOps, RoutingOps, MoeOps, AttentionOps, NormRopeOps, ElementwiseOps {
  abiVersion: number;
  backends(): Backends;
  setIsa(isa: IsaName | 'best'): IsaName;
  setErrorFactory(factory: (code: string, message: string) => Error): void;
  tensorFromData(dtype: DTypeName, shape: number[], data: ArrayBufferView | ArrayBuffer): Tensor;
  tensorEmpty(dtype: DTypeName, shape: number[]): Tensor;
  /** A read-only mapping of the file, or with inMemory an anonymous huge-page copy that fill() loads. */
  mapFile(path: string, options?: { inMemory?: boolean }): MappedFile;
  tensorFromMapped(file: MappedFile, offset: number, dtype: DTypeName, shape: number[]): Tensor;
  matmul(x: Tensor, w: Tensor, options?: MatmulOptions): Tensor;
}

let cached: NativeAddon | undefined;

// scripts/load-addon.js sits at the package root: one level up from lib/ (ts-jest), two from
// dist/lib/ (compiled).
function loaderPath(): string {
  for (const up of ['..', '../..']) {
    const p = path.join(__dirname, up, 'scripts', 'load-addon.js');
    if (fs.existsSync(p)) return p;
  }
  throw new QuantMoeError('E_LOAD', `quantmoe: scripts/load-addon.js not found above ${__dirname}; the package is incomplete`);
}

/** Loads the addon once (per module instance); throws QuantMoeError E_LOAD listing what was tried and how to fix it. */
export function native(): NativeAddon {
  if (cached) return cached;
  try {
    const loader = require(loaderPath()) as { load(): NativeAddon };
    cached = loader.load();
    // Native errors are then QuantMoeErrors (of this module instance) with a stable code.
    cached.setErrorFactory((code, message) =>
      (ERROR_CODES as readonly string[]).includes(code)
        ? new QuantMoeError(code as ErrorCode, message)
        : Object.assign(new Error(message), { code }));
  } catch (e) {
    if (e instanceof Error && (e as Error & { code?: string }).code === 'E_LOAD') {
      throw new QuantMoeError('E_LOAD', e.message, { cause: e });
    }
    throw new QuantMoeError('E_LOAD', `quantmoe: loading the native addon failed: ${(e as Error).message}`, { cause: e });
  }
  return cached;
}

/** What was compiled in and what is usable now. */
export function backends(): Backends {
  return native().backends();
}

/**
 * Resolves a requested device. 'auto' picks CUDA when usable, else the CPU, silently.
 * 'cuda' fails with E_BACKEND_UNAVAILABLE saying why (not compiled in / no driver / no device).
 */
export function resolveDevice(requested: DeviceName | 'auto' = 'auto'): DeviceName {
  const b = backends();
  const usable = b.cuda.compiled && b.cuda.devices.length > 0;
  if (requested === 'cpu') return 'cpu';
  if (requested === 'auto') return usable ? 'cuda' : 'cpu';
  if (requested === 'cuda') {
    if (!usable) {
      throw new QuantMoeError(
        'E_BACKEND_UNAVAILABLE',
        `device 'cuda' requested but CUDA is not usable: ${b.cuda.unavailableReason ?? 'unknown reason'}. ` +
          `Use device: 'cpu' or 'auto'.`,
      );
    }
    return 'cuda';
  }
  throw new QuantMoeError('E_ARGUMENT', `unknown device '${String(requested)}' (use 'auto', 'cpu' or 'cuda')`);
}
