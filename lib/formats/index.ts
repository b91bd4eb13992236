// Model file formats: GGUF, safetensors, Hugging Face folders, tokenizer vocabularies.

export * from './ggml-types';

/** Everything GGUF, including the tagged-value helpers: gguf.u32(5), gguf.f32(1e-6), gguf.strArr([...]). */
export * as gguf from './gguf';
export { readGGUF, writeGGUF, GGUFValueType } from './gguf';
export {
  findTensor, getArray, getBool, getNumber, getNumberArray, getOptionalBool, getOptionalNumber, getOptionalString,
  getOptionalUint, getString, getStringArray, getUint, getValue, hasKey, requireTensor,
} from './gguf';
export type {
  GGUFFile, GGUFMetadataInput, GGUFMetadataSource, GGUFScalar, GGUFTensorData, GGUFTensorInfo, GGUFTypedArray,
  GGUFTypedScalar, GGUFTypedValue, GGUFValue, GGUFWriteInput, GGUFWriteOptions, GGUFWriteProgress, GGUFWriteResult,
  GGUFWriteTensor,
} from './gguf';

export * from './safetensors';
export * from './hf';
export { isJSONObject, readJSONFile, readJSONObjectFile, readOptionalJSONFile } from './json';
export type { JSONObject, JSONValue } from './json';

/** Tokenizer vocabularies (GGUF-embedded, tokenizer.json conversion). */
export * as vocab from './vocab';
export { hfTokenizerToGGUFMetadata, readGGUFVocab, TokenType } from './vocab';
export type { GGUFVocab, HFToGGUFVocabOptions } from './vocab';
