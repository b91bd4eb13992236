// GPT-2 byte-level alphabet (bytes_to_unicode in openai/gpt-2 encoder.py): printable bytes
// '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves; the other 68 bytes map to U+0100 upward in
// byte order. Byte-level BPE vocabularies spell every token in this alphabet ("Ġ" = space).

const BYTE_TO_CHAR: readonly string[] = (() => {
  const direct: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) direct.push(b);
  for (let b = 0xa1; b <= 0xac; b++) direct.push(b);
  for (let b = 0xae; b <= 0xff; b++) direct.push(b);
  const out: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    out[b] = String.fromCharCode(direct.includes(b) ? b : 256 + extra++);
  }
  return Object.freeze(out);
})();

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

export function byteToChar(b: number): string {
  return BYTE_TO_CHAR[b];
}

/** Spells raw bytes in the byte-level alphabet. */
export function bytesToByteLevel(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += BYTE_TO_CHAR[b];
  return s;
}

const encoder = new TextEncoder();

/**
 * The bytes a byte-level token stands for. A character outside the alphabet (not produced by
 * byte-level BPE, but possible in a hand-made vocabulary) contributes its own UTF-8 bytes.
 */
export function byteLevelToBytes(token: string): Uint8Array {
  const out: number[] = [];
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) out.push(b);
    else out.push(...encoder.encode(ch));
  }
  return Uint8Array.from(out);
}

/** True when every character of `token` is in the byte-level alphabet. */
export function isByteLevelToken(token: string): boolean {
  for (const ch of token) if (!CHAR_TO_BYTE.has(ch)) return false;
  return true;
}
