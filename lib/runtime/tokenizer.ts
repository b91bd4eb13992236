// The runtime's tokenizer: text ↔ token ids, streaming detokenization that never splits a UTF-8
// character, and chat templates. Sources:
//  - a Hugging Face folder (tokenizer.json + tokenizer_config.json), run by @huggingface/tokenizers;
//  - a GGUF file's embedded vocabulary: "gpt2" (byte-level BPE) is rebuilt as a tokenizer.json and
//    run by @huggingface/tokenizers; "llama" (SentencePiece BPE with scores) runs llama.cpp's
//    algorithm (formats/vocab/spm.ts).
// Decoding works on bytes: each token stands for a byte string (byte-level alphabet, "▁" → space,
// <0xNN> byte tokens, added tokens verbatim), so a TextDecoder in stream mode holds back a
// partial character until the token completing it arrives.

import { Template } from '@huggingface/jinja';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import * as path from 'path';
import { QuantMoeError } from '../errors';
import { readGGUF } from '../formats/gguf-read';
import { GGUFMetadataSource } from '../formats/gguf-meta';
import { GGUFFile } from '../formats/gguf-types';
import { HFGenerationConfig, parseChatTemplates, readHFTokenizerFiles } from '../formats/hf';
import { isJSONObject, JSONObject, JSONValue, readOptionalJSONFile } from '../formats/json';
import { byteLevelToBytes } from '../formats/vocab/byte-level';
import { ggufBpeToTokenizerJson } from '../formats/vocab/gguf-to-hf';
import { EOG_TOKEN_TEXTS, GGUFVocab, readGGUFVocab, TokenType } from '../formats/vocab/gguf-vocab';
import { partitionSpecial, sortSpecials, SpecialToken } from '../formats/vocab/partition';
import { addedTokens, tokenContent } from '../formats/vocab/special';
import { SpmTokenizer } from '../formats/vocab/spm';

export interface EncodeOptions {
  /** Prepend BOS; default: what the model's tokenizer does (add_bos_token). */
  readonly addBos?: boolean;
  /** Append EOS; default: add_eos_token (normally false). */
  readonly addEos?: boolean;
  /** Match control tokens such as "<|im_start|>" in the text (default true). User-defined tokens always match. */
  readonly parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop control tokens (BOS, EOS, <|im_end|>, ...) from the text. */
  readonly skipSpecialTokens?: boolean;
}

export interface DecoderStream {
  /** Adds a token; returns the text completed by it (possibly ''), never a partial character. */
  push(id: number): string;
  /** Ends the stream; returns held-back bytes (an incomplete character decodes as U+FFFD). */
  flush(): string;
  /** All text returned so far. */
  readonly text: string;
}

export interface ChatMessage {
  readonly role: string;
  readonly content?: unknown;
  readonly [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** End with the assistant turn's opening (add_generation_prompt). */
  readonly addGenerationPrompt?: boolean;
  /** A named template of the model (e.g. 'tool_use'); default: its default template. */
  readonly templateName?: string;
  /** Template source to use instead of the model's. */
  readonly template?: string;
  /** Extra template variables (tools, enable_thinking, ...). */
  readonly variables?: Readonly<Record<string, unknown>>;
}

type PieceMode = 'byte-level' | 'spm' | 'generic';

interface Parts {
  readonly source: string;
  readonly tokens: readonly string[];
  /** Control tokens: verbatim pieces, dropped by skipSpecialTokens. */
  readonly specialIds: ReadonlySet<number>;
  /** Tokens whose piece is their text verbatim (added / user-defined). */
  readonly verbatimIds: ReadonlySet<number>;
  /** Tokens that decode to nothing (GGUF UNUSED). */
  readonly emptyIds: ReadonlySet<number>;
  readonly mode: PieceMode;
  readonly byteFallback: boolean;
  readonly stripLeadingSpace: boolean;
  readonly encodeRaw: (text: string, parseSpecial: boolean) => number[];
  readonly genericDecode?: (ids: number[], skipSpecial: boolean) => string;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly stopIds: readonly number[];
  readonly chatTemplates: Readonly<Record<string, string>>;
  readonly bosToken?: string;
  readonly eosToken?: string;
}

const utf8 = new TextEncoder();
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

export class Tokenizer {
  /** Where the vocabulary came from (file or folder), for messages. */
  readonly source: string;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** Ids that end generation: EOS plus end-of-turn tokens (generation_config, <|im_end|>, ...). */
  readonly stopIds: readonly number[];
  /** Whether encode() prepends BOS by default. */
  readonly addBosDefault: boolean;
  readonly addEosDefault: boolean;
  /** The default chat template, if the model has one. */
  readonly chatTemplate: string | undefined;
  readonly chatTemplates: Readonly<Record<string, string>>;

  private readonly pieces: (Uint8Array | undefined)[];
  private readonly templates = new Map<string, Template>();
  private idsByText: Map<string, number> | undefined;

  private constructor(private readonly p: Parts) {
    this.source = p.source;
    this.vocabSize = p.tokens.length;
    this.bosId = p.bosId;
    this.eosId = p.eosId;
    this.stopIds = Object.freeze([...p.stopIds]);
    this.addBosDefault = p.addBos && p.bosId !== undefined;
    this.addEosDefault = p.addEos && p.eosId !== undefined;
    this.chatTemplates = p.chatTemplates;
    this.chatTemplate = p.chatTemplates.default ?? Object.values(p.chatTemplates)[0];
    this.pieces = new Array<Uint8Array | undefined>(p.tokens.length);
  }

  // ---- construction --------------------------------------------------------------------------

  /** From a Hugging Face folder holding tokenizer.json (+ tokenizer_config.json, generation_config.json). */
  static async fromHFFolder(dir: string): Promise<Tokenizer> {
    const files = await readHFTokenizerFiles(dir);
    if (files === undefined) {
      throw new QuantMoeError('E_FORMAT', `${dir}: tokenizer.json is missing (slow SentencePiece-only tokenizers are not supported)`);
    }
    const gen = await readOptionalJSONFile(path.join(dir, 'generation_config.json'));
    const cfg = await readOptionalJSONFile(path.join(dir, 'config.json'));
    return Tokenizer.fromHFJson(files.tokenizerJson, files.tokenizerConfig, {
      chatTemplates: files.chatTemplates,
      generationConfig: isJSONObject(gen) ? gen : undefined,
      config: isJSONObject(cfg) ? cfg : undefined,
      source: dir,
    });
  }

  /** From parsed tokenizer.json / tokenizer_config.json objects. */
  static fromHFJson(tokenizerJson: JSONObject, tokenizerConfig: JSONObject = {}, options: {
    readonly chatTemplates?: Readonly<Record<string, string>>;
    readonly generationConfig?: HFGenerationConfig | JSONObject;
    readonly config?: JSONObject;
    readonly source?: string;
  } = {}): Tokenizer {
    const source = options.source ?? 'tokenizer.json';
    const backend = new HFBackend(tokenizerJson, tokenizerConfig, source);
    const tokens = backend.tokens;
    const added = addedTokens(tokenizerJson.added_tokens);
    const { mode, byteFallback, strip } = decoderMode(tokenizerJson.decoder);
    const idOf = (t: string | undefined): number | undefined => (t === undefined ? undefined : backend.tokenId(t));
    const numId = (v: JSONValue | undefined): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < tokens.length ? v : undefined);
    const firstId = (v: JSONValue | undefined): number | undefined => numId(Array.isArray(v) ? v[0] : v);
    const bosText = tokenContent(tokenizerConfig.bos_token);
    const eosText = tokenContent(tokenizerConfig.eos_token);
    const gen = options.generationConfig ?? {};
    const cfg = options.config ?? {};
    const bosId = idOf(bosText) ?? firstId(gen.bos_token_id) ?? firstId(cfg.bos_token_id);
    const eosId = idOf(eosText) ?? firstId(gen.eos_token_id) ?? firstId(cfg.eos_token_id);
    const specialIds = new Set(added.filter((a) => a.special).map((a) => a.id));
    const stop = new Set<number>();
    if (eosId !== undefined) stop.add(eosId);
    for (const v of [gen.eos_token_id, cfg.eos_token_id]) {
      for (const x of Array.isArray(v) ? v : [v]) {
        const id = numId(x);
        if (id !== undefined) stop.add(id);
      }
    }
    for (const a of added) if (a.special && EOG_TOKEN_TEXTS.has(a.content)) stop.add(a.id);
    const probe = backend.probeSpecials(bosId, eosId);
    return new Tokenizer({
      source, tokens, specialIds,
      verbatimIds: new Set(added.map((a) => a.id)),
      emptyIds: new Set(),
      mode, byteFallback, stripLeadingSpace: strip,
      encodeRaw: (text, parseSpecial) => backend.encode(text, parseSpecial),
      genericDecode: (ids, skip) => backend.decode(ids, skip),
      bosId, eosId,
      addBos: typeof tokenizerConfig.add_bos_token === 'boolean' ? tokenizerConfig.add_bos_token : probe.bos,
      addEos: typeof tokenizerConfig.add_eos_token === 'boolean' ? tokenizerConfig.add_eos_token : probe.eos,
      stopIds: [...stop],
      chatTemplates: options.chatTemplates ?? parseChatTemplates(tokenizerConfig.chat_template, `${source}/tokenizer_config.json`),
      bosToken: bosText ?? (bosId !== undefined ? tokens[bosId] : undefined),
      eosToken: eosText ?? (eosId !== undefined ? tokens[eosId] : undefined),
    });
  }

  /** From a GGUF file (path or a file already read) with an embedded vocabulary. */
  static async fromGGUF(file: string | GGUFFile): Promise<Tokenizer> {
    return Tokenizer.fromGGUFMetadata(typeof file === 'string' ? await readGGUF(file) : file);
  }

  /** From GGUF metadata (tokenizer.ggml.*). E_UNSUPPORTED for vocabulary kinds other than gpt2/llama. */
  static fromGGUFMetadata(src: GGUFMetadataSource): Tokenizer {
    const vocab = readGGUFVocab(src);
    const source = src.path;
    const types = vocab.tokenTypes;
    const idsOfType = (...ts: number[]): number[] => types.flatMap((t, i) => (ts.includes(t) ? [i] : []));
    const specialIds = new Set(idsOfType(TokenType.CONTROL, TokenType.UNKNOWN));
    const verbatimIds = new Set(idsOfType(TokenType.CONTROL, TokenType.UNKNOWN, TokenType.USER_DEFINED));
    const stop = new Set<number>();
    for (const id of [vocab.eosId, vocab.eotId, vocab.eomId]) if (id !== undefined) stop.add(id);
    vocab.tokens.forEach((t, i) => { if (EOG_TOKEN_TEXTS.has(t)) stop.add(i); });
    const common = {
      source, tokens: vocab.tokens, specialIds, verbatimIds, emptyIds: new Set(idsOfType(TokenType.UNUSED)),
      bosId: vocab.bosId, eosId: vocab.eosId, addBos: vocab.addBos, addEos: vocab.addEos, stopIds: [...stop],
      chatTemplates: vocab.chatTemplates,
      bosToken: vocab.bosId !== undefined ? vocab.tokens[vocab.bosId] : undefined,
      eosToken: vocab.eosId !== undefined ? vocab.tokens[vocab.eosId] : undefined,
    };
    if (vocab.model === 'gpt2') {
      const backend = new HFBackend(ggufBpeToTokenizerJson(vocab, path.basename(source)), {}, source);
      return new Tokenizer({
        ...common, mode: 'byte-level', byteFallback: false, stripLeadingSpace: false,
        encodeRaw: (text, parseSpecial) => backend.encode(text, parseSpecial),
      });
    }
    if (vocab.model === 'llama') {
      return new Tokenizer({
        ...common, mode: 'spm', byteFallback: true, stripLeadingSpace: vocab.addSpacePrefix,
        encodeRaw: spmEncoder(vocab, source),
      });
    }
    throw new QuantMoeError('E_UNSUPPORTED',
      `${path.basename(source)}: tokenizer model '${vocab.model}' is not supported (supported: gpt2, llama)`);
  }

  // ---- encode / decode -----------------------------------------------------------------------

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new QuantMoeError('E_ARGUMENT', `encode: text must be a string, got ${typeof text}`);
    const ids = this.p.encodeRaw(text, options.parseSpecial ?? true);
    if (options.addBos ?? this.addBosDefault) {
      if (this.bosId === undefined) throw new QuantMoeError('E_ARGUMENT', `encode: addBos requested but ${this.source} has no BOS token`);
      ids.unshift(this.bosId);
    }
    if (options.addEos ?? this.addEosDefault) {
      if (this.eosId === undefined) throw new QuantMoeError('E_ARGUMENT', `encode: addEos requested but ${this.source} has no EOS token`);
      ids.push(this.eosId);
    }
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    this.checkIds(ids, 'decode');
    if (ids.length === 0) return '';
    const skip = options.skipSpecialTokens ?? false;
    if (this.p.mode === 'generic' && this.p.genericDecode) return this.p.genericDecode(ids.filter((id) => id < this.vocabSize), skip);
    const parts: Uint8Array[] = [];
    for (const id of ids) if (!(skip && this.p.specialIds.has(id))) parts.push(this.tokenBytes(id));
    const text = new TextDecoder().decode(Buffer.concat(parts));
    return this.p.stripLeadingSpace && text.startsWith(' ') ? text.slice(1) : text;
  }

  /** Streaming detokenizer for generated ids (no leading-space stripping). */
  createDecoderStream(options: DecodeOptions = {}): DecoderStream {
    const skip = options.skipSpecialTokens ?? false;
    if (this.p.mode === 'generic') return this.genericStream(skip);
    const dec = new TextDecoder('utf-8', { fatal: false });
    let text = '';
    return {
      push: (id: number): string => {
        this.checkIds([id], 'decoder stream');
        if (skip && this.p.specialIds.has(id)) return '';
        const s = dec.decode(this.tokenBytes(id), { stream: true });
        text += s;
        return s;
      },
      flush: (): string => {
        const s = dec.decode();
        text += s;
        return s;
      },
      get text(): string { return text; },
    };
  }

  /** Generic decoders: decode everything so far, emit the part that can no longer change. */
  private genericStream(skip: boolean): DecoderStream {
    const ids: number[] = [];
    let text = '';
    const step = (final: boolean): string => {
      let full = ids.length > 0 ? this.decode(ids, { skipSpecialTokens: skip }) : '';
      if (!final) full = full.replace(/\uFFFD+$/u, '');
      if (!full.startsWith(text)) return '';
      const out = full.slice(text.length);
      text = full;
      return out;
    };
    return {
      push: (id: number): string => {
        this.checkIds([id], 'decoder stream');
        ids.push(id);
        return step(false);
      },
      flush: (): string => step(true),
      get text(): string { return text; },
    };
  }

  /** The token's vocabulary entry as spelled in the vocabulary ("Ġhello", "▁hello", "<0x0A>"). */
  tokenText(id: number): string {
    this.checkIds([id], 'tokenText');
    return this.p.tokens[id];
  }

  /** The bytes a token decodes to. */
  tokenBytes(id: number): Uint8Array {
    let b = this.pieces[id];
    if (b === undefined) {
      b = this.computePiece(id);
      this.pieces[id] = b;
    }
    return b;
  }

  /** The id of a vocabulary entry spelled exactly `text`, if any. */
  tokenId(text: string): number | undefined {
    if (this.idsByText === undefined) {
      const m = new Map<string, number>();
      this.p.tokens.forEach((t, i) => { if (!m.has(t)) m.set(t, i); });
      this.idsByText = m;
    }
    return this.idsByText.get(text);
  }

  isSpecial(id: number): boolean {
    return this.p.specialIds.has(id);
  }

  private computePiece(id: number): Uint8Array {
    const t = this.p.tokens[id] ?? '';
    if (this.p.emptyIds.has(id)) return new Uint8Array(0);
    if (this.p.verbatimIds.has(id)) return utf8.encode(t);
    if (this.p.mode === 'byte-level') return byteLevelToBytes(t);
    if (this.p.mode === 'spm') {
      const m = this.p.byteFallback ? BYTE_TOKEN.exec(t) : null;
      if (m) return Uint8Array.of(parseInt(m[1], 16));
      return utf8.encode(t.replaceAll('▁', ' '));
    }
    return utf8.encode(this.decode([id]));
  }

  /**
   * Models often have more embedding rows than the tokenizer has tokens (padding, e.g. Qwen's
   * 151936 vs 151665). Ids in [vocabSize, n) are then valid and decode to nothing.
   */
  padToModelVocab(n: number): void {
    this.modelVocab = Math.max(this.vocabSize, n);
  }

  private modelVocab = 0;

  private checkIds(ids: readonly number[], where: string): void {
    if (!Array.isArray(ids)) throw new QuantMoeError('E_ARGUMENT', `${where}: ids must be an array of token ids`);
    const limit = Math.max(this.vocabSize, this.modelVocab);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= limit) {
        throw new QuantMoeError('E_TOKEN_RANGE', `${where}: token id ${String(id)} is outside the vocabulary [0, ${limit}) of ${this.source}`);
      }
    }
  }

  // ---- chat templates ------------------------------------------------------------------------

  /** Renders messages with the model's chat template (Jinja, via @huggingface/jinja). */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!Array.isArray(messages) || !messages.every((m) => typeof m === 'object' && m !== null && typeof m.role === 'string')) {
      throw new QuantMoeError('E_ARGUMENT', 'applyChatTemplate: messages must be an array of { role: string, content } objects');
    }
    let src = options.template;
    if (src === undefined && options.templateName !== undefined) {
      src = this.chatTemplates[options.templateName];
      if (src === undefined) {
        throw new QuantMoeError('E_ARGUMENT', `applyChatTemplate: ${this.source} has no chat template named '${options.templateName}' (has: ${Object.keys(this.chatTemplates).join(', ') || 'none'})`);
      }
    }
    src ??= this.chatTemplate;
    if (src === undefined) {
      throw new QuantMoeError('E_UNSUPPORTED', `applyChatTemplate: ${this.source} has no chat template; pass options.template`);
    }
    let tpl = this.templates.get(src);
    if (tpl === undefined) {
      try {
        tpl = new Template(src);
      } catch (e) {
        throw new QuantMoeError('E_FORMAT', `chat template of ${this.source} does not parse: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      this.templates.set(src, tpl);
    }
    try {
      return tpl.render({
        bos_token: this.p.bosToken ?? '',
        eos_token: this.p.eosToken ?? '',
        ...options.variables,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
      });
    } catch (e) {
      throw new QuantMoeError('E_ARGUMENT', `chat template of ${this.source} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

// ---- helpers ---------------------------------------------------------------------------------

/** How a tokenizer.json decoder turns tokens into text. */
function decoderMode(decoder: JSONValue | undefined): { mode: PieceMode; byteFallback: boolean; strip: boolean } {
  const flat: JSONObject[] = [];
  const walk = (d: JSONValue | undefined): void => {
    if (!isJSONObject(d)) return;
    if (d.type === 'Sequence' && Array.isArray(d.decoders)) d.decoders.forEach(walk);
    else flat.push(d);
  };
  walk(decoder);
  const types = flat.map((d) => d.type);
  if (types.includes('ByteLevel')) return { mode: 'byte-level', byteFallback: false, strip: false };
  const replacesMeta = flat.some((d) => d.type === 'Replace' && isJSONObject(d.pattern) && d.pattern.String === '▁' && d.content === ' ');
  const known = new Set(['ByteFallback', 'Fuse', 'Strip', 'Replace', 'Metaspace']);
  if ((replacesMeta || types.includes('Metaspace')) && types.every((t) => typeof t === 'string' && known.has(t))) {
    const strip = types.includes('Metaspace')
      || flat.some((d) => d.type === 'Strip' && d.content === ' ' && typeof d.start === 'number' && d.start > 0);
    return { mode: 'spm', byteFallback: types.includes('ByteFallback'), strip };
  }
  return { mode: 'generic', byteFallback: false, strip: false };
}

/** llama.cpp's SPM tokenize(): special-token partition, "▁" prefix after specials, escaping. */
function spmEncoder(vocab: GGUFVocab, source: string): (text: string, parseSpecial: boolean) => number[] {
  if (vocab.scores === undefined) {
    throw new QuantMoeError('E_FORMAT', `${path.basename(source)}: SentencePiece vocabulary without tokenizer.ggml.scores (${source})`);
  }
  const spm = new SpmTokenizer({ tokens: vocab.tokens, scores: vocab.scores, unkId: vocab.unkId });
  const list = (types: number[]): SpecialToken[] =>
    sortSpecials(vocab.tokenTypes.flatMap((t, id) => (types.includes(t) ? [{ id, text: vocab.tokens[id] }] : [])));
  const withControl = list([TokenType.CONTROL, TokenType.UNKNOWN, TokenType.USER_DEFINED]);
  const userOnly = list([TokenType.USER_DEFINED]);
  return (text, parseSpecial) => {
    const out: number[] = [];
    let prevSpecial = true;
    for (const f of partitionSpecial(text, parseSpecial ? withControl : userOnly)) {
      if ('id' in f) {
        out.push(f.id);
        prevSpecial = true;
        continue;
      }
      const t = (vocab.addSpacePrefix && prevSpecial ? ' ' : '') + f.text;
      spm.encode(t.replaceAll(' ', '▁'), out);
      prevSpecial = false;
    }
    return out;
  };
}

/** @huggingface/tokenizers behind a small interface; a second instance without special added tokens serves parseSpecial: false. */
class HFBackend {
  readonly tokens: string[];
  private readonly full: HFTokenizer;
  private plain: HFTokenizer | undefined;
  private readonly ids = new Map<string, number>();

  constructor(private readonly json: JSONObject, private readonly config: JSONObject, private readonly source: string) {
    this.full = this.create(json);
    const vocab = this.full.get_vocab(true);
    const tokens: string[] = [];
    for (const [t, id] of vocab) {
      if (typeof t === 'string' && Number.isInteger(id) && id >= 0) {
        tokens[id] = t;
        if (!this.ids.has(t)) this.ids.set(t, id);
      }
    }
    for (let i = 0; i < tokens.length; i++) tokens[i] ??= '';
    this.tokens = tokens;
  }

  private create(json: JSONObject): HFTokenizer {
    if (!isJSONObject(json.model)) {
      throw new QuantMoeError('E_FORMAT', `${this.source}: tokenizer.json has no "model" section`);
    }
    const full: JSONObject = {
      normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null,
      ...json,
      added_tokens: Array.isArray(json.added_tokens) ? json.added_tokens : [],
    };
    try {
      return new HFTokenizer(full, this.config);
    } catch (e) {
      throw new QuantMoeError('E_FORMAT', `${this.source}: tokenizer.json cannot be loaded: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  tokenId(text: string): number | undefined {
    return this.ids.get(text);
  }

  encode(text: string, parseSpecial: boolean): number[] {
    let tk = this.full;
    if (!parseSpecial) {
      this.plain ??= this.create({ ...this.json, added_tokens: addedTokensJson(this.json, false) });
      tk = this.plain;
    }
    return tk.encode(text, { add_special_tokens: false }).ids.filter((id) => Number.isInteger(id));
  }

  decode(ids: number[], skipSpecial: boolean): string {
    return this.full.decode(ids, { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: false });
  }

  /** Whether the tokenizer's post-processor adds BOS / EOS (when tokenizer_config does not say). */
  probeSpecials(bosId: number | undefined, eosId: number | undefined): { bos: boolean; eos: boolean } {
    try {
      const a = this.full.encode('a', { add_special_tokens: true }).ids;
      const b = this.full.encode('a', { add_special_tokens: false }).ids;
      return {
        bos: bosId !== undefined && a.length > b.length && a[0] === bosId,
        eos: eosId !== undefined && a.length > b.length && a[a.length - 1] === eosId,
      };
    } catch {
      return { bos: false, eos: false };
    }
  }
}

function addedTokensJson(json: JSONObject, special: boolean): JSONValue[] {
  const v = json.added_tokens;
  if (!Array.isArray(v)) return [];
  return v.filter((t) => isJSONObject(t) && (t.special === true) === special);
}
