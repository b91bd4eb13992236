// TypeScript types of the native 'elementwise' op family (native/ops/elementwise.cc).
import type { Tensor } from '../native';

export type GatedActivation = 'silu' | 'gelu' | 'gelu_tanh';

export interface ElementwiseOps {
  /** a + b (same-shape f32); `out` may be `a` for in-place. */
  add(a: Tensor, b: Tensor, options?: { out?: Tensor }): Tensor;
  /** x[..., j] += bias[j], in place; returns x. */
  addRowBias(x: Tensor, bias: Tensor): Tensor;
  /** act(gate) · up, element-wise. */
  gatedAct(gate: Tensor, up: Tensor, options?: { activation?: GatedActivation; out?: Tensor }): Tensor;
  /** a · s */
  scale(a: Tensor, s: number, options?: { out?: Tensor }): Tensor;
  /** The same memory seen with another shape of equal byte size (zero-copy). */
  view(t: Tensor, shape: number[]): Tensor;
  /** Rows [start, end) of dimension 0 (zero-copy). */
  slice(t: Tensor, start: number, end: number): Tensor;
}
