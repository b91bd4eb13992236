// A Hugging Face byte-level BPE tokenizer.json (+ tokenizer_config.json) as GGUF tokenizer
// metadata that llama.cpp loads (keys and types as convert_hf_to_gguf.py writes them:
// tokens string[], token_type int32[], merges string[], special ids uint32, flags bool).

import { QuantMoeError } from '../../errors';
import { bool, GGUFTypedValue, i32Arr, str, strArr, u32 } from '../gguf-types';
import { parseChatTemplates } from '../hf';
import { isJSONObject, JSONObject, JSONValue } from '../json';
import { isByteLevelToken } from './byte-level';
import { TokenType } from './gguf-vocab';
import { detectGGUFPre, SUPPORTED_GGUF_PRE } from './pre-tokenizers';
import { addedTokens, parseMerge, tokenContent } from './special';

export interface HFToGGUFVocabOptions {
  /** Pad the vocabulary with [PAD<i>] tokens to this size (config.json vocab_size = embedding rows). */
  readonly vocabSize?: number;
  /** Override the detected `tokenizer.ggml.pre`. */
  readonly pre?: string;
  /** Fallback special ids (config.json / generation_config.json) when tokenizer_config names none. */
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  /** Override the chat template from tokenizer_config.json. */
  readonly chatTemplate?: string;
}

function unsupported(msg: string): QuantMoeError {
  return new QuantMoeError('E_UNSUPPORTED', `tokenizer.json: ${msg}`);
}

function decoderHasByteLevel(d: JSONValue | undefined): boolean {
  if (!isJSONObject(d)) return false;
  if (d.type === 'ByteLevel') return true;
  return d.type === 'Sequence' && Array.isArray(d.decoders) && d.decoders.some(decoderHasByteLevel);
}

/** Whether a TemplateProcessing post-processor puts `token` first (side 'first') or last. */
function templateAdds(post: JSONValue | undefined, token: string | undefined, side: 'first' | 'last'): boolean | undefined {
  if (token === undefined || !isJSONObject(post)) return undefined;
  if (post.type === 'Sequence' && Array.isArray(post.processors)) {
    for (const p of post.processors) {
      const r = templateAdds(p, token, side);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  if (post.type !== 'TemplateProcessing' || !Array.isArray(post.single) || post.single.length === 0) return undefined;
  const item = side === 'first' ? post.single[0] : post.single[post.single.length - 1];
  return isJSONObject(item) && isJSONObject(item.SpecialToken) && item.SpecialToken.id === token;
}

/**
 * GGUF metadata entries (tokenizer.ggml.*, tokenizer.chat_template) for a byte-level BPE
 * tokenizer. E_UNSUPPORTED for other tokenizer kinds or a pre-tokenizer llama.cpp cannot match
 * (pass `pre` to choose one), E_ARGUMENT for a vocabSize smaller than the vocabulary.
 */
export function hfTokenizerToGGUFMetadata(tokenizerJson: JSONObject, tokenizerConfig: JSONObject = {},
  options: HFToGGUFVocabOptions = {}): Record<string, GGUFTypedValue> {
  const model = tokenizerJson.model;
  if (!isJSONObject(model) || !isJSONObject(model.vocab) || !Array.isArray(model.merges) || (model.type !== undefined && model.type !== 'BPE')) {
    throw unsupported('only BPE models (model.type "BPE" with vocab and merges) can be converted');
  }
  if (!decoderHasByteLevel(tokenizerJson.decoder) || model.byte_fallback === true) {
    throw unsupported('only byte-level BPE tokenizers (ByteLevel decoder, GPT-2/Qwen/Llama-3 style) can be converted to tokenizer.ggml.model "gpt2"');
  }
  const pre = options.pre ?? detectGGUFPre(tokenizerJson.pre_tokenizer);
  if (pre === undefined) {
    throw unsupported(`its pre_tokenizer does not match a llama.cpp pre-tokenizer this converter knows (${SUPPORTED_GGUF_PRE.join(', ')}); pass options.pre to choose one`);
  }

  const byId = new Map<number, string>();
  for (const [tok, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new QuantMoeError('E_FORMAT', `tokenizer.json: token ${JSON.stringify(tok)} has invalid id ${JSON.stringify(id)}`);
    if (byId.has(id)) throw new QuantMoeError('E_FORMAT', `tokenizer.json: tokens ${JSON.stringify(byId.get(id))} and ${JSON.stringify(tok)} share id ${id}`);
    byId.set(id, tok);
  }
  const added = addedTokens(tokenizerJson.added_tokens);
  const addedById = new Map(added.map((a) => [a.id, a]));
  let n = 0;
  for (const id of [...byId.keys(), ...addedById.keys()]) n = Math.max(n, id + 1);
  if (options.vocabSize !== undefined) {
    if (!Number.isSafeInteger(options.vocabSize) || options.vocabSize < n) {
      throw new QuantMoeError('E_ARGUMENT', `vocabSize ${options.vocabSize} is smaller than the tokenizer's ${n} tokens`);
    }
    n = options.vocabSize;
  }
  const tokens: string[] = [];
  const types: number[] = [];
  const used = new Set<string>();
  for (let id = 0; id < n; id++) {
    const a = addedById.get(id);
    let text = a?.content ?? byId.get(id);
    let type: number = a ? (a.special ? TokenType.CONTROL : TokenType.USER_DEFINED) : TokenType.NORMAL;
    if (text === undefined || used.has(text)) {
      text = `[PAD${id}]`;
      type = TokenType.UNUSED;
    }
    if (type === TokenType.NORMAL && !isByteLevelToken(text)) {
      throw unsupported(`token ${JSON.stringify(text)} (id ${id}) is not spelled in the byte-level alphabet`);
    }
    used.add(text);
    tokens.push(text);
    types.push(type);
  }
  const merges = model.merges.map((m, i) => {
    const pair = parseMerge(m);
    if (pair === undefined || pair[0].includes(' ') || pair[1].includes(' ')) {
      throw unsupported(`merge #${i} ${JSON.stringify(m)} cannot be written as "left right"`);
    }
    return `${pair[0]} ${pair[1]}`;
  });

  const idOf = (content: string | undefined): number | undefined => {
    if (content === undefined) return undefined;
    const i = tokens.indexOf(content);
    return i >= 0 ? i : undefined;
  };
  const bosText = tokenContent(tokenizerConfig.bos_token);
  const eosText = tokenContent(tokenizerConfig.eos_token);
  const bosId = idOf(bosText) ?? options.bosTokenId;
  const eosId = idOf(eosText) ?? options.eosTokenId;
  const padId = idOf(tokenContent(tokenizerConfig.pad_token));
  const unkId = idOf(typeof model.unk_token === 'string' ? model.unk_token : tokenContent(tokenizerConfig.unk_token));
  const addBos = typeof tokenizerConfig.add_bos_token === 'boolean' ? tokenizerConfig.add_bos_token
    : (templateAdds(tokenizerJson.post_processor, bosText, 'first') ?? false);
  const addEos = typeof tokenizerConfig.add_eos_token === 'boolean' ? tokenizerConfig.add_eos_token
    : (templateAdds(tokenizerJson.post_processor, eosText, 'last') ?? false);
  if (addBos && bosId === undefined) throw new QuantMoeError('E_FORMAT', 'tokenizer_config.json: add_bos_token is true but there is no bos_token');

  const out: Record<string, GGUFTypedValue> = Object.create(null) as Record<string, GGUFTypedValue>;
  out['tokenizer.ggml.model'] = str('gpt2');
  out['tokenizer.ggml.pre'] = str(pre);
  out['tokenizer.ggml.tokens'] = strArr(tokens);
  out['tokenizer.ggml.token_type'] = i32Arr(types);
  out['tokenizer.ggml.merges'] = strArr(merges);
  if (bosId !== undefined) out['tokenizer.ggml.bos_token_id'] = u32(bosId);
  if (eosId !== undefined) out['tokenizer.ggml.eos_token_id'] = u32(eosId);
  if (unkId !== undefined) out['tokenizer.ggml.unknown_token_id'] = u32(unkId);
  if (padId !== undefined) out['tokenizer.ggml.padding_token_id'] = u32(padId);
  out['tokenizer.ggml.add_bos_token'] = bool(addBos);
  out['tokenizer.ggml.add_eos_token'] = bool(addEos);
  const templates = parseChatTemplates(tokenizerConfig.chat_template, 'tokenizer_config.json');
  if (options.chatTemplate !== undefined) templates.default = options.chatTemplate;
  for (const [name, tpl] of Object.entries(templates)) {
    out[name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${name}`] = str(tpl);
  }
  return out;
}
