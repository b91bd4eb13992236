// SentencePiece-BPE tokenization of a GGUF "llama" vocabulary, following llama.cpp's
// llm_tokenizer_spm_session (src/llama-vocab.cpp): start from single characters, repeatedly merge
// the adjacent pair whose concatenation is the vocabulary token with the highest score (ties: the
// leftmost pair), then emit each final symbol's id, or its UTF-8 bytes as <0xNN> tokens when the
// symbol is not in the vocabulary. Spaces must already be escaped as "▁" by the caller.

export interface SpmVocab {
  readonly tokens: readonly string[];
  readonly scores: readonly number[];
  readonly unkId?: number;
}

interface Bigram {
  readonly left: number;
  readonly right: number;
  readonly score: number;
  readonly size: number;
}

/** Max-heap on score, then smallest `left`. */
class BigramHeap {
  private readonly items: Bigram[] = [];

  get size(): number { return this.items.length; }

  private before(a: Bigram, b: Bigram): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(b: Bigram): void {
    const h = this.items;
    h.push(b);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  pop(): Bigram | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l], h[m])) m = l;
        if (r < h.length && this.before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

const encoder = new TextEncoder();

export class SpmTokenizer {
  private readonly ids = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);

  constructor(private readonly vocab: SpmVocab) {
    vocab.tokens.forEach((t, i) => { if (!this.ids.has(t)) this.ids.set(t, i); });
    for (let b = 0; b < 256; b++) {
      const hex = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      const id = this.ids.get(hex) ?? (b < 0x80 ? this.ids.get(String.fromCharCode(b)) : undefined);
      if (id !== undefined) this.byteIds[b] = id;
    }
  }

  /** Ids for `text` (already "▁"-escaped, prefix space included). */
  encode(text: string, out: number[] = []): number[] {
    if (text.length === 0) return out;
    // Symbols are code points, addressed by UTF-16 offsets into `text`.
    const start: number[] = [];
    const len: number[] = [];
    for (let i = 0; i < text.length;) {
      const cp = text.codePointAt(i) ?? 0;
      const n = cp > 0xffff ? 2 : 1;
      start.push(i);
      len.push(n);
      i += n;
    }
    const count = start.length;
    const prev = start.map((_, i) => i - 1);
    const next = start.map((_, i) => (i + 1 < count ? i + 1 : -1));
    const heap = new BigramHeap();
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const size = len[left] + len[right];
      const id = this.ids.get(text.substr(start[left], size));
      if (id === undefined) return;
      heap.push({ left, right, score: this.vocab.scores[id] ?? 0, size });
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);
    while (heap.size > 0) {
      const b = heap.pop();
      if (b === undefined) break;
      // Skip pairs whose symbols changed since the pair was queued.
      if (len[b.left] === 0 || len[b.right] === 0 || len[b.left] + len[b.right] !== b.size) continue;
      len[b.left] += len[b.right];
      len[b.right] = 0;
      next[b.left] = next[b.right];
      if (next[b.right] >= 0) prev[next[b.right]] = b.left;
      tryAdd(prev[b.left], b.left);
      tryAdd(b.left, next[b.left]);
    }
    // Merged symbols are always vocabulary tokens, so llama.cpp's rev_merge re-segmentation never
    // applies; unknown single characters fall back to byte tokens (or <unk>).
    for (let i = 0; i !== -1; i = next[i]) {
      const piece = text.substr(start[i], len[i]);
      const id = this.ids.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const byte of encoder.encode(piece)) {
        const bid = this.byteIds[byte];
        if (bid >= 0) out.push(bid);
        else if (this.vocab.unkId !== undefined) out.push(this.vocab.unkId);
      }
    }
    return out;
  }
}
