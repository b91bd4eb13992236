// The vocabulary embedded in a GGUF file (tokenizer.ggml.* keys, gguf-py constants.py Keys.Tokenizer),
// with llama.cpp's defaults (src/llama-vocab.cpp, llama_vocab::impl::load) where keys are absent.

import * as path from 'path';
import { QuantMoeError } from '../../errors';
import {
  getArray, getOptionalBool, getOptionalString, getStringArray, GGUFMetadataSource, hasKey,
} from '../gguf-meta';
import { GGUFValueType } from '../gguf-types';

/** tokenizer.ggml.token_type values (llama_token_type). */
export const TokenType = Object.freeze({
  NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6,
} as const);

export interface GGUFVocab {
  /** tokenizer.ggml.model: 'gpt2' (byte-level BPE), 'llama' (SentencePiece BPE), ... */
  readonly model: string;
  readonly pre?: string;
  readonly tokens: readonly string[];
  /** One TokenType per token (NORMAL when the file has no token_type). */
  readonly tokenTypes: readonly number[];
  readonly scores?: readonly number[];
  readonly merges?: readonly string[];
  readonly bosId?: number;
  readonly eosId?: number;
  readonly eotId?: number;
  readonly eomId?: number;
  readonly unkId?: number;
  readonly padId?: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** SentencePiece: prepend "▁" to text (llama.cpp add_space_prefix). */
  readonly addSpacePrefix: boolean;
  readonly chatTemplate?: string;
  readonly chatTemplates: Readonly<Record<string, string>>;
}

function fail(src: GGUFMetadataSource, msg: string): QuantMoeError {
  return new QuantMoeError('E_FORMAT', `${path.basename(src.path)}: ${msg} (${src.path})`);
}

function tokenId(src: GGUFMetadataSource, key: string, n: number, fallback?: number): number | undefined {
  if (!hasKey(src, key)) return fallback !== undefined && fallback < n ? fallback : undefined;
  const v = src.metadata[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw fail(src, `${key} must be a token id (uint32)`);
  // llama.cpp ignores out-of-range special ids (warns, keeps the default); so do we.
  return v < n ? v : (fallback !== undefined && fallback < n ? fallback : undefined);
}

/** Reads and validates the embedded vocabulary. E_FORMAT when absent or inconsistent. */
export function readGGUFVocab(src: GGUFMetadataSource): GGUFVocab {
  const model = getOptionalString(src, 'tokenizer.ggml.model');
  if (model === undefined) {
    throw fail(src, 'the file has no embedded tokenizer (tokenizer.ggml.model is missing)');
  }
  const rawTokens = getStringArray(src, 'tokenizer.ggml.tokens');
  const n = rawTokens.length;
  const seen = new Map<string, number>();
  const tokens = rawTokens.map((t, i) => {
    const text = t.length === 0 ? `[EMPTY_${i}]` : t; // as llama.cpp does
    const prev = seen.get(text);
    if (prev !== undefined) throw fail(src, `duplicate token ${JSON.stringify(text)} in tokenizer.ggml.tokens (ids ${prev} and ${i})`);
    seen.set(text, i);
    return text;
  });

  let tokenTypes: number[] = new Array<number>(n).fill(TokenType.NORMAL);
  if (hasKey(src, 'tokenizer.ggml.token_type')) {
    const tt = getArray(src, 'tokenizer.ggml.token_type');
    const typed = src.typedMetadata?.['tokenizer.ggml.token_type'];
    if ((typed && (typed.type !== GGUFValueType.ARRAY || typed.itemType !== GGUFValueType.INT32)) || !tt.every((x) => typeof x === 'number')) {
      throw fail(src, 'tokenizer.ggml.token_type must be an int32 array');
    }
    if (tt.length < n) throw fail(src, `tokenizer.ggml.token_type has ${tt.length} entries for ${n} tokens`);
    tokenTypes = (tt as number[]).slice(0, n);
  }
  let scores: number[] | undefined;
  if (hasKey(src, 'tokenizer.ggml.scores')) {
    const sc = getArray(src, 'tokenizer.ggml.scores');
    if (!sc.every((x) => typeof x === 'number')) throw fail(src, 'tokenizer.ggml.scores must be a float32 array');
    if (sc.length < n) throw fail(src, `tokenizer.ggml.scores has ${sc.length} entries for ${n} tokens`);
    scores = (sc as number[]).slice(0, n);
  }
  const merges = hasKey(src, 'tokenizer.ggml.merges') ? getStringArray(src, 'tokenizer.ggml.merges') : undefined;

  const isSpm = model === 'llama';
  const chatTemplates: Record<string, string> = Object.create(null) as Record<string, string>;
  const main = getOptionalString(src, 'tokenizer.chat_template');
  if (main !== undefined) chatTemplates.default = main;
  for (const key of Object.keys(src.metadata)) {
    const m = /^tokenizer\.chat_template\.(.+)$/.exec(key);
    if (m) {
      const v = src.metadata[key];
      if (typeof v === 'string') chatTemplates[m[1]] = v;
    }
  }
  return {
    model,
    pre: getOptionalString(src, 'tokenizer.ggml.pre'),
    tokens, tokenTypes, scores, merges,
    bosId: tokenId(src, 'tokenizer.ggml.bos_token_id', n, isSpm ? 1 : undefined),
    eosId: tokenId(src, 'tokenizer.ggml.eos_token_id', n, isSpm ? 2 : undefined),
    eotId: tokenId(src, 'tokenizer.ggml.eot_token_id', n),
    eomId: tokenId(src, 'tokenizer.ggml.eom_token_id', n),
    unkId: tokenId(src, 'tokenizer.ggml.unknown_token_id', n, isSpm ? 0 : undefined),
    padId: tokenId(src, 'tokenizer.ggml.padding_token_id', n),
    addBos: getOptionalBool(src, 'tokenizer.ggml.add_bos_token') ?? isSpm,
    addEos: getOptionalBool(src, 'tokenizer.ggml.add_eos_token') ?? false,
    addSpacePrefix: getOptionalBool(src, 'tokenizer.ggml.add_space_prefix') ?? isSpm,
    chatTemplate: chatTemplates.default,
    chatTemplates,
  };
}

/** Token texts llama.cpp treats as end-of-generation whatever their id (llama-vocab.cpp). */
export const EOG_TOKEN_TEXTS: ReadonlySet<string> = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|eom_id|>', '<EOT>',
  '<|end_of_text|>', '<end_of_utterance>', '<｜end▁of▁sentence｜>',
]);
