// Tokenizer vocabularies in model files: GGUF-embedded vocabularies and their tokenizer.json
// equivalents, and the conversion of a Hugging Face tokenizer.json into GGUF metadata.

export { byteLevelToBytes, bytesToByteLevel, isByteLevelToken } from './byte-level';
export { EOG_TOKEN_TEXTS, readGGUFVocab, TokenType } from './gguf-vocab';
export type { GGUFVocab } from './gguf-vocab';
export { ggufBpeToTokenizerJson } from './gguf-to-hf';
export { hfTokenizerToGGUFMetadata } from './hf-to-gguf';
export type { HFToGGUFVocabOptions } from './hf-to-gguf';
export { detectGGUFPre, preSpecForGGUF, preTokenizerJson, SUPPORTED_GGUF_PRE } from './pre-tokenizers';
export { partitionSpecial, sortSpecials } from './partition';
export type { Fragment, SpecialToken } from './partition';
export { SpmTokenizer } from './spm';
export type { SpmVocab } from './spm';
export { addedTokens, parseMerge, tokenContent } from './special';
export type { AddedTokenSpec } from './special';
