// safetensors data model. Format (huggingface/safetensors): u64 little-endian header length N,
// N bytes of UTF-8 JSON { "__metadata__": {str: str}, name: { dtype, shape, data_offsets: [begin, end] } },
// then the data buffer; data_offsets are relative to the first byte after the header.

export type SafetensorsDtype =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16'
  | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

/** Bytes per element of each dtype. */
export const SAFETENSORS_DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8,
});

/** Dtypes the runtime computes with directly (weights); others are read as infos only. */
export const SAFETENSORS_FLOAT_DTYPES: readonly SafetensorsDtype[] = Object.freeze(['F32', 'F16', 'BF16']);

export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_SIZE, s);
}

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly nElements: number;
  /** The file holding the data. */
  readonly file: string;
  /** Absolute byte offset of the data in `file`. */
  readonly offset: number;
  readonly byteSize: number;
}

export interface SafetensorsFile {
  readonly path: string;
  readonly fileSize: number;
  readonly headerSize: number;
  /** Absolute offset of the data buffer (8 + headerSize). */
  readonly dataOffset: number;
  /** `__metadata__` when it is a string → string map; otherwise empty. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: readonly SafetensorsTensorInfo[];
}

/** A single file or a sharded checkpoint (model.safetensors.index.json + shards). */
export interface SafetensorsCheckpoint {
  readonly dir: string;
  /** The index JSON when sharded. */
  readonly indexFile?: string;
  /** Weight files, in shard order. */
  readonly files: readonly string[];
  readonly tensors: readonly SafetensorsTensorInfo[];
  /** `metadata` of the index (e.g. total_size), or `__metadata__` of a single file. */
  readonly metadata: Readonly<Record<string, string | number>>;
}
