// TypeScript types of the native 'elementwise' op family (native/ops/elementwise.cc).
import type { Tensor, ThreadOptions } from '../native';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ElementwiseOps {}

export type _UnusedElementwise = [Tensor, ThreadOptions];
