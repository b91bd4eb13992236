// TypeScript types of the native 'routing' op family (native/ops/routing.cc).
import type { Tensor, ThreadOptions } from '../native';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface RoutingOps {}

export type _UnusedRouting = [Tensor, ThreadOptions];
