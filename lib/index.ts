// The public API of quantmoe. Everything a user imports comes from here.
export { QuantMoeError, isQuantMoeError } from './errors';
export type { ErrorCode } from './errors';
export { backends, resolveDevice, native } from './native';
export type {
  Backends, CudaDevice, DTypeName, DeviceName, IsaName, MappedFile, MatmulOptions, NativeAddon, Tensor, ThreadOptions,
} from './native';
export { matmul, tensorFromArray, tensorToFloat32 } from './tensor';

// Models: load, generate, chat, logits
export { Model, loadModel } from './runtime/model';
export type { Completion, GenerateOptions, GeneratedPiece, LoadOptions, ModelInfo } from './runtime/model';
export type { SamplingOptions } from './runtime/sampler';
export { Tokenizer } from './runtime/tokenizer';
export type { ChatMessage } from './runtime/tokenizer';
export type { ModelSpec, ArchName } from './models/spec';

// Files: GGUF / safetensors / Hugging Face folders, conversion
export { readGGUF, writeGGUF } from './formats/gguf';
export { readSafetensors, readSafetensorsCheckpoint, writeSafetensors } from './formats/safetensors';
export { readHFFolder } from './formats/hf';
export { convertHFToGGUF } from './convert/hf-to-gguf';
export type { ConvertOptions, ConvertType } from './convert/hf-to-gguf';
export { writeRandomHFModel } from './fixtures/random-model';
export { createServer, serve, type ServerOptions, type ServeOptions, type RunningServer } from './server/app';

// Evaluation: perplexity, KL divergence vs a base model, expert usage, attention capture
export { perplexity } from './eval/perplexity';
export type { PerplexityOptions, PerplexityProgress, PerplexityResult } from './eval/perplexity';
export { compareModels } from './eval/compare';
export type { CompareOptions, CompareResult } from './eval/compare';
export { expertUsage } from './eval/experts';
export type { ExpertUsage, ExpertUsageOptions, LayerUsage } from './eval/experts';
export { heatmapLayout, renderExpertHeatmap, writeExpertHeatmap } from './eval/heatmap';
export type { HeatmapLayout, HeatmapOptions } from './eval/heatmap';
export { captureAttention, sparseAttentionReport, writeAttentionDump } from './eval/attention';
export type {
  AttentionCapture, AttentionDumpManifest, AttentionShape, CaptureOptions, CapturedLayer, SparseGroupReport, SparseLayerReport,
  SparseReportOptions,
} from './eval/attention';
export type { EvalOptions, EvalProgress, EvalText } from './eval/common';
