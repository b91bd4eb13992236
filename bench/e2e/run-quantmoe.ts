// quantmoe runner for the end-to-end benchmark: one child process, one job (see protocol.ts).
// Usage: node dist/bench/e2e/run-quantmoe.js job.json
// Loads quantmoe from dist/lib/index.js (the built package), as a user would.
import * as fs from 'fs';
import * as path from 'path';

import { cpuSnapshot, cpuWindow, memoryStatus } from './proc';
import { batchWindow } from './protocol';
import type { RunnerJob, RunnerResult } from './protocol';

type QuantMoe = typeof import('../../lib/index');

async function main(): Promise<void> {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as RunnerJob;
  const s0 = cpuSnapshot();
  const index = job.quantmoeIndex ?? path.resolve(__dirname, '..', '..', 'lib', 'index.js');
  const { loadModel } = require(index) as QuantMoe;
  const tImport = performance.now();
  const model = await loadModel(job.model, {
    threads: job.threads, contextSize: job.contextSize, parallel: job.parallel, kvCacheType: job.kv, weights: job.weights, device: 'cpu',
  });
  const s1 = cpuSnapshot();
  const info = model.info();
  const greedy = { temperature: 0, ignoreEos: true };

  await model.complete(job.warmup.prompt, { ...greedy, maxTokens: job.warmup.tokens });
  const s2 = cpuSnapshot();

  // batch 1: time to first token = prefill; first → last token = decode
  const stamps: number[] = [];
  const tokens: number[] = [];
  const t0 = performance.now();
  for await (const p of model.generate(job.prompt, { ...greedy, maxTokens: job.decodeTokens + 1 })) {
    stamps.push(performance.now());
    tokens.push(p.token);
  }
  const s3 = cpuSnapshot();

  // batch N: concurrent generate() calls are decoded together
  const all = await Promise.all(job.batchPrompts.map(async (prompt) => {
    const st: number[] = [];
    for await (const _ of model.generate(prompt, { ...greedy, maxTokens: job.batchTokens })) st.push(performance.now());
    return st;
  }));
  const s4 = cpuSnapshot();
  await model.dispose();
  const mem = memoryStatus();

  const result: RunnerResult = {
    engine: 'quantmoe',
    loadS: (s1.t - s0.t) / 1000,
    initS: (tImport - s0.t) / 1000,
    prefill: { tokens: job.prompt.length, s: (stamps[0] - t0) / 1000 },
    decode: { tokens: stamps.length - 1, s: (stamps[stamps.length - 1] - stamps[0]) / 1000 },
    batch: { seqs: job.batchPrompts.length, ...batchWindow(all) },
    vmHWMkB: mem.vmHWMkB,
    vmRSSkB: mem.vmRSSkB,
    cpu: {
      total: cpuWindow(s0, s4), load: cpuWindow(s0, s1), warmup: cpuWindow(s1, s2), single: cpuWindow(s2, s3), batch: cpuWindow(s3, s4),
    },
    tokens,
    notes: [
      `load: import ${((tImport - s0.t) / 1000).toFixed(2)} s, loadModel ${((s1.t - tImport) / 1000).toFixed(2)} s`,
      `threads ${job.threads}, parallel ${job.parallel}, context ${info.contextSize}/sequence, KV ${job.kv}, weights in ${job.weights}, ` +
        `weights ${(info.bytes / 1e9).toFixed(2)} GB`,
    ],
  };
  fs.writeFileSync(job.out, JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack ?? e.message : String(e));
    process.exit(1);
  },
);
