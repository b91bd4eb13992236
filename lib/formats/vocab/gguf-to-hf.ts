// A GGUF byte-level BPE vocabulary (tokenizer.ggml.model = "gpt2") as an in-memory tokenizer.json,
// so @huggingface/tokenizers can run it. Control, unknown and user-defined tokens become
// added_tokens (matched in raw text before splitting, as llama.cpp's tokenizer_st_partition does);
// no post-processor: BOS/EOS are added by the caller.

import { QuantMoeError } from '../../errors';
import { JSONObject, JSONValue } from '../json';
import { GGUFVocab, TokenType } from './gguf-vocab';
import { preSpecForGGUF, preTokenizerJson } from './pre-tokenizers';
import { parseMerge } from './special';

export function ggufBpeToTokenizerJson(vocab: GGUFVocab, source: string): JSONObject {
  if (vocab.model !== 'gpt2') {
    throw new QuantMoeError('E_UNSUPPORTED', `${source}: tokenizer model '${vocab.model}' is not byte-level BPE ('gpt2')`);
  }
  if (vocab.merges === undefined) {
    throw new QuantMoeError('E_FORMAT', `${source}: byte-level BPE vocabulary without tokenizer.ggml.merges`);
  }
  const spec = preSpecForGGUF(vocab.pre, source);
  const merges: JSONValue[] = [];
  for (const m of vocab.merges) {
    const pair = parseMerge(m);
    if (pair !== undefined) merges.push(pair);
  }
  const added: JSONValue[] = [];
  vocab.tokenTypes.forEach((type, id) => {
    if (type === TokenType.CONTROL || type === TokenType.UNKNOWN || type === TokenType.USER_DEFINED) {
      added.push({
        id, content: vocab.tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false,
        special: type !== TokenType.USER_DEFINED,
      });
    }
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizerJson(spec),
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: spec.ignoreMerges,
      vocab: vocabObject(vocab.tokens),
      merges,
    },
  };
}

/** token → id as a plain object (what tokenizer.json holds); a token spelled "__proto__" stays a token. */
function vocabObject(tokens: readonly string[]): JSONObject {
  const o: JSONObject = {};
  tokens.forEach((t, i) => {
    if (t === '__proto__') Object.defineProperty(o, t, { value: i, enumerable: true, writable: true, configurable: true });
    else o[t] = i;
  });
  return o;
}
