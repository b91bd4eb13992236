// safetensors: reading single files and sharded checkpoints, writing fixtures.

export * from './safetensors-types';
export { readSafetensors, readSafetensorsCheckpoint, requireFloatDtype } from './safetensors-read';
export { writeSafetensors, writeSafetensorsSharded } from './safetensors-write';
export type { SafetensorsWriteTensor, ShardedWriteOptions, ShardedWriteResult } from './safetensors-write';
