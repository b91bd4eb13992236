// Incremental little-endian reader over a file handle: keeps a window of the file in memory and
// reads further chunks on demand, so headers of multi-GB model files are parsed without loading
// the file. Callers check `available` and await `need(n)` only when the window runs short.

import { promises as fsp } from 'fs';
import * as path from 'path';
import { QuantMoeError } from '../errors';

const CHUNK = 1 << 20;

export class ChunkedReader {
  private buf: Buffer = Buffer.alloc(0);
  /** File offset of buf[0]. */
  private bufStart = 0;
  /** Read position inside buf. */
  private at = 0;

  constructor(
    private readonly fh: fsp.FileHandle,
    readonly fileSize: number,
    readonly file: string,
    startOffset = 0,
  ) {
    this.bufStart = startOffset;
  }

  /** Absolute file offset of the next unread byte. */
  get pos(): number {
    return this.bufStart + this.at;
  }

  /** Bytes left in the file after `pos`. */
  get remaining(): number {
    return this.fileSize - this.pos;
  }

  /** Bytes buffered and not yet consumed. */
  get available(): number {
    return this.buf.length - this.at;
  }

  /** Ensures `n` bytes are buffered; E_FORMAT (naming `what`) when the file ends first. */
  async need(n: number, what: string): Promise<void> {
    if (this.available >= n) return;
    if (n > this.remaining) {
      throw new QuantMoeError('E_FORMAT',
        `${path.basename(this.file)}: truncated file: ${what} needs ${n} bytes at offset ${this.pos} ` +
        `but the file has ${this.fileSize} bytes (${this.file})`);
    }
    const keep = this.buf.subarray(this.at);
    const want = Math.min(Math.max(n, CHUNK), this.remaining);
    const next = Buffer.allocUnsafe(want);
    keep.copy(next, 0);
    let filled = keep.length;
    const readFrom = this.pos + keep.length;
    while (filled < want) {
      const { bytesRead } = await this.fh.read(next, filled, want - filled, readFrom + (filled - keep.length));
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    this.bufStart = this.pos;
    this.buf = next.subarray(0, filled);
    this.at = 0;
    if (filled < n) {
      throw new QuantMoeError('E_FORMAT',
        `${path.basename(this.file)}: truncated file: ${what} ends past the end of the data that could be read ` +
        `(offset ${this.pos}, ${this.file})`);
    }
  }

  u8(): number { const v = this.buf.readUInt8(this.at); this.at += 1; return v; }
  i8(): number { const v = this.buf.readInt8(this.at); this.at += 1; return v; }
  u16(): number { const v = this.buf.readUInt16LE(this.at); this.at += 2; return v; }
  i16(): number { const v = this.buf.readInt16LE(this.at); this.at += 2; return v; }
  u32(): number { const v = this.buf.readUInt32LE(this.at); this.at += 4; return v; }
  i32(): number { const v = this.buf.readInt32LE(this.at); this.at += 4; return v; }
  f32(): number { const v = this.buf.readFloatLE(this.at); this.at += 4; return v; }
  f64(): number { const v = this.buf.readDoubleLE(this.at); this.at += 8; return v; }
  u64(): bigint { const v = this.buf.readBigUInt64LE(this.at); this.at += 8; return v; }
  i64(): bigint { const v = this.buf.readBigInt64LE(this.at); this.at += 8; return v; }

  /** The next u64 without consuming it (must be buffered). */
  peekU64(): bigint { return this.buf.readBigUInt64LE(this.at); }

  /** UTF-8 text of the next `n` buffered bytes (invalid sequences become U+FFFD). */
  utf8(n: number): string {
    const s = this.buf.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }

  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
}

/** Opens `file` for reading; E_IO with the reason when it cannot be opened or is not a file. */
export async function openForRead(file: string): Promise<{ fh: fsp.FileHandle; size: number }> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    throw ioError(file, 'open', e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new QuantMoeError('E_IO', `${file} is not a regular file`);
    }
    return { fh, size: st.size };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e instanceof QuantMoeError ? e : ioError(file, 'stat', e);
  }
}

export function ioError(file: string, op: string, e: unknown): QuantMoeError {
  const code = (e as { code?: unknown } | null)?.code;
  const reason = code === 'ENOENT' ? 'no such file or directory'
    : code === 'EACCES' ? 'permission denied'
      : code === 'EISDIR' ? 'is a directory'
        : e instanceof Error ? e.message : String(e);
  return new QuantMoeError('E_IO', `cannot ${op} ${file}: ${reason}`, { cause: e });
}

/** Writes all of `data` at `position` (fs writes may be partial). */
export async function writeFully(fh: fsp.FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new QuantMoeError('E_IO', 'write made no progress');
    done += bytesWritten;
  }
}

/** Reads exactly `length` bytes at `position`, E_FORMAT naming `what` when the file is shorter. */
export async function readExactly(fh: fsp.FileHandle, file: string, position: number, length: number,
  what: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, length - done, position + done);
    if (bytesRead === 0) {
      throw new QuantMoeError('E_FORMAT',
        `${path.basename(file)}: truncated file: ${what} needs ${length} bytes at offset ${position} (${file})`);
    }
    done += bytesRead;
  }
  return out;
}
