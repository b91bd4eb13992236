// GGUF: one import for reading, writing and metadata access, e.g.
//   import * as gguf from './formats/gguf';
//   await gguf.writeGGUF(p, { metadata: { 'general.architecture': 'qwen2moe', 'qwen2moe.block_count': gguf.u32(2) }, tensors });
//   const f = await gguf.readGGUF(p); gguf.getUint(f, 'qwen2moe.block_count');

export * from './gguf-types';
export { readGGUF } from './gguf-read';
export { writeGGUF } from './gguf-write';
export type { GGUFTensorData, GGUFWriteInput, GGUFWriteOptions, GGUFWriteProgress, GGUFWriteResult, GGUFWriteTensor } from './gguf-write';
export * from './gguf-meta';
