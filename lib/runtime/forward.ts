// The forward pass, top to bottom, generic over every architecture a ModelSpec describes:
//   embed → for each layer: norm → attention (q/k/v, q/k norm, RoPE, KV cache) → residual →
//   norm → MoE (route → grouped expert GEMMs → weighted combine, + shared expert) or dense FFN →
//   residual → final norm → logits.
// One call runs either a chunk of one sequence (prefill, positions start..start+T-1) or one new
// token for each of B sequences (batched decode). Every intermediate is a native tensor, freed
// at the end of the layer that made it.
import { QuantMoeError } from '../errors';
import type { ModelSpec } from '../models/spec';
import { blk } from '../models/names';
import { native } from '../native';
import type { Tensor } from '../native';
import type { KvCache } from '../native-ops/attention';
import type { WeightStore } from './weights';

/** Tensors made during one step, disposed together. */
class Scratch {
  private readonly list: Tensor[] = [];
  keep<T extends Tensor>(t: T): T {
    this.list.push(t);
    return t;
  }
  dispose(): void {
    for (const t of this.list) t.dispose();
    this.list.length = 0;
  }
}

export type StepInput =
  | { kind: 'prefill'; seq: number; tokens: Int32Array; startPos: number }
  | { kind: 'decode'; seqs: Int32Array; tokens: Int32Array; positions: Int32Array };

export interface StepOptions {
  /** Rows whose logits are wanted: 'last' (prefill default), 'all'. Decode always returns all rows. */
  logits: 'last' | 'all';
  /** Collect tokens-per-expert counts into this array of per-layer arrays. */
  expertCounts?: Int32Array[];
  /**
   * Observes each layer's attention: q [T, Hq, D] and k/v [T, Hkv, D] after q/k-norm and RoPE
   * (exactly what attention consumes) and its output [T, Hq, D]. The tensors are freed when the
   * layer ends: copy what you keep (toArrayBuffer). Must not modify them.
   */
  capture?: (layer: number, q: Tensor, k: Tensor, v: Tensor, out: Tensor) => void;
}

export class Forward {
  constructor(
    readonly spec: ModelSpec,
    private readonly w: WeightStore,
    readonly cache: KvCache,
    readonly threads: number,
  ) {}

  /** Runs one step; returns logits [rows × vocab] row-major. */
  step(input: StepInput, opts: StepOptions): Float32Array {
    const s = this.spec;
    const n = native();
    const threads = this.threads;
    const tokens = input.tokens;
    const T = tokens.length;
    if (T === 0) return new Float32Array(0);
    for (const id of tokens) {
      if (!(id >= 0 && id < s.vocabSize)) throw new QuantMoeError('E_TOKEN_RANGE', `token id ${id} is outside the vocabulary [0, ${s.vocabSize})`);
    }
    const positions = input.kind === 'prefill'
      ? Int32Array.from({ length: T }, (_, i) => input.startPos + i)
      : input.positions;

    let x = n.getRows(this.w.get('token_embd.weight'), tokens);
    for (let l = 0; l < s.layers; l++) {
      const tmp = new Scratch();
      // --- attention ---
      const h = tmp.keep(n.rmsNorm(x, this.w.get(blk(l, 'attn_norm.weight')), { eps: s.normEps, threads }));
      const q = tmp.keep(this.linear(h, blk(l, 'attn_q')));
      const k = tmp.keep(this.linear(h, blk(l, 'attn_k')));
      const v = tmp.keep(this.linear(h, blk(l, 'attn_v')));
      const q3 = tmp.keep(n.view(q, [T, s.heads, s.headDim]));
      const k3 = tmp.keep(n.view(k, [T, s.kvHeads, s.headDim]));
      const v3 = tmp.keep(n.view(v, [T, s.kvHeads, s.headDim]));
      if (s.qkNorm !== 'none') {
        n.headRmsNorm(q3, this.w.get(blk(l, 'attn_q_norm.weight')), { eps: s.normEps, inPlace: true, threads });
        n.headRmsNorm(k3, this.w.get(blk(l, 'attn_k_norm.weight')), { eps: s.normEps, inPlace: true, threads });
      }
      const rope = { theta: s.ropeTheta, ropeDim: s.ropeDim, style: s.ropeStyle, scaling: s.ropeScaling, inPlace: true, threads };
      n.rope(q3, positions, rope);
      n.rope(k3, positions, rope);
      let att: Tensor;
      if (input.kind === 'prefill') {
        n.kvCacheWrite(this.cache, l, input.seq, input.startPos, k3, v3, { threads: T >= 64 ? threads : 1 });
        att = tmp.keep(n.attention(q3, this.cache, l, input.seq, { startPos: input.startPos, threads }));
      } else {
        for (let b = 0; b < T; b++) {
          const kb = n.slice(k3, b, b + 1);
          const vb = n.slice(v3, b, b + 1);
          n.kvCacheWrite(this.cache, l, input.seqs[b], input.positions[b], kb, vb, { threads: 1 }); // a copy: not worth a thread wake-up
          kb.dispose();
          vb.dispose();
        }
        att = tmp.keep(n.attentionDecodeBatch(q3, this.cache, l, input.seqs, input.positions, { threads }));
      }
      opts.capture?.(l, q3, k3, v3, att);
      const o = tmp.keep(this.linear(tmp.keep(n.view(att, [T, s.heads * s.headDim])), blk(l, 'attn_output')));
      n.add(x, o, { out: x });
      // --- feed-forward ---
      const h2 = tmp.keep(n.rmsNorm(x, this.w.get(blk(l, 'ffn_norm.weight')), { eps: s.normEps, threads }));
      const y = tmp.keep(s.ffnKinds[l] === 'moe' ? this.moe(l, h2, opts.expertCounts) : this.denseFfn(l, h2, tmp));
      n.add(x, y, { out: x });
      tmp.dispose();
    }

    const rows = opts.logits === 'last' && input.kind === 'prefill' ? n.slice(x, T - 1, T) : x;
    const xn = n.rmsNorm(rows, this.w.get('output_norm.weight'), { eps: s.normEps, threads });
    const head = this.w.opt('output.weight') ?? this.w.get('token_embd.weight');
    const logits = n.qmatmul(xn, head, { threads });
    const out = new Float32Array(logits.toArrayBuffer());
    for (const t of [logits, xn, x]) t.dispose();
    if (rows !== x) rows.dispose();
    return out;
  }

  /** y = x·Wᵀ (+ bias when the file has one). */
  private linear(x: Tensor, name: string): Tensor {
    const y = native().qmatmul(x, this.w.get(`${name}.weight`), { threads: this.threads });
    const bias = this.w.opt(`${name}.bias`);
    if (bias) native().addRowBias(y, bias);
    return y;
  }

  private denseFfn(l: number, h: Tensor, tmp: Scratch): Tensor {
    const g = tmp.keep(this.linear(h, blk(l, 'ffn_gate')));
    const u = tmp.keep(this.linear(h, blk(l, 'ffn_up')));
    const a = tmp.keep(native().gatedAct(g, u, { activation: this.spec.activation, out: g }));
    return this.linear(a, blk(l, 'ffn_down'));
  }

  private moe(l: number, h: Tensor, counts?: Int32Array[]): Tensor {
    const s = this.spec;
    const m = s.moe!;
    const w = this.w;
    let shared;
    if (m.sharedFfn > 0) {
      const gate = w.opt(blk(l, 'ffn_gate_inp_shexp.weight'));
      shared = {
        gate: w.get(blk(l, 'ffn_gate_shexp.weight')),
        up: w.get(blk(l, 'ffn_up_shexp.weight')),
        down: w.get(blk(l, 'ffn_down_shexp.weight')),
        gateWeight: gate && gate.shape.length === 1 ? native().view(gate, [1, gate.shape[0]]) : gate,
      };
    }
    const r = native().moe(h, {
      routerWeight: w.get(blk(l, 'ffn_gate_inp.weight')),
      topK: m.topk,
      func: m.routing,
      normTopk: m.normTopk,
      routedScalingFactor: m.routedScaling,
      correctionBias: w.opt(blk(l, 'exp_probs_b.bias')),
      experts: {
        gate: w.experts(l, 'gate', m.experts),
        up: w.experts(l, 'up', m.experts),
        down: w.experts(l, 'down', m.experts),
      },
      activation: s.activation,
      shared,
      threads: this.threads,
    });
    if (counts) {
      const c = counts[l];
      for (let e = 0; e < c.length; e++) c[e] += r.counts[e];
    }
    return r.y;
  }
}
