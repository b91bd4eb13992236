// Text output of the evaluation commands (perplexity, compare, experts, attention-dump).
import { QuantMoeError } from '../errors';
import type { SparseLayerReport } from '../eval/attention';
import type { CompareResult } from '../eval/compare';
import type { ExpertUsage } from '../eval/experts';
import type { PerplexityResult } from '../eval/perplexity';

const fmt = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const pct = (x: number, digits = 1) => `${fmt(x * 100, digits)}%`;

/** JSON with NaN / Infinity written as null. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));
}

export function formatPerplexity(r: PerplexityResult): string {
  return [
    `windows:    ${r.chunks} of up to ${r.context} tokens, stride ${r.stride}`,
    `mean NLL:   ${fmt(r.nll, 6)} ± ${fmt(r.stderr, 6)} nats/token`,
    `perplexity: ${fmt(r.perplexity, 4)} ± ${fmt(r.perplexityStderr, 4)} over ${r.tokens} tokens`,
  ].join('\n');
}

export function formatCompare(r: CompareResult): string {
  return [
    `tokens:           ${r.tokens} scored in ${r.chunks} windows of ${r.context} (stride ${r.stride})`,
    `perplexity base:  ${fmt(r.perplexityBase, 4)} ± ${fmt(r.perplexityBaseStderr, 4)}`,
    `perplexity other: ${fmt(r.perplexityOther, 4)} ± ${fmt(r.perplexityOtherStderr, 4)}  (ratio ${fmt(r.perplexityOther / r.perplexityBase, 4)})`,
    `mean KL:          ${fmt(r.meanKL, 6)} ± ${fmt(r.meanKLStderr, 6)} nats`,
    `median KL:        ${fmt(r.medianKL, 6)}`,
    `99% KL:           ${fmt(r.p99KL, 6)}`,
    `max KL:           ${fmt(r.maxKL, 6)}`,
    `same top-1:       ${pct(r.sameTop1, 2)}`,
  ].join('\n');
}

export function formatExpertUsage(u: ExpertUsage): string {
  const uniform = u.experts > 0 ? 1 / u.experts : 0;
  const head = `layer  ${'max share (expert)'.padEnd(20)}${'min share (expert)'.padEnd(20)}${'max/uniform'.padEnd(13)}${'CV'.padEnd(8)}${'H/log E'.padEnd(9)}unused`;
  const rows = u.layers.map((l) => {
    if (!l.moe) return `${String(l.layer).padEnd(7)}dense (no routing)`;
    return `${String(l.layer).padEnd(7)}${`${pct(l.maxShare)} (E${l.maxExpert})`.padEnd(20)}${`${pct(l.minShare)} (E${l.minExpert})`.padEnd(20)}`
      + `${fmt(l.maxShare / uniform, 2).padEnd(13)}${fmt(l.cv, 3).padEnd(8)}${fmt(l.normalizedEntropy, 3).padEnd(9)}${l.unused}`;
  });
  return [
    `${u.tokens} tokens in ${u.chunks} windows; ${u.experts} experts, ${u.expertsPerToken} per token (uniform share ${pct(uniform)})`,
    head, ...rows,
  ].join('\n');
}

export function formatSparseReport(rep: SparseLayerReport[]): string {
  const lines = [`layer  group  heads     tokens  sparsity  rel L1     (dense vs model output)`];
  for (const r of rep) {
    lines.push(`${String(r.layer).padEnd(7)}${'all'.padEnd(7)}${''.padEnd(10)}${String(r.tokens).padEnd(8)}${pct(r.sparsity).padEnd(10)}${r.relL1.toExponential(3).padEnd(11)}(${r.denseVsModel.toExponential(2)})`);
    for (const g of r.groups) {
      lines.push(`${''.padEnd(7)}${String(g.group).padEnd(7)}${g.heads.join(',').padEnd(10)}${''.padEnd(8)}${pct(g.sparsity).padEnd(10)}${g.relL1.toExponential(3)}`);
    }
  }
  return lines.join('\n');
}

/** "0,3,5" → [0, 3, 5]. */
export function parseLayerList(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const out = parts.map(Number);
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new QuantMoeError('E_ARGUMENT', `--layers must be a comma-separated list of layer indices, got '${v}'`);
  }
  return out;
}
