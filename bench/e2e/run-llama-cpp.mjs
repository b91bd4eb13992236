// llama.cpp runner for the end-to-end benchmark (node-llama-cpp, CPU build): one child process,
// one job (see bench/e2e/protocol.ts for the job and result shapes).
// Usage: node bench/e2e/run-llama-cpp.mjs job.json
// One context with job.parallel sequences (per-sequence KV of job.contextSize cells), flash
// attention auto, batchSize 512, exactly job.threads threads (maxThreads 0 = no cap, so the
// `threads` hint is what is used).
import fs from 'node:fs';

// ---- the same /proc readings as bench/e2e/proc.ts ----
function machineBusyJiffies() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
}
function processJiffies() {
  const s = fs.readFileSync('/proc/self/stat', 'utf8');
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}
const cpuSnapshot = () => ({ t: performance.now(), busy: machineBusyJiffies(), self: processJiffies() });
function cpuWindow(a, b, hz = 100) {
  const selfS = (b.self - a.self) / hz;
  return { wallS: (b.t - a.t) / 1000, selfS, otherS: Math.max(0, (b.busy - a.busy) / hz - selfS) };
}
function memoryStatus() {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { vmHWMkB: kb('VmHWM'), vmRSSkB: kb('VmRSS') };
}
function batchWindow(stamps) {
  const start = Math.max(...stamps.map((s) => s[0]));
  const end = Math.min(...stamps.map((s) => s[s.length - 1]));
  let tokens = 0;
  for (const s of stamps) for (const t of s) if (t > start && t <= end) tokens++;
  return { tokens, s: Math.max(0, (end - start) / 1000) };
}

/** Greedy generation on one sequence; returns the time stamp of each token (and the tokens). */
async function generate(seq, prompt, n) {
  const stamps = [];
  const tokens = [];
  if (n <= 0) return { stamps, tokens };
  for await (const tok of seq.evaluate(prompt, { temperature: 0 })) {
    stamps.push(performance.now());
    tokens.push(tok);
    if (tokens.length >= n) break;
  }
  return { stamps, tokens };
}

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const s0 = cpuSnapshot();
const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
const llama = await getLlama({ gpu: false, build: 'never', maxThreads: 0, logLevel: LlamaLogLevel.error, progressLogs: false });
const tInit = performance.now();
const model = await llama.loadModel({ modelPath: job.model, useMmap: true, gpuLayers: 0 });
const tModel = performance.now();
const kvType = job.kv === 'f32' ? 'F32' : 'F16';
const context = await model.createContext({
  contextSize: job.contextSize,
  sequences: job.parallel,
  batchSize: 512,
  threads: job.threads,
  flashAttention: 'auto',
  experimentalKvCacheKeyType: kvType,
  experimentalKvCacheValueType: kvType,
});
const s1 = cpuSnapshot();
const ms = (a, b) => ((b - a) / 1000).toFixed(2);
const notes = [
  `load: import + getLlama ${ms(s0.t, tInit)} s, loadModel ${ms(tInit, tModel)} s, createContext ${ms(tModel, s1.t)} s`,
  `flash attention option: ${context.flashAttention}; context size per sequence: ${context.contextSize}; ` +
    `threads: ideal ${context.idealThreads}, current ${context.currentThreads}; KV ${kvType}`,
];

const seq = context.getSequence();
await generate(seq, job.warmup.prompt, job.warmup.tokens);
await seq.clearHistory();
const s2 = cpuSnapshot();

const t0 = performance.now();
const single = await generate(seq, job.prompt, job.decodeTokens + 1);
const s3 = cpuSnapshot();
seq.dispose();

const seqs = job.batchPrompts.map(() => context.getSequence());
const all = await Promise.all(seqs.map((sq, i) => generate(sq, job.batchPrompts[i], job.batchTokens).then((r) => r.stamps)));
const s4 = cpuSnapshot();
for (const sq of seqs) sq.dispose();
await context.dispose();
await model.dispose();
await llama.dispose();
const mem = memoryStatus();

const st = single.stamps;
const result = {
  engine: 'llama.cpp',
  loadS: (s1.t - s0.t) / 1000,
  initS: (tInit - s0.t) / 1000,
  prefill: { tokens: job.prompt.length, s: (st[0] - t0) / 1000 },
  decode: { tokens: st.length - 1, s: (st[st.length - 1] - st[0]) / 1000 },
  batch: { seqs: job.batchPrompts.length, ...batchWindow(all) },
  vmHWMkB: mem.vmHWMkB,
  vmRSSkB: mem.vmRSSkB,
  cpu: {
    total: cpuWindow(s0, s4), load: cpuWindow(s0, s1), warmup: cpuWindow(s1, s2), single: cpuWindow(s2, s3), batch: cpuWindow(s3, s4),
  },
  tokens: single.tokens,
  notes,
};
fs.writeFileSync(job.out, JSON.stringify(result));
process.exit(0);
