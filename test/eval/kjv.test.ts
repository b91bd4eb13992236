// The shipped trained model (models/kjv-moe), when present: perplexity on the first ~2000 tokens
// of the held-out text is finite and far below the vocabulary size (a uniform guess scores
// exactly the vocabulary size), and its experts are all routed to. Skipped, visibly, without it.
import * as fs from 'fs';
import * as path from 'path';

import { expertUsage } from '../../lib/eval/experts';
import { perplexity } from '../../lib/eval/perplexity';
import { loadModel } from '../../lib/runtime/model';

const root = path.resolve(__dirname, '..', '..');
const modelDir = path.join(root, 'models', 'kjv-moe');
const textFile = path.join(root, 'data', 'kjv', 'test.txt');
const present = fs.existsSync(path.join(modelDir, 'config.json')) && fs.existsSync(textFile);
if (!present) console.log(`skipped: ${path.relative(root, modelDir)} or ${path.relative(root, textFile)} is absent`);

(present ? describe : describe.skip)('models/kjv-moe on data/kjv/test.txt', () => {
  it('perplexity over the first ~2000 tokens is finite and below the vocabulary size', async () => {
    const model = await loadModel(modelDir, { threads: 2, contextSize: 512, parallel: 2 });
    try {
      const tokens = model.tokenize(fs.readFileSync(textFile, 'utf8')).slice(0, 2000);
      const r = await perplexity(model, tokens, { context: 512 });
      const V = model.info().vocabSize;
      console.log(`kjv-moe: perplexity ${r.perplexity.toFixed(2)} ± ${r.perplexityStderr.toFixed(2)} over ${r.tokens} tokens (vocab ${V})`);
      expect(Number.isFinite(r.perplexity)).toBe(true);
      expect(r.perplexity).toBeGreaterThan(1);
      expect(r.perplexity).toBeLessThan(V);
      expect(r.tokens).toBe(2000 - 256);
      const u = await expertUsage(model, tokens, { context: 512 });
      for (const l of u.layers) expect(l.assignments).toBe(2000 * u.expertsPerToken);
    } finally {
      await model.dispose();
    }
  });
});
