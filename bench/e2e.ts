// End-to-end benchmark: quantmoe vs llama.cpp (node-llama-cpp) on the same GGUF file.
//
// Build with `npx tsc -p tsconfig.json`, run with `npm run bench:e2e -- [flags]`
// (= node dist/bench/e2e.js). Flags:
//   --models olmoe,qwen-mini   model shapes (bench/e2e/models.ts)
//   --types q4_0,q8_0          weight types (default: olmoe q4_0,q8_0,q4_k; qwen-mini q4_0,q8_0)
//   --threads 1,2              thread counts (the same for both engines)
//   --runs 3                   runs per engine (median reported); engines alternate run by run
//   --quick                    smoke test: 2 layers, prompt 64, decode 16, 1 run
//   --prompt 512 --decode 128 --batch 8 --batch-decode 128 --context 1024 --kv f16
//   --weights memory|mapped    quantmoe's weight placement (LoadOptions.weights; default memory)
//   --max-other 0.2            discard runs where other processes used more than this many cores on average
//                              (over the run, or over its batch-1 or batch-N decode)
//   --cache .cache/bench-models   where the random GGUF files are kept (generated on first use)
//   --timeout 1800             seconds per child process
//   --json [file]              JSON (to stdout, or to file); tables then go to stderr
//
// Each engine runs in its own child process (bench/e2e/run-quantmoe.ts, bench/e2e/run-llama-cpp.mjs)
// on the same random-weight file with the same threads, KV type and context size per sequence,
// and measures: load (import + model + KV set-up), prefill tok/s (time to the first token of a
// `prompt`-token prompt), decode tok/s at batch 1 (`decode` greedy tokens after it), decode tok/s
// at batch `batch` (that many concurrent sequences with 32-token prompts, steady-state window:
// see protocol.ts batchWindow), and peak RSS (VmHWM). Each child also records the CPU time other
// processes used while it ran (/proc/stat busy jiffies − its own utime+stime).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { decodeBytes, readBandwidth } from './e2e/floor';
import type { DecodeBytes } from './e2e/floor';
import { DEFAULT_TYPES, MODELS, ensureModelFile } from './e2e/models';
import type { BenchModelName, BenchModelShape, BenchType } from './e2e/models';
import type { EngineName, RunnerJob, RunnerResult } from './e2e/protocol';

const HELP = `usage: node dist/bench/e2e.js [--models olmoe,qwen-mini] [--types q4_0,q8_0,q4_k] [--threads 1,2] [--runs 3]
  [--quick] [--prompt 512] [--decode 128] [--batch 8] [--batch-decode 128] [--context 1024] [--kv f16|f32] [--weights memory|mapped]
  [--max-other 0.2] [--cache .cache/bench-models] [--timeout 1800] [--json [file]]
(see the header of bench/e2e.ts)`;
const ROOT = path.resolve(__dirname, '..', '..'); // dist/bench → repository root
const ENGINES: EngineName[] = ['quantmoe', 'llama.cpp'];

interface Options {
  models: BenchModelName[];
  types?: BenchType[];
  threads: number[];
  runs: number;
  quick: boolean;
  prompt: number;
  decode: number;
  /** Tokens per sequence at batch N (default: decode). */
  batchDecode?: number;
  batch: number;
  batchPrompt: number;
  context: number;
  kv: 'f16' | 'f32';
  weights: 'memory' | 'mapped';
  maxOther: number;
  cache: string;
  timeoutS: number;
  json?: string; // '-' = stdout
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  try {
    return parseArgsOrThrow(argv);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function parseArgsOrThrow(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    models: ['olmoe', 'qwen-mini'], threads: [1, 2], runs: quick ? 1 : 3, quick,
    prompt: quick ? 64 : 512, decode: quick ? 16 : 128, batch: 8, batchPrompt: quick ? 16 : 32,
    context: quick ? 256 : 1024, kv: 'f16', weights: 'memory', maxOther: 0.2, cache: path.join(ROOT, '.cache', 'bench-models'), timeoutS: 1800,
  };
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  const int = (flag: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--quick': break;
      case '--models': o.models = list(next()).map((m) => {
        if (!(m in MODELS)) throw new Error(`unknown model '${m}' (${Object.keys(MODELS).join(', ')})`);
        return m as BenchModelName;
      }); break;
      case '--types': o.types = list(next()).map((t) => {
        if (!['q4_0', 'q8_0', 'q4_k'].includes(t.toLowerCase())) throw new Error(`unknown type '${t}' (q4_0, q8_0, q4_k)`);
        return t.toLowerCase() as BenchType;
      }); break;
      case '--threads': o.threads = list(next()).map((t) => int(a, t)); break;
      case '--runs': o.runs = int(a, next()); break;
      case '--prompt': o.prompt = int(a, next()); break;
      case '--decode': o.decode = int(a, next()); break;
      case '--batch': o.batch = int(a, next()); break;
      case '--batch-decode': o.batchDecode = int(a, next()); break;
      case '--context': o.context = int(a, next()); break;
      case '--kv': {
        const v = next();
        if (v !== 'f16' && v !== 'f32') throw new Error('--kv is f16 or f32');
        o.kv = v;
        break;
      }
      case '--weights': {
        const v = next();
        if (v !== 'memory' && v !== 'mapped') throw new Error('--weights is memory or mapped');
        o.weights = v;
        break;
      }
      case '--max-other': o.maxOther = Number(next()); break;
      case '--cache': o.cache = path.resolve(next()); break;
      case '--timeout': o.timeoutS = int(a, next()); break;
      case '--json': o.json = argv[i + 1] && !argv[i + 1].startsWith('--') ? path.resolve(argv[++i]) : '-'; break;
      case '--help': case '-h':
        console.log(HELP);
        process.exit(0);
        break;
      default: throw new Error(`unknown flag '${a}' (--help)`);
    }
  }
  const need = o.prompt + o.decode + 2;
  if (o.context < need) throw new Error(`--context ${o.context} is too small for prompt + decode (${need})`);
  return o;
}

// ---- prompts (random byte tokens; ids 0..255 are the tiny tokenizer's byte tokens) ----
function tokens(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  });
}

// ---- child processes ----
interface RunRecord extends RunnerResult {
  run: number;
  otherCores: number;
  discarded: boolean;
}

function runChild(job: RunnerJob, timeoutS: number): Promise<RunnerResult> {
  const script = job.engine === 'quantmoe'
    ? path.join(__dirname, 'e2e', 'run-quantmoe.js')
    : path.join(ROOT, 'bench', 'e2e', 'run-llama-cpp.mjs');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-e2e-'));
  const jobFile = path.join(dir, 'job.json');
  job.out = path.join(dir, 'result.json');
  fs.writeFileSync(jobFile, JSON.stringify(job));
  return new Promise<RunnerResult>((resolve, reject) => {
    const child = spawn(process.execPath, [script, jobFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const keep = (d: Buffer) => {
      log = (log + d.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        if (code !== 0) throw new Error(`${job.engine} runner exited with ${signal ?? code}:\n${log}`);
        resolve(JSON.parse(fs.readFileSync(job.out, 'utf8')) as RunnerResult);
      } catch (e) {
        reject(e);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

// ---- statistics and formatting ----
function median(a: number[]): number {
  if (a.length === 0) return NaN;
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Metrics {
  loadS: number;
  initS: number;
  prefillTokS: number;
  decodeTokS: number;
  batchTokS: number;
  peakRssGiB: number;
  otherCores: number;
}

const METRIC_ROWS: Array<{ key: keyof Metrics; label: (o: Options) => string; digits: number }> = [
  { key: 'loadS', label: () => 'load (s)', digits: 2 },
  { key: 'initS', label: () => '  of which library init (s)', digits: 2 },
  { key: 'prefillTokS', label: (o) => `prefill tok/s (${o.prompt}-token prompt)`, digits: 1 },
  { key: 'decodeTokS', label: (o) => `decode tok/s (batch 1, ${o.decode} tokens)`, digits: 2 },
  { key: 'batchTokS', label: (o) => `decode tok/s (batch ${o.batch}, all sequences)`, digits: 2 },
  { key: 'peakRssGiB', label: () => 'peak RSS (GiB)', digits: 2 },
  { key: 'otherCores', label: () => 'other processes (cores, avg)', digits: 2 },
];

function metrics(r: RunnerResult): Metrics {
  return {
    loadS: r.loadS,
    initS: r.initS,
    prefillTokS: r.prefill.tokens / r.prefill.s,
    decodeTokS: r.decode.tokens / r.decode.s,
    batchTokS: r.batch.tokens / r.batch.s,
    peakRssGiB: r.vmHWMkB / 2 ** 20,
    otherCores: r.cpu.total.otherS / r.cpu.total.wallS,
  };
}

function medianMetrics(rs: RunnerResult[]): Metrics {
  const ms = rs.map(metrics);
  const out = {} as Metrics;
  for (const { key } of METRIC_ROWS) out[key] = median(ms.map((m) => m[key]));
  return out;
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((s, c) => (c === 0 ? s.padEnd(w[c]) : s.padStart(w[c]))).join(' | ');
  return [line(rows[0]), w.map((n) => '-'.repeat(n)).join('-|-'), ...rows.slice(1).map(line)].join('\n');
}

const fmt = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : '-');

/** Length of the common prefix of two token lists. */
function agree(a: number[], b: number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

interface ConfigResult {
  model: BenchModelName;
  title: string;
  layers: number;
  type: BenchType;
  threads: number;
  file: string;
  fileBytes: number;
  bandwidthGBs: { best: number; median: number };
  decodeBytes: DecodeBytes;
  floorTokS: { batch1: number; batchN: number };
  runs: Array<RunRecord & { engine: EngineName }>;
  kept: Record<EngineName, number>;
  /** Medians over kept runs (over all runs when none was kept: noisy). */
  medians: Record<EngineName, Metrics & { noisy: boolean }>;
  ratios: Metrics;
  quantmoeFractionOfFloor: number;
  greedyAgreement: { tokens: number; of: number };
}

async function benchConfig(o: Options, shape: BenchModelShape, type: BenchType, file: { path: string; bytes: number },
  threads: number, log: (l: string) => void): Promise<ConfigResult> {
  const bw = readBandwidth(threads);
  const db = await decodeBytes(file.path, shape.experts, shape.topk, o.batch);
  log(`\n== ${shape.title} (${shape.layers} layers) ${type.toUpperCase()}, ${threads} thread${threads > 1 ? 's' : ''} — ` +
    `${path.basename(file.path)} ${(file.bytes / 1e9).toFixed(2)} GB; read bandwidth ${bw.best.toFixed(1)} GB/s (best of 7, median ${bw.median.toFixed(1)})`);
  const job = (engine: EngineName): RunnerJob => ({
    engine, model: file.path, threads, contextSize: o.context, parallel: o.batch, kv: o.kv, weights: o.weights,
    warmup: { prompt: tokens(32, 99), tokens: 4 },
    prompt: tokens(o.prompt, 1), decodeTokens: o.decode,
    batchPrompts: Array.from({ length: o.batch }, (_, i) => tokens(o.batchPrompt, 100 + i)), batchTokens: o.batchDecode ?? o.decode,
    out: '',
    quantmoeIndex: path.join(ROOT, 'dist', 'lib', 'index.js'),
  });
  const runs: ConfigResult['runs'] = [];
  for (let r = 0; r < o.runs; r++) {
    const order = r % 2 === 0 ? ENGINES : [...ENGINES].reverse();
    for (const engine of order) {
      const res = await runChild(job(engine), o.timeoutS);
      const c = res.cpu;
      const otherCores = c.total.otherS / c.total.wallS;
      // also per decode phase: a short burst (a compiler run) during the 5-s batch-1 decode skews it
      // and hardly moves the whole run's average
      const rate = (w: { otherS: number; wallS: number }) => w.otherS / Math.max(w.wallS, 1e-9);
      const discarded = otherCores > o.maxOther || rate(c.single) > o.maxOther || rate(c.batch) > o.maxOther;
      runs.push({ ...res, engine, run: r + 1, otherCores, discarded });
      const m = metrics(res);
      const ph = (w: { otherS: number; wallS: number }) => rate(w).toFixed(2);
      log(`  run ${r + 1} ${engine.padEnd(9)} load ${fmt(m.loadS, 2)} s, prefill ${fmt(m.prefillTokS, 1)}, decode ${fmt(m.decodeTokS, 2)}, ` +
        `b${o.batch} ${fmt(m.batchTokS, 2)} tok/s, RSS ${fmt(m.peakRssGiB, 2)} GiB | other CPU ${c.total.otherS.toFixed(1)} s over ` +
        `${c.total.wallS.toFixed(1)} s = ${otherCores.toFixed(2)} cores (load ${ph(c.load)}, b1 ${ph(c.single)}, b${o.batch} ${ph(c.batch)})` +
        `${discarded ? ' DISCARDED' : ''}`);
      if (r === 0) for (const n of res.notes ?? []) log(`      ${engine}: ${n}`);
    }
  }
  const medians = {} as ConfigResult['medians'];
  const kept = {} as ConfigResult['kept'];
  for (const e of ENGINES) {
    const mine = runs.filter((x) => x.engine === e);
    const good = mine.filter((x) => !x.discarded);
    kept[e] = good.length;
    medians[e] = { ...medianMetrics(good.length ? good : mine), noisy: good.length === 0 };
  }
  const ratios = {} as Metrics;
  for (const { key } of METRIC_ROWS) ratios[key] = medians.quantmoe[key] / medians['llama.cpp'][key];
  const floorTokS = { batch1: (bw.best * 1e9) / db.perToken, batchN: (o.batch * bw.best * 1e9) / db.perBatchStep };
  const q = runs.find((x) => x.engine === 'quantmoe')!;
  const l = runs.find((x) => x.engine === 'llama.cpp')!;
  return {
    model: shape.name, title: shape.title, layers: shape.layers, type, threads, file: file.path, fileBytes: file.bytes,
    bandwidthGBs: bw, decodeBytes: db, floorTokS, runs, kept, medians, ratios,
    quantmoeFractionOfFloor: medians.quantmoe.decodeTokS / floorTokS.batch1,
    greedyAgreement: { tokens: agree(q.tokens, l.tokens), of: Math.min(q.tokens.length, l.tokens.length) },
  };
}

function report(o: Options, c: ConfigResult): string {
  const discarded = ENGINES.map((e) => `${e} ${o.runs - c.kept[e]}/${o.runs}`).join(', ');
  const mark = (e: EngineName) => (c.medians[e].noisy ? '!' : '');
  const rows = [['metric', 'quantmoe', 'llama.cpp', 'ratio quantmoe/llama.cpp']];
  for (const r of METRIC_ROWS) {
    rows.push([r.label(o), fmt(c.medians.quantmoe[r.key], r.digits) + mark('quantmoe'),
      fmt(c.medians['llama.cpp'][r.key], r.digits) + mark('llama.cpp'), r.key === 'otherCores' ? '' : fmt(c.ratios[r.key], 2)]);
  }
  const lines = [
    `${c.title} (${c.layers} layers) ${c.type.toUpperCase()}, ${c.threads} thread${c.threads > 1 ? 's' : ''}: ` +
      `medians of kept runs; discarded (other processes > ${o.maxOther} cores): ${discarded}`,
    table(rows),
  ];
  if (c.medians.quantmoe.noisy || c.medians['llama.cpp'].noisy) {
    lines.push('! every run of this engine exceeded the other-process threshold: median over all runs, noisy');
  }
  const db = c.decodeBytes;
  lines.push(
    `decode floor (batch 1): ${(db.perToken / 1e6).toFixed(1)} MB of weights per token (${(db.experts / 1e6).toFixed(1)} MB routed experts) / ` +
      `${c.bandwidthGBs.best.toFixed(1)} GB/s read bandwidth (${c.threads}T) = max ${c.floorTokS.batch1.toFixed(2)} tok/s; ` +
      `quantmoe ${fmt(c.medians.quantmoe.decodeTokS, 2)} tok/s = ${(100 * c.quantmoeFractionOfFloor).toFixed(0)}% of it, ` +
      `llama.cpp ${(100 * c.medians['llama.cpp'].decodeTokS / c.floorTokS.batch1).toFixed(0)}%`,
    `decode floor (batch ${db.batch}, uniform routing): ${(db.perBatchStep / 1e6).toFixed(1)} MB per step = max ${c.floorTokS.batchN.toFixed(2)} tok/s; ` +
      `quantmoe ${(100 * c.medians.quantmoe.batchTokS / c.floorTokS.batchN).toFixed(0)}%, llama.cpp ${(100 * c.medians['llama.cpp'].batchTokS / c.floorTokS.batchN).toFixed(0)}%`,
    `greedy tokens (batch 1, run 1): first ${c.greedyAgreement.tokens} of ${c.greedyAgreement.of} agree between the engines`,
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const toStderr = o.json === '-';
  const log = (l: string) => (toStderr ? process.stderr.write(`${l}\n`) : console.log(l));
  const cpuModel = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model;
  log(`e2e benchmark: quantmoe vs llama.cpp (node-llama-cpp) — ${cpuModel}, ${os.cpus().length} CPUs, ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  log(`${o.quick ? 'QUICK mode (2 layers); ' : ''}runs ${o.runs} per engine (alternating), prompt ${o.prompt}, decode ${o.decode}, ` +
    `batch ${o.batch} x ${o.batchPrompt}-token prompts x ${o.batchDecode ?? o.decode} tokens, context ${o.context}/sequence, KV ${o.kv}, quantmoe weights in ${o.weights}, discard runs with other processes > ${o.maxOther} cores`);
  const t0 = Date.now();
  const results: ConfigResult[] = [];
  for (const name of o.models) {
    const shape = o.quick ? { ...MODELS[name], layers: 2 } : MODELS[name];
    for (const type of o.types ?? DEFAULT_TYPES[name]) {
      const file = await ensureModelFile(o.cache, shape, type, log);
      for (const threads of o.threads) {
        const c = await benchConfig(o, shape, type, file, threads, log);
        results.push(c);
        const t = report(o, c);
        log(`\n${t}`);
      }
    }
  }
  log(`\n(${((Date.now() - t0) / 1000).toFixed(0)} s; model cache ${o.cache})`);
  if (o.json) {
    const doc = {
      machine: { cpu: cpuModel, cpus: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, loadavg: os.loadavg() },
      options: o, results,
    };
    const text = JSON.stringify(doc, null, 2);
    if (o.json === '-') process.stdout.write(`${text}\n`);
    else {
      fs.writeFileSync(o.json, text);
      log(`JSON written to ${o.json}`);
    }
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof UsageError ? `e2e: ${e.message}` : e instanceof Error ? e.stack ?? e.message : String(e));
  process.exit(1);
});
