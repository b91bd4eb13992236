// Runs llama.cpp (node-llama-cpp) on a GGUF file in a child process: an implementation we did
// not write, used as the reference for our forward pass.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface LlamaCppResult {
  vocab: number;
  /** logits[p] is [prompt.length × vocab] for prompt p. */
  logits: Float32Array[];
  greedy: number[][];
}

export function llamaCppAvailable(): boolean {
  try {
    // .../node_modules/node-llama-cpp/dist/index.js → .../node_modules
    const modules = path.resolve(path.dirname(require.resolve('node-llama-cpp')), '..', '..');
    return fs.existsSync(path.join(modules, '@node-llama-cpp', `${process.platform}-${process.arch}`));
  } catch {
    return false;
  }
}

export function runLlamaCpp(model: string, vocab: number, prompts: number[][], greedy: number): LlamaCppResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-llamacpp-'));
  try {
    const job = path.join(dir, 'job.json');
    const out = path.join(dir, 'logits.bin');
    fs.writeFileSync(job, JSON.stringify({ model, vocab, prompts, greedy, out, contextSize: 512 }));
    const stdout = execFileSync(process.execPath, [path.join(__dirname, 'llama-cpp-ref.mjs'), job], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000,
    });
    const res = JSON.parse(stdout) as { vocab: number; greedy: number[][] };
    const all = new Float32Array(new Uint8Array(fs.readFileSync(out)).buffer);
    const logits: Float32Array[] = [];
    let o = 0;
    for (const p of prompts) {
      logits.push(all.slice(o, o + p.length * res.vocab));
      o += p.length * res.vocab;
    }
    return { vocab: res.vocab, logits, greedy: res.greedy };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** max_i |a_i − b_i| / max_i |b_i| */
export function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

function logSoftmax(row: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - m);
  const ls = Math.log(s) + m;
  return Float64Array.from(row, (v) => v - ls);
}

/** Mean KL(ref ‖ ours) over positions, and greedy agreement where ref's top-2 margin > margin. */
export function compareDistributions(ours: Float32Array, ref: Float32Array, vocab: number, margin = 0.05) {
  const n = ref.length / vocab;
  let kl = 0;
  let checked = 0;
  let agree = 0;
  for (let p = 0; p < n; p++) {
    const r = ref.subarray(p * vocab, (p + 1) * vocab);
    const o = ours.subarray(p * vocab, (p + 1) * vocab);
    const lr = logSoftmax(r);
    const lo = logSoftmax(o);
    for (let i = 0; i < vocab; i++) kl += Math.exp(lr[i]) * (lr[i] - lo[i]);
    let a = 0;
    let b = -1;
    for (let i = 1; i < vocab; i++) if (r[i] > r[a]) a = i;
    for (let i = 0; i < vocab; i++) if (i !== a && (b < 0 || r[i] > r[b])) b = i;
    if (r[a] - r[b] > margin) {
      checked++;
      let ao = 0;
      for (let i = 1; i < vocab; i++) if (o[i] > o[ao]) ao = i;
      if (ao === a) agree++;
    }
  }
  return { meanKL: kl / n, checked, agree };
}
