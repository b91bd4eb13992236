// Hugging Face model folders: config.json, safetensors weights (single or sharded), tokenizer.json,
// tokenizer_config.json (+ chat_template.jinja / chat_template.json), generation_config.json.

import { promises as fsp, Stats } from 'fs';
import * as path from 'path';
import { QuantMoeError } from '../errors';
import { isJSONObject, JSONObject, JSONValue, readJSONObjectFile, readOptionalJSONFile } from './json';
import { readSafetensorsCheckpoint } from './safetensors-read';
import { SafetensorsCheckpoint } from './safetensors-types';

/** config.json. Known fields are type-checked; everything else is kept as JSON. */
export interface HFConfig {
  readonly model_type: string;
  /** [] when the file has none. */
  readonly architectures: string[];
  readonly vocab_size?: number;
  readonly hidden_size?: number;
  readonly intermediate_size?: number;
  readonly moe_intermediate_size?: number;
  readonly shared_expert_intermediate_size?: number;
  readonly num_hidden_layers?: number;
  readonly num_attention_heads?: number;
  readonly num_key_value_heads?: number;
  readonly head_dim?: number;
  readonly max_position_embeddings?: number;
  readonly rms_norm_eps?: number;
  readonly rope_theta?: number;
  readonly num_experts?: number;
  readonly num_local_experts?: number;
  readonly n_routed_experts?: number;
  readonly n_shared_experts?: number;
  readonly num_experts_per_tok?: number;
  readonly tie_word_embeddings?: boolean;
  readonly norm_topk_prob?: boolean;
  readonly torch_dtype?: string;
  readonly bos_token_id?: number | number[] | null;
  readonly eos_token_id?: number | number[] | null;
  readonly pad_token_id?: number | null;
  readonly rope_scaling?: JSONObject | null;
  readonly quantization_config?: JSONObject;
  readonly [key: string]: JSONValue | undefined;
}

export interface HFGenerationConfig {
  readonly bos_token_id?: number | number[] | null;
  readonly eos_token_id?: number | number[] | null;
  readonly pad_token_id?: number | null;
  readonly [key: string]: JSONValue | undefined;
}

export interface HFTokenizerFiles {
  /** tokenizer.json as parsed. */
  readonly tokenizerJson: JSONObject;
  /** tokenizer_config.json as parsed ({} when absent). */
  readonly tokenizerConfig: JSONObject;
  /** The default chat template, if any. */
  readonly chatTemplate?: string;
  /** All named chat templates ('default' for a plain string template). */
  readonly chatTemplates: Readonly<Record<string, string>>;
}

export interface HFFolder {
  readonly dir: string;
  readonly config: HFConfig;
  /** Absent only when read with { weights: false }. */
  readonly weights?: SafetensorsCheckpoint;
  /** Absent when the folder has no tokenizer.json. */
  readonly tokenizer?: HFTokenizerFiles;
  readonly generationConfig?: HFGenerationConfig;
}

const NUMBER_FIELDS = [
  'vocab_size', 'hidden_size', 'intermediate_size', 'moe_intermediate_size', 'shared_expert_intermediate_size',
  'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'max_position_embeddings',
  'rms_norm_eps', 'rope_theta', 'num_experts', 'num_local_experts', 'n_routed_experts', 'n_shared_experts',
  'num_experts_per_tok',
] as const;
const BOOL_FIELDS = ['tie_word_embeddings', 'norm_topk_prob'] as const;

function bad(file: string, field: string, expected: string): QuantMoeError {
  return new QuantMoeError('E_FORMAT', `${path.basename(file)}: field "${field}" must be ${expected} (${file})`);
}

function isIdOrIds(v: JSONValue | undefined): boolean {
  return v === undefined || v === null || (typeof v === 'number' && Number.isInteger(v))
    || (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x)));
}

/** Validates a parsed config.json. */
export function parseHFConfig(json: JSONValue, file = 'config.json'): HFConfig {
  if (!isJSONObject(json)) throw new QuantMoeError('E_FORMAT', `${path.basename(file)}: expected a JSON object (${file})`);
  if (typeof json.model_type !== 'string' || json.model_type.length === 0) {
    throw bad(file, 'model_type', 'a non-empty string (e.g. "qwen2_moe"); the file is not a transformers config');
  }
  const arch = json.architectures;
  if (arch !== undefined && arch !== null && !(Array.isArray(arch) && arch.every((a) => typeof a === 'string'))) {
    throw bad(file, 'architectures', 'an array of strings');
  }
  for (const f of NUMBER_FIELDS) {
    const v = json[f];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isFinite(v))) throw bad(file, f, 'a number');
  }
  for (const f of BOOL_FIELDS) {
    const v = json[f];
    if (v !== undefined && v !== null && typeof v !== 'boolean') throw bad(file, f, 'a boolean');
  }
  for (const f of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
    if (!isIdOrIds(json[f])) throw bad(file, f, 'a token id, a list of ids or null');
  }
  for (const f of ['rope_scaling', 'quantization_config']) {
    const v = json[f];
    if (v !== undefined && v !== null && !isJSONObject(v)) throw bad(file, f, 'an object');
  }
  return { ...json, model_type: json.model_type, architectures: (arch ?? []) as string[] };
}

/** Normalises tokenizer_config.chat_template (a string or a list of {name, template}). */
export function parseChatTemplates(v: JSONValue | undefined, file: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (v === undefined || v === null) return out;
  if (typeof v === 'string') {
    out.default = v;
    return out;
  }
  if (Array.isArray(v)) {
    for (const item of v) {
      if (!isJSONObject(item) || typeof item.name !== 'string' || typeof item.template !== 'string') {
        throw bad(file, 'chat_template', 'a string or a list of {"name", "template"} objects');
      }
      out[item.name] = item.template;
    }
    return out;
  }
  throw bad(file, 'chat_template', 'a string or a list of {"name", "template"} objects');
}

async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new QuantMoeError('E_IO', `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** tokenizer.json and friends; undefined when the folder has no tokenizer.json. */
export async function readHFTokenizerFiles(dir: string): Promise<HFTokenizerFiles | undefined> {
  const tjFile = path.join(dir, 'tokenizer.json');
  const tj = await readOptionalJSONFile(tjFile);
  if (tj === undefined) return undefined;
  if (!isJSONObject(tj) || !isJSONObject(tj.model)) {
    throw new QuantMoeError('E_FORMAT', `tokenizer.json: expected an object with a "model" section (${tjFile})`);
  }
  const tcFile = path.join(dir, 'tokenizer_config.json');
  const tc = (await readOptionalJSONFile(tcFile)) ?? {};
  if (!isJSONObject(tc)) throw new QuantMoeError('E_FORMAT', `tokenizer_config.json: expected a JSON object (${tcFile})`);

  // Newer transformers save templates next to tokenizer_config.json; they take precedence.
  let templates = parseChatTemplates(tc.chat_template, tcFile);
  const ctJsonFile = path.join(dir, 'chat_template.json');
  const ctJson = await readOptionalJSONFile(ctJsonFile);
  if (ctJson !== undefined) {
    if (!isJSONObject(ctJson)) throw new QuantMoeError('E_FORMAT', `chat_template.json: expected a JSON object (${ctJsonFile})`);
    templates = { ...templates, ...parseChatTemplates(ctJson.chat_template, ctJsonFile) };
  }
  const jinja = await readTextIfExists(path.join(dir, 'chat_template.jinja'));
  if (jinja !== undefined) templates = { ...templates, default: jinja };
  const names = Object.keys(templates);
  const chatTemplate = templates.default ?? (names.length > 0 ? templates[names[0]] : undefined);
  return { tokenizerJson: tj, tokenizerConfig: tc, chatTemplate, chatTemplates: templates };
}

/**
 * Reads a Hugging Face model folder. config.json is required (E_FORMAT when missing or invalid);
 * weights are required unless `weights: false`; tokenizer and generation config are optional.
 */
export async function readHFFolder(dir: string, options: { weights?: boolean } = {}): Promise<HFFolder> {
  let st: Stats;
  try {
    st = await fsp.stat(dir);
  } catch {
    throw new QuantMoeError('E_IO', `cannot open ${dir}: no such directory`);
  }
  if (!st.isDirectory()) throw new QuantMoeError('E_IO', `${dir} is not a directory`);
  const configFile = path.join(dir, 'config.json');
  const rawConfig = await readOptionalJSONFile(configFile);
  if (rawConfig === undefined) {
    throw new QuantMoeError('E_FORMAT', `${dir}: config.json is missing; this is not a Hugging Face model folder`);
  }
  const config = parseHFConfig(rawConfig, configFile);
  const weights = options.weights === false ? undefined : await readSafetensorsCheckpoint(dir);
  const tokenizer = await readHFTokenizerFiles(dir);
  const genFile = path.join(dir, 'generation_config.json');
  const gen = await readOptionalJSONFile(genFile);
  let generationConfig: HFGenerationConfig | undefined;
  if (gen !== undefined) {
    if (!isJSONObject(gen)) throw new QuantMoeError('E_FORMAT', `generation_config.json: expected a JSON object (${genFile})`);
    for (const f of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
      if (!isIdOrIds(gen[f])) throw bad(genFile, f, 'a token id, a list of ids or null');
    }
    generationConfig = gen as HFGenerationConfig;
  }
  return { dir, config, weights, tokenizer, generationConfig };
}

/** Reads config.json alone. */
export async function readHFConfig(dir: string): Promise<HFConfig> {
  const file = path.join(dir, 'config.json');
  return parseHFConfig(await readJSONObjectFile(file), file);
}
