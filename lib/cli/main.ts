#!/usr/bin/env node
// quantmoe command line: a thin shell over the public API.
import { Command } from 'commander';

import { convertHFToGGUF } from '../convert/hf-to-gguf';
import type { ConvertType } from '../convert/hf-to-gguf';
import { QuantMoeError } from '../errors';
import { backends } from '../native';
import { loadModel } from '../runtime/model';
import type { GenerateOptions, Model } from '../runtime/model';
import { action, defaultModelPath, parseFloatOption, parseIntOption, progressBar } from './util';

interface CommonOpts {
  model?: string;
  threads?: number;
  ctx?: number;
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
    return await loadModel(o.model ?? defaultModelPath(), { threads: o.threads, contextSize: o.ctx, onProgress: (p) => bar.update(p.fraction) });
  } finally {
    bar.stop();
  }
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

program.showHelpAfterError();
program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`quantmoe: ${e instanceof QuantMoeError ? `${e.message} (${e.code})` : (e as Error).message}\n`);
  process.exitCode = 2;
});
