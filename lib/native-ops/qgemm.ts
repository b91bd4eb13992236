// TypeScript types of the native 'qgemm' op family (native/ops/qgemm.cc).
import type { Tensor, ThreadOptions } from '../native';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface QgemmOps {}

export type _UnusedQgemm = [Tensor, ThreadOptions];
