// TypeScript types of the native 'norm-rope' op family (native/ops/norm_rope.cc).
import type { Tensor, ThreadOptions } from '../native';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NormRopeOps {}

export type _UnusedNormRope = [Tensor, ThreadOptions];
