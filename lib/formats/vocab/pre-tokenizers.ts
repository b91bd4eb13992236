// Byte-level BPE pre-tokenizers: llama.cpp's `tokenizer.ggml.pre` names (src/llama-vocab.cpp,
// llm_tokenizer_bpe) ↔ the tokenizer.json `pre_tokenizer` section with the same splitting.
// llama.cpp applies its regexes one after another, keeping matched and unmatched pieces, which is
// a tokenizer.json Sequence of Split(behavior: Isolated) followed by ByteLevel(use_regex: false).

import { QuantMoeError } from '../../errors';
import { isJSONObject, JSONObject, JSONValue } from '../json';

export type PreKind = 'default' | 'gpt2' | 'qwen2' | 'llama3' | 'deepseek3';

interface PreSpec {
  readonly kind: PreKind;
  /** Regexes in tokenizer.json (Oniguruma) spelling; empty for the GPT-2 ByteLevel regex. */
  readonly regexes: readonly string[];
  /** BPE model flag: a word already in the vocabulary is not split (llama.cpp ignore_merges). */
  readonly ignoreMerges: boolean;
}

const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const CONTRACTIONS_CI = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)`;
const CONTRACTIONS_ADAPTED = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])`;
const QWEN2 = CONTRACTIONS_CI + String.raw`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const LLAMA3 = CONTRACTIONS_CI + String.raw`|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const DEFAULT: readonly string[] = [String.raw`[\p{P}\$\+<=>\^~\|]+`, GPT2, String.raw`\p{N}+`, '[0-9][0-9][0-9]'];
const DEEPSEEK3: readonly string[] = [
  String.raw`\p{N}{1,3}`,
  '[一-龥぀-ゟ゠-ヿ]+',
  '[!"#$%&\'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
];

const SPECS: Readonly<Record<PreKind, PreSpec>> = {
  default: { kind: 'default', regexes: DEFAULT, ignoreMerges: false },
  gpt2: { kind: 'gpt2', regexes: [], ignoreMerges: false },
  qwen2: { kind: 'qwen2', regexes: [QWEN2], ignoreMerges: false },
  llama3: { kind: 'llama3', regexes: [LLAMA3], ignoreMerges: true },
  deepseek3: { kind: 'deepseek3', regexes: DEEPSEEK3, ignoreMerges: false },
};

/** `tokenizer.ggml.pre` values understood here, by the splitting they select in llama.cpp. */
const PRE_NAMES: Readonly<Record<string, PreKind>> = {
  'default': 'default',
  'gpt-2': 'gpt2', 'gpt2': 'gpt2', 'phi-2': 'gpt2', 'olmo': 'gpt2', 'mpt': 'gpt2', 'jais': 'gpt2',
  'qwen2': 'qwen2', 'deepseek-r1-qwen': 'qwen2', 'stablelm2': 'qwen2', 'hunyuan': 'qwen2', 'megrez': 'qwen2',
  'llama3': 'llama3', 'llama-v3': 'llama3', 'llama-bpe': 'llama3', 'falcon3': 'llama3', 'pixtral': 'llama3',
  'deepseek-v3': 'deepseek3',
};

export const SUPPORTED_GGUF_PRE: readonly string[] = Object.freeze(Object.keys(PRE_NAMES));

/** The splitting for a `tokenizer.ggml.pre` value (missing → 'default', as llama.cpp does). */
export function preSpecForGGUF(pre: string | undefined, source: string): PreSpec {
  const kind = PRE_NAMES[pre ?? 'default'];
  if (kind === undefined) {
    throw new QuantMoeError('E_UNSUPPORTED',
      `${source}: pre-tokenizer '${String(pre)}' (tokenizer.ggml.pre) is not supported; supported: ${SUPPORTED_GGUF_PRE.join(', ')}`);
  }
  // dbrx/smaug use the llama3 regex without ignore_merges; not listed, so no special case here.
  return SPECS[kind];
}

function split(regex: string): JSONObject {
  return { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false };
}

/** tokenizer.json `pre_tokenizer` section equivalent to a pre spec. */
export function preTokenizerJson(spec: PreSpec): JSONObject {
  if (spec.kind === 'gpt2') return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    type: 'Sequence',
    pretokenizers: [...spec.regexes.map(split), { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }],
  };
}

function normalizeRegex(r: string): string {
  return r.split(CONTRACTIONS_CI).join(CONTRACTIONS_ADAPTED);
}

function isByteLevel(v: JSONValue | undefined, useRegex: boolean): boolean {
  return isJSONObject(v) && v.type === 'ByteLevel' && v.add_prefix_space !== true && (v.use_regex !== false) === useRegex;
}

/**
 * The llama.cpp pre-tokenizer name whose splitting equals a byte-level tokenizer.json
 * pre_tokenizer, or undefined when there is none.
 */
export function detectGGUFPre(preTokenizer: JSONValue | undefined): string | undefined {
  if (isByteLevel(preTokenizer, true)) return 'gpt-2';
  if (!isJSONObject(preTokenizer) || preTokenizer.type !== 'Sequence' || !Array.isArray(preTokenizer.pretokenizers)) return undefined;
  const items = preTokenizer.pretokenizers;
  if (items.length < 2 || !isByteLevel(items[items.length - 1], false)) return undefined;
  const regexes: string[] = [];
  for (const s of items.slice(0, -1)) {
    if (!isJSONObject(s) || s.type !== 'Split' || s.invert === true || s.behavior !== 'Isolated') return undefined;
    const pattern = s.pattern;
    if (!isJSONObject(pattern) || typeof pattern.Regex !== 'string') return undefined;
    regexes.push(normalizeRegex(pattern.Regex));
  }
  const same = (a: readonly string[]): boolean => a.length === regexes.length && a.every((r, i) => normalizeRegex(r) === regexes[i]);
  if (same(SPECS.qwen2.regexes)) return 'qwen2';
  if (same(SPECS.llama3.regexes)) return 'llama-bpe';
  if (same(SPECS.deepseek3.regexes)) return 'deepseek-v3';
  if (same(SPECS.default.regexes)) return 'default';
  if (same([GPT2])) return 'gpt-2';
  return undefined;
}
