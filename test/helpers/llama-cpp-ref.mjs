// Reference runner: evaluates a GGUF file with llama.cpp (node-llama-cpp, CPU build, 1 thread,
// F32 KV cache) in its own process. Usage: node llama-cpp-ref.mjs job.json
// job: { model, contextSize, prompts: number[][], greedy: number, out: "logits.bin" }
// Writes, for each prompt, the logits of every position (Float32, row-major, vocab wide) to
// `out`, one prompt after another; prints JSON { vocab, greedy: number[][] } on stdout.
import fs from 'node:fs';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
const model = await llama.loadModel({ modelPath: job.model, useMmap: true });
const context = await model.createContext({
  contextSize: job.contextSize ?? 512,
  threads: 1,
  batchSize: job.contextSize ?? 512,
  flashAttention: false,
  experimentalKvCacheKeyType: 'F32',
  experimentalKvCacheValueType: 'F32',
});
const seq = context.getSequence();
const nVocab = job.vocab;
const out = fs.openSync(job.out, 'w');
const greedy = [];
for (const prompt of job.prompts) {
  await seq.clearHistory();
  const items = prompt.map((t) => [t, { generateNext: { logits: true } }]);
  const res = await seq.controlledEvaluate(items);
  const buf = new Float32Array(prompt.length * nVocab);
  res.forEach((r, i) => {
    for (const [tok, v] of r.next.logits) buf[i * nVocab + tok] = v;
  });
  fs.writeSync(out, Buffer.from(buf.buffer));
  const cont = [];
  if (job.greedy > 0) {
    await seq.clearHistory();
    for await (const tok of seq.evaluate(prompt, { temperature: 0 })) {
      cont.push(tok);
      if (cont.length >= job.greedy) break;
    }
  }
  greedy.push(cont);
}
fs.closeSync(out);
process.stdout.write(JSON.stringify({ vocab: nVocab, greedy }));
await context.dispose();
await model.dispose();
await llama.dispose();
