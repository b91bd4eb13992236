#!/usr/bin/env node
// quantmoe command line: a thin shell over the public API.
import { Command, Option } from 'commander';

import { convertHFToGGUF } from '../convert/hf-to-gguf';
import type { ConvertType } from '../convert/hf-to-gguf';
import { QuantMoeError } from '../errors';
import { backends } from '../native';
import { loadModel } from '../runtime/model';
import type { GenerateOptions, Model } from '../runtime/model';
import { serve } from '../server/app';
import { captureAttention, sparseAttentionReport, writeAttentionDump } from '../eval/attention';
import { checkContext, readTextFile } from '../eval/common';
import { compareModels } from '../eval/compare';
import { expertUsage } from '../eval/experts';
import { writeExpertHeatmap } from '../eval/heatmap';
import { perplexity } from '../eval/perplexity';
import { formatCompare, formatExpertUsage, formatPerplexity, formatSparseReport, parseLayerList, toJson } from './eval-format';
import { benchModel } from './bench';
import { action, defaultModelPath, parseFloatOption, parseIntOption, progressBar } from './util';

interface CommonOpts {
  model?: string;
  threads?: number;
  ctx?: number;
  weights?: 'mapped' | 'memory';
  json?: boolean;
  progress?: boolean;
}

interface GenOpts extends CommonOpts {
  maxTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
  stop?: string[];
}

const program = new Command();
program
  .name('quantmoe')
  .description('Run and quantize Mixture-of-Experts language models (GGUF or Hugging Face folders).')
  .option('--verbose', 'print stack traces on errors');

function addModelOptions(c: Command): Command {
  return c
    .option('-m, --model <path>', 'a .gguf file or a Hugging Face folder (default: the shipped kjv-moe model)')
    .option('-t, --threads <n>', 'CPU threads', parseIntOption('threads'))
    .option('-c, --ctx <n>', 'context size in tokens', parseIntOption('ctx'))
    .addOption(new Option('--weights <where>', "'memory': a huge-page copy (faster decode); 'mapped': the file's pages (instant load, shared)")
      .choices(['memory', 'mapped']).default('memory'))
    .option('--json', 'machine-readable output')
    .option('--no-progress', 'no progress bar');
}

function addSamplingOptions(c: Command): Command {
  return c
    .option('-n, --max-tokens <n>', 'tokens to generate', parseIntOption('max-tokens'), 128)
    .option('--temperature <t>', '0 = greedy', parseFloatOption('temperature'), 0.8)
    .option('--top-k <k>', 'top-k sampling', parseIntOption('top-k'))
    .option('--top-p <p>', 'nucleus sampling', parseFloatOption('top-p'))
    .option('--min-p <p>', 'min-p sampling', parseFloatOption('min-p'))
    .option('--repeat-penalty <r>', 'repetition penalty', parseFloatOption('repeat-penalty'))
    .option('--seed <s>', 'random seed (same seed, same text)', parseIntOption('seed'))
    .option('--stop <s...>', 'stop strings');
}

async function open(o: CommonOpts): Promise<Model> {
  const bar = progressBar('loading', o.progress !== false && !o.json && process.stderr.isTTY === true);
  try {
    return await loadModel(o.model ?? defaultModelPath(), {
      threads: o.threads, contextSize: o.ctx, weights: o.weights, onProgress: (p) => bar.update(p.fraction),
    });
  } finally {
    bar.stop();
  }
}

interface EvalOpts extends CommonOpts {
  text: string;
  stride?: number;
  chunks?: number;
}

function showProgress(o: CommonOpts): boolean {
  return o.progress !== false && !o.json && process.stderr.isTTY === true;
}

function addEvalOptions(c: Command): Command {
  return c
    .requiredOption('--text <file>', 'UTF-8 text file to evaluate on')
    .option('--stride <n>', 'tokens between window starts (default ctx/2; each window scores its last stride tokens)', parseIntOption('stride'))
    .option('--chunks <n>', 'evaluate at most this many windows', parseIntOption('chunks'));
}

function samplingOf(o: GenOpts): GenerateOptions {
  return {
    maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP,
    repeatPenalty: o.repeatPenalty, seed: o.seed, stop: o.stop,
  };
}

addSamplingOptions(addModelOptions(program.command('generate')))
  .description('continue a prompt, streaming tokens to stdout')
  .argument('<prompt>', 'the text to continue')
  .action(action(async (prompt: string, o: GenOpts) => {
    const model = await open(o);
    try {
      const started = Date.now();
      const it = model.generate(prompt, samplingOf(o));
      if (!o.json) process.stdout.write(prompt);
      let r = await it.next();
      while (!r.done) {
        if (!o.json) process.stdout.write(r.value.text);
        r = await it.next();
      }
      const seconds = (Date.now() - started) / 1000;
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ prompt, text: r.value.text, tokens: r.value.tokens, finishReason: r.value.finishReason, usage: r.value.usage, seconds })}\n`);
      } else {
        process.stdout.write('\n');
        process.stderr.write(`[${r.value.usage.completionTokens} tokens in ${seconds.toFixed(2)} s, ${(r.value.usage.completionTokens / seconds).toFixed(1)} tok/s]\n`);
      }
    } finally {
      await model.dispose();
    }
  }));

addSamplingOptions(addModelOptions(program.command('chat')))
  .description("chat using the model's chat template (reads lines from stdin; /exit to quit)")
  .action(action(async (o: GenOpts) => {
    const model = await open(o);
    const readline = await import('readline');
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
    const messages: Array<{ role: string; content: string }> = [];
    try {
      if (process.stdin.isTTY) process.stdout.write('> ');
      for await (const line of rl) {
        if (line.trim() === '/exit') break;
        messages.push({ role: 'user', content: line });
        let answer = '';
        const it = model.chat(messages, samplingOf(o));
        let r = await it.next();
        while (!r.done) {
          process.stdout.write(r.value.text);
          answer += r.value.text;
          r = await it.next();
        }
        messages.push({ role: 'assistant', content: answer });
        process.stdout.write(process.stdin.isTTY ? '\n> ' : '\n');
      }
    } finally {
      rl.close();
      await model.dispose();
    }
  }));

addModelOptions(program.command('info'))
  .description('architecture, parameters, bytes, bits per weight and tensor types of a model')
  .action(action(async (o: CommonOpts) => {
    const model = await open(o);
    try {
      const i = model.info();
      if (o.json) {
        const { spec: _spec, ...rest } = i;
        process.stdout.write(`${JSON.stringify(rest, null, 2)}\n`);
        return;
      }
      const types = new Map<string, number>();
      for (const t of Object.values(i.tensorTypes)) types.set(t, (types.get(t) ?? 0) + 1);
      const lines = [
        `model:          ${i.path}`,
        `architecture:   ${i.architecture} (${i.source})`,
        `layers:         ${i.layers}, hidden ${i.hidden}, vocab ${i.vocabSize}, context ${i.trainedContextLength}`,
        `experts:        ${i.experts ? `${i.experts} routed, ${i.expertsPerToken} per token${i.spec.moe?.sharedFfn ? `, shared FFN ${i.spec.moe.sharedFfn}` : ''}` : 'none (dense)'}`,
        `parameters:     ${(i.parameters.total / 1e6).toFixed(2)} M total, ${(i.parameters.active / 1e6).toFixed(2)} M active per token`,
        `weights:        ${(i.bytes / 2 ** 20).toFixed(2)} MiB, ${i.bitsPerWeight.toFixed(2)} bits per weight`,
        `tensor types:   ${[...types].map(([t, n]) => `${t} ×${n}`).join(', ')}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      await model.dispose();
    }
  }));

program.command('convert')
  .description('convert a Hugging Face folder to a GGUF file llama.cpp can run too')
  .argument('<hf-folder>')
  .argument('<out.gguf>')
  .option('--type <type>', 'F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K', 'F16')
  .option('--no-progress', 'no progress bar')
  .action(action(async (src: string, out: string, o: { type: string; progress: boolean }) => {
    const type = o.type.toUpperCase() as ConvertType;
    const bar = progressBar('converting', o.progress && process.stderr.isTTY === true);
    try {
      const r = await convertHFToGGUF(src, out, { type, onProgress: (p) => bar.update(p.fraction) });
      bar.stop();
      process.stdout.write(`wrote ${r.path} (${(r.bytes / 2 ** 20).toFixed(2)} MiB, ${type})\n`);
    } finally {
      bar.stop();
    }
  }));

addEvalOptions(addModelOptions(program.command('perplexity')))
  .description('perplexity on a text file: windows of --ctx tokens (default 512), the last part of each scored, as llama.cpp does')
  .action(action(async (o: EvalOpts) => {
    const text = readTextFile(o.text);
    const ctx = o.ctx ?? 512;
    checkContext(ctx, '--ctx');
    const model = await open({ ...o, ctx });
    try {
      const bar = progressBar('perplexity', showProgress(o));
      try {
        const r = await perplexity(model, text, { context: ctx, stride: o.stride, maxChunks: o.chunks, onProgress: (p) => bar.update(p.fraction) });
        bar.stop();
        process.stdout.write(o.json ? `${toJson({ model: model.path, text: o.text, ...r })}\n` : `${formatPerplexity(r)}\n`);
      } finally {
        bar.stop();
      }
    } finally {
      await model.dispose();
    }
  }));

addEvalOptions(program.command('compare'))
  .description("KL divergence of <other>'s next-token distributions from <base>'s on a text file (as llama.cpp --kl-divergence)")
  .argument('<base>', 'the reference model (.gguf or HF folder)')
  .argument('<other>', 'the model to compare, e.g. a quantized version of base')
  .option('-t, --threads <n>', 'CPU threads per model', parseIntOption('threads'))
  .option('-c, --ctx <n>', 'window size in tokens (default 512)', parseIntOption('ctx'))
  .option('--json', 'machine-readable output')
  .option('--no-progress', 'no progress bar')
  .action(action(async (basePath: string, otherPath: string, o: EvalOpts) => {
    const text = readTextFile(o.text);
    const ctx = o.ctx ?? 512;
    checkContext(ctx, '--ctx');
    const base = await open({ ...o, model: basePath, ctx });
    try {
      const other = await open({ ...o, model: otherPath, ctx });
      try {
        const bar = progressBar('comparing', showProgress(o));
        try {
          const r = await compareModels(base, other, text, { context: ctx, stride: o.stride, maxChunks: o.chunks, onProgress: (p) => bar.update(p.fraction) });
          bar.stop();
          process.stdout.write(o.json ? `${toJson({ base: base.path, other: other.path, text: o.text, ...r })}\n` : `${formatCompare(r)}\n`);
        } finally {
          bar.stop();
        }
      } finally {
        await other.dispose();
      }
    } finally {
      await base.dispose();
    }
  }));

addModelOptions(program.command('experts'))
  .description('tokens routed to each expert of each layer over a text file, with a PNG heat map')
  .requiredOption('--text <file>', 'UTF-8 text file to route')
  .option('--png <file>', 'write a heat map (layers × experts, color = share of routed tokens)')
  .option('--cell <px>', 'heat map cell size in pixels', parseIntOption('cell'), 24)
  .action(action(async (o: CommonOpts & { text: string; png?: string; cell: number }) => {
    const text = readTextFile(o.text);
    const ctx = o.ctx ?? 512;
    checkContext(ctx, '--ctx');
    const model = await open({ ...o, ctx });
    try {
      const bar = progressBar('routing', showProgress(o));
      try {
        const u = await expertUsage(model, text, { context: ctx, onProgress: (p) => bar.update(p.fraction) });
        bar.stop();
        if (o.png) await writeExpertHeatmap(u, o.png, { cell: o.cell });
        if (o.json) process.stdout.write(`${toJson({ model: model.path, text: o.text, ...u, png: o.png })}\n`);
        else process.stdout.write(`${formatExpertUsage(u)}\n${o.png ? `heat map: ${o.png}\n` : ''}`);
      } finally {
        bar.stop();
      }
    } finally {
      await model.dispose();
    }
  }));

program.command('attention-dump')
  .description("capture q/k/v after RoPE (and each layer's attention output) over a text, as .f32 files + manifest.json")
  .option('-m, --model <path>', 'a .gguf file or a Hugging Face folder (default: the shipped kjv-moe model)')
  .requiredOption('--text <file>', 'UTF-8 text file; its first --ctx tokens are captured')
  .requiredOption('--out <dir>', 'output folder')
  .option('--layers <list>', 'comma-separated layer indices (default: all)', parseLayerList)
  .option('-c, --ctx <n>', 'tokens to capture (default 512)', parseIntOption('ctx'))
  .option('-t, --threads <n>', 'CPU threads', parseIntOption('threads'))
  .option('--report', 'also run block-sparse vs dense attention on the captured tensors and print sparsity and error')
  .option('--cdf-threshold <tau>', 'sparse attention: cumulative pooled-softmax mass kept per query block', parseFloatOption('cdf-threshold'))
  .option('--json', 'machine-readable output')
  .option('--no-progress', 'no progress bar')
  .action(action(async (o: CommonOpts & { text: string; out: string; layers?: number[]; report?: boolean; cdfThreshold?: number }) => {
    const text = readTextFile(o.text);
    const modelPath = o.model ?? defaultModelPath();
    const bar = progressBar('loading', showProgress(o));
    let capture;
    try {
      capture = await captureAttention(modelPath, text, { layers: o.layers, context: o.ctx ?? 512, threads: o.threads, onProgress: (p) => bar.update(p.fraction) });
    } finally {
      bar.stop();
    }
    const manifest = await writeAttentionDump(capture, o.out, modelPath);
    const report = o.report ? sparseAttentionReport(capture, { threads: o.threads, cdfThreshold: o.cdfThreshold }) : undefined;
    if (o.json) {
      process.stdout.write(`${toJson({ out: o.out, manifest: { ...manifest, tokens: manifest.tokens.length }, report })}\n`);
      return;
    }
    const s = capture.layers[0]?.shape;
    process.stdout.write(`wrote ${capture.layers.length} layers × {q, k, v, out} of ${capture.tokens.length} tokens`
      + `${s ? ` (q [${s.tokens}, ${s.heads}, ${s.headDim}], k/v [${s.tokens}, ${s.kvHeads}, ${s.headDim}])` : ''} and manifest.json to ${o.out}\n`);
    if (report) process.stdout.write(`${formatSparseReport(report)}\n`);
  }));

addModelOptions(program.command('bench'))
  .description('load time, prefill and decode speed of a model on this machine (medians)')
  .option('--prompt <n>', 'prompt tokens for prefill', parseIntOption('prompt'), 128)
  .option('--decode <n>', 'tokens to decode', parseIntOption('decode'), 64)
  .option('--batch <n>', 'concurrent sequences for the batched decode', parseIntOption('batch'), 4)
  .option('--runs <n>', 'runs (median reported)', parseIntOption('runs'), 3)
  .action(action(async (o: CommonOpts & { prompt: number; decode: number; batch: number; runs: number }) => {
    const r = await benchModel({ model: o.model ?? defaultModelPath(), threads: o.threads, weights: o.weights, prompt: o.prompt, decode: o.decode, batch: o.batch, runs: o.runs });
    if (o.json) {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      return;
    }
    process.stdout.write([
      `load:            ${r.loadSeconds.toFixed(2)} s`,
      `prefill:         ${r.prefillTokensPerSecond.toFixed(1)} tok/s (${o.prompt}-token prompt)`,
      `decode:          ${r.decodeTokensPerSecond.toFixed(1)} tok/s (batch 1)`,
      ...(r.batch > 1 ? [`decode batch ${r.batch}:  ${r.batchDecodeTokensPerSecond.toFixed(1)} tok/s (all sequences)`] : []),
      `peak RSS:        ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB (this process; the engine runs in a worker thread of it)`,
    ].join('\n') + '\n');
  }));

program.command('backends')
  .description('CPU features and CUDA devices this build can use')
  .option('--json', 'machine-readable output')
  .action(action(async (o: { json?: boolean }) => {
    const b = backends();
    if (o.json) {
      process.stdout.write(`${JSON.stringify(b, null, 2)}\n`);
      return;
    }
    process.stdout.write(`cpu:  ${b.cpu.arch}, ${b.cpu.threads} threads, kernels ${b.cpu.isa} (features: ${b.cpu.features.join(' ') || 'none'})\n`);
    process.stdout.write(`cuda: ${b.cuda.compiled ? 'compiled in' : 'not compiled in'}; ${b.cuda.devices.length ? b.cuda.devices.map((d) => `${d.name} (${(d.memoryBytes / 2 ** 30).toFixed(0)} GiB, sm ${d.computeCapability})`).join(', ') : `no device (${b.cuda.unavailableReason})`}\n`);
  }));

interface ServeOpts extends CommonOpts {
  host: string;
  port: number;
  apiKey?: string;
  parallel: number;
  maxQueue: number;
  maxTokensLimit?: number;
  modelName?: string;
  requestTimeout: number;
  log?: boolean;
}

addModelOptions(program.command('serve'))
  .description('OpenAI-compatible HTTP server: POST /v1/completions and /v1/chat/completions (JSON or SSE streaming), GET /v1/models, /health, /metrics')
  .option('--host <host>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
  .option('--port <n>', 'port (0: any free port)', parseIntOption('port'), 8080)
  .option('--api-key <key>', 'require Authorization: Bearer <key> (default: $QUANTMOE_API_KEY)')
  .option('--parallel <n>', 'sequences decoded together (KV cache slots)', parseIntOption('parallel'), 4)
  .option('--max-queue <n>', 'requests waiting or running at most; more are answered 429', parseIntOption('max-queue'), 64)
  .option('--max-tokens-limit <n>', 'largest max_tokens a request may ask for (default: the context size)', parseIntOption('max-tokens-limit'))
  .option('--model-name <name>', 'the model id clients send (default: the file or folder name)')
  .option('--request-timeout <ms>', 'ms a client may take to send its whole request; slower ones get 408', parseIntOption('request-timeout'), 30000)
  .option('--log', 'log every request (JSON lines on stdout)')
  .action(action(async (o: ServeOpts) => {
    const bar = progressBar('loading', o.progress !== false && !o.json && process.stderr.isTTY === true);
    let model: Model;
    try {
      model = await loadModel(o.model ?? defaultModelPath(), {
        threads: o.threads, contextSize: o.ctx, parallel: o.parallel, weights: o.weights, onProgress: (p) => bar.update(p.fraction),
      });
    } finally {
      bar.stop();
    }
    const apiKey = o.apiKey ?? (process.env.QUANTMOE_API_KEY || undefined);
    let server: Awaited<ReturnType<typeof serve>>;
    try {
      server = await serve(model, {
        host: o.host, port: o.port, apiKey, maxQueue: o.maxQueue, maxTokensLimit: o.maxTokensLimit, modelName: o.modelName, requestTimeoutMs: o.requestTimeout, logger: o.log === true,
      });
    } catch (e) {
      await model.dispose();
      throw e;
    }
    if (o.json) process.stdout.write(`${JSON.stringify({ url: server.url, model: server.modelName, apiKey: apiKey !== undefined })}\n`);
    else process.stdout.write(`serving ${server.modelName} (${model.path}) on ${server.url}: POST /v1/completions, /v1/chat/completions; GET /v1/models, /health, /metrics\n`);
    const loopback = /^(127\.|::1$|localhost$)/.test(o.host);
    if (!loopback && apiKey === undefined) process.stderr.write(`quantmoe: warning: listening on ${o.host} without --api-key; anyone who can reach it can use it\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    await model.dispose();
  }));

program.showHelpAfterError();
program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`quantmoe: ${e instanceof QuantMoeError ? `${e.message} (${e.code})` : (e as Error).message}\n`);
  process.exitCode = 2;
});
