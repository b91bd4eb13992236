// TypeScript types of the native 'attention' op family (native/ops/attention.cc).
import type { Tensor, ThreadOptions } from '../native';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface AttentionOps {}

export type _UnusedAttention = [Tensor, ThreadOptions];
