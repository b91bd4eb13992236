// Small tokenizers built from scratch for tests: a byte-level BPE trained on a tiny corpus (in
// tokenizer.json form, Qwen2 / GPT-2 / Llama-3 flavours) and a SentencePiece-BPE vocabulary with
// scores and <0xNN> byte tokens (as GGUF "llama" metadata and as the equivalent tokenizer.json).

import { JSONObject, JSONValue } from '../../lib/formats/json';
import * as gguf from '../../lib/formats/gguf';
import { GGUFTypedValue } from '../../lib/formats/gguf';

export const CORPUS = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs!',
  "It's the end of the world as we know it, and I feel fine. We'll see, won't we?",
  'In the beginning God created the heaven and the earth. And the earth was without form.',
  'Numbers: 123 4567 89000 and 3.14159; prices $12.50, 100%.',
  'Café résumé naïve coöperate — déjà vu, über straße.',
  '中文 汉字 你好 世界 你好世界 中文字',
  'Emoji 🚀 rocket 🎉 party 🚀🚀 fun',
  'def main():\n    print("hello world")\n    return 0\n\n',
];

/** Texts for round-trip and equivalence checks (include characters not in the corpus). */
export const SAMPLES = [
  '',
  'the',
  'Hello world',
  '  leading spaces and trailing  ',
  'The quick brown fox jumps over the lazy dog.',
  "We'll see what it's like, won't we?",
  'café déjà vu',
  '中文你好',
  '🚀 to the moon 🎉',
  'unseen: 🦀 ñ Ω ж 日本語 🧪',
  'tabs\tand\nnewlines\r\n\n  indented',
  'digits 1234567890 and 3.14',
  'mixed<|im_start|>special<|im_end|> tokens <tool_call>x</tool_call>',
  'x'.repeat(300),
];

const GPT2_RE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function byteLevelAlphabet(): string[] {
  const direct: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) direct.push(b);
  for (let b = 0xa1; b <= 0xac; b++) direct.push(b);
  for (let b = 0xae; b <= 0xff; b++) direct.push(b);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(direct.includes(b) ? b : 256 + extra++));
}

/** Classic BPE training: repeatedly merge the most frequent adjacent pair (ties: smallest pair). */
function trainBPE(words: Map<string[], number>, nMerges: number): [string, string][] {
  const merges: [string, string][] = [];
  const ws = [...words.entries()].map(([w, c]) => ({ w: [...w], c }));
  for (let k = 0; k < nMerges; k++) {
    const counts = new Map<string, number>();
    for (const { w, c } of ws) {
      for (let i = 0; i + 1 < w.length; i++) {
        const key = `${w[i]}\u0000${w[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + c);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [key, n] of counts) {
      if (n > bestN || (n === bestN && best !== undefined && key < best)) {
        best = key;
        bestN = n;
      }
    }
    if (best === undefined || bestN < 2) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    for (const item of ws) {
      const out: string[] = [];
      for (let i = 0; i < item.w.length; i++) {
        if (i + 1 < item.w.length && item.w[i] === a && item.w[i + 1] === b) {
          out.push(a + b);
          i++;
        } else {
          out.push(item.w[i]);
        }
      }
      item.w = out;
    }
  }
  return merges;
}

export interface ByteLevelFixture {
  readonly tokenizerJson: JSONObject;
  readonly tokenizerConfig: JSONObject;
  readonly ids: { endoftext: number; imStart: number; imEnd: number; toolCall: number; toolCallEnd: number };
}

export const QWEN2_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
export const LLAMA3_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

export const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** A byte-level BPE tokenizer.json trained on CORPUS, flavour picking the pre-tokenizer. */
export function byteLevelTokenizer(flavour: 'qwen2' | 'gpt2' | 'llama3' = 'qwen2', nMerges = 120): ByteLevelFixture {
  const alphabet = byteLevelAlphabet();
  const enc = new TextEncoder();
  const words = new Map<string[], number>();
  for (const line of CORPUS) {
    for (const m of line.match(GPT2_RE) ?? []) {
      words.set(Array.from(enc.encode(m), (b) => alphabet[b]), 1);
    }
  }
  const merges = trainBPE(words, nMerges);
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  alphabet.forEach((c, i) => { vocab[c] = i; });
  let next = 256;
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = next++;
  const special = (content: string, id: number, isSpecial = true): JSONObject =>
    ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !isSpecial, special: isSpecial });
  const ids = { endoftext: next, imStart: next + 1, imEnd: next + 2, toolCall: next + 3, toolCallEnd: next + 4 };
  const preTokenizer: JSONObject = flavour === 'gpt2'
    ? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }
    : {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: flavour === 'qwen2' ? QWEN2_REGEX : LLAMA3_REGEX }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    };
  const tokenizerJson: JSONObject = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      special('<|endoftext|>', ids.endoftext), special('<|im_start|>', ids.imStart), special('<|im_end|>', ids.imEnd),
      special('<tool_call>', ids.toolCall, false), special('</tool_call>', ids.toolCallEnd, false),
    ],
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: flavour === 'llama3',
      vocab: vocab as unknown as JSONObject,
      merges: merges.map(([a, b]) => [a, b] as JSONValue),
    },
  };
  const tokenizerConfig: JSONObject = {
    bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', unk_token: null,
    clean_up_tokenization_spaces: false, chat_template: CHATML,
  };
  return { tokenizerJson, tokenizerConfig, ids };
}

export interface SpmFixture {
  readonly tokens: string[];
  readonly scores: number[];
  readonly types: number[];
  /** GGUF metadata for tokenizer.ggml.model = "llama". */
  readonly metadata: Record<string, GGUFTypedValue>;
  /** The equivalent Llama-style tokenizer.json / tokenizer_config.json. */
  readonly tokenizerJson: JSONObject;
  readonly tokenizerConfig: JSONObject;
}

/** A SentencePiece-BPE vocabulary trained on CORPUS: <unk> <s> </s>, 256 byte tokens, chars, merges. */
export function spmTokenizer(nMerges = 150): SpmFixture {
  const words = new Map<string[], number>();
  for (const line of CORPUS) {
    const esc = `▁${line.replaceAll(' ', '▁')}`;
    for (const w of esc.split(/(?=▁)/u)) if (w.length > 0) words.set(Array.from(w), 1);
  }
  const chars = [...new Set(CORPUS.flatMap((l) => Array.from(`▁${l.replaceAll(' ', '▁')}`)))].sort();
  const merges = trainBPE(words, nMerges);
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
    scores.push(0);
  }
  const have = new Set(tokens);
  chars.forEach((c, i) => {
    if (have.has(c)) return;
    have.add(c);
    tokens.push(c);
    types.push(1);
    scores.push(-1000 - i);
  });
  merges.forEach(([a, b], k) => {
    const t = a + b;
    if (have.has(t)) return;
    have.add(t);
    tokens.push(t);
    types.push(1);
    scores.push(-k - 1);
  });
  const metadata: Record<string, GGUFTypedValue> = {
    'tokenizer.ggml.model': gguf.str('llama'),
    'tokenizer.ggml.tokens': gguf.strArr(tokens),
    'tokenizer.ggml.scores': gguf.f32Arr(scores),
    'tokenizer.ggml.token_type': gguf.i32Arr(types),
    'tokenizer.ggml.bos_token_id': gguf.u32(1),
    'tokenizer.ggml.eos_token_id': gguf.u32(2),
    'tokenizer.ggml.unknown_token_id': gguf.u32(0),
  };
  // HF equivalent: merges for every split of every merged token, ranked by the token's score.
  const id = new Map(tokens.map((t, i) => [t, i]));
  const hfMerges: { pair: [string, string]; score: number }[] = [];
  tokens.forEach((t, i) => {
    if (types[i] !== 1) return;
    const cps = Array.from(t);
    for (let k = 1; k < cps.length; k++) {
      const a = cps.slice(0, k).join('');
      const b = cps.slice(k).join('');
      if (id.has(a) && id.has(b)) hfMerges.push({ pair: [a, b], score: scores[i] });
    }
  });
  hfMerges.sort((x, y) => y.score - x.score);
  const added = tokens.slice(0, 3).map((content, i): JSONObject =>
    ({ id: i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const tokenizerJson: JSONObject = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: added,
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])) as JSONObject,
      merges: hfMerges.map((m) => m.pair as JSONValue),
    },
  };
  const tokenizerConfig: JSONObject = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false };
  return { tokens, scores, types, metadata, tokenizerJson, tokenizerConfig };
}
