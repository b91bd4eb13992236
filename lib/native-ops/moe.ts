// TypeScript types of the native 'moe' op family (native/ops/moe.cc).
import type { Tensor, ThreadOptions } from '../native';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface MoeOps {}

export type _UnusedMoe = [Tensor, ThreadOptions];
