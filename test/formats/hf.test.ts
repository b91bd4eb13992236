import { promises as fsp } from 'fs';
import * as path from 'path';
import { parseHFConfig, readHFConfig, readHFFolder, readHFTokenizerFiles } from '../../lib/formats/hf';
import { writeSafetensors, writeSafetensorsSharded } from '../../lib/formats/safetensors';
import { expectCode, expectCodeSync, tempDir } from './helpers';

let root: string;
beforeAll(async () => { root = await tempDir('hf'); });
afterAll(async () => { await fsp.rm(root, { recursive: true, force: true }); });

const config = {
  model_type: 'qwen2_moe', architectures: ['Qwen2MoeForCausalLM'], vocab_size: 64, hidden_size: 16,
  num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, num_experts: 4, num_experts_per_tok: 2,
  rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: false, eos_token_id: [3, 4], torch_dtype: 'bfloat16',
  rope_scaling: null, custom_field: { nested: [1, 2] },
};

async function folder(name: string, files: Record<string, string | object>): Promise<string> {
  const dir = path.join(root, name);
  await fsp.mkdir(dir, { recursive: true });
  for (const [f, v] of Object.entries(files)) {
    await fsp.writeFile(path.join(dir, f), typeof v === 'string' ? v : JSON.stringify(v));
  }
  return dir;
}

const weights = [{ name: 'model.norm.weight', dtype: 'F32' as const, shape: [16], data: new Uint8Array(64) }];

describe('Hugging Face folders', () => {
  test('config, weights, tokenizer files and generation config', async () => {
    const dir = await folder('full', {
      'config.json': config,
      'tokenizer.json': { version: '1.0', model: { type: 'BPE', vocab: {}, merges: [] } },
      'tokenizer_config.json': { eos_token: '<|im_end|>', chat_template: [{ name: 'default', template: 'A' }, { name: 'tool_use', template: 'B' }] },
      'generation_config.json': { eos_token_id: 3, temperature: 0.7 },
    });
    await writeSafetensors(path.join(dir, 'model.safetensors'), weights);
    const f = await readHFFolder(dir);
    expect(f.config.model_type).toBe('qwen2_moe');
    expect(f.config.architectures).toEqual(['Qwen2MoeForCausalLM']);
    expect(f.config.num_experts).toBe(4);
    expect(f.config.custom_field).toEqual({ nested: [1, 2] });
    expect(f.weights?.tensors.map((t) => t.name)).toEqual(['model.norm.weight']);
    expect(f.tokenizer?.chatTemplate).toBe('A');
    expect(f.tokenizer?.chatTemplates.tool_use).toBe('B');
    expect(f.generationConfig?.eos_token_id).toBe(3);
    expect((await readHFConfig(dir)).hidden_size).toBe(16);
  });

  test('sharded weights, chat_template.jinja wins, tokenizer optional', async () => {
    const dir = await folder('sharded', {
      'config.json': { model_type: 'mixtral' },
      'tokenizer.json': { model: { type: 'BPE', vocab: {}, merges: [] } },
      'tokenizer_config.json': { chat_template: 'old' },
      'chat_template.jinja': 'new {{ messages }}',
    });
    await writeSafetensorsSharded(dir, [...weights, { ...weights[0], name: 'lm_head.weight' }], { maxShardBytes: 64 });
    const f = await readHFFolder(dir);
    expect(f.config.architectures).toEqual([]);
    expect(f.weights?.files).toHaveLength(2);
    expect(f.tokenizer?.chatTemplate).toBe('new {{ messages }}');
    const bare = await folder('bare', { 'config.json': { model_type: 'x' } });
    const g = await readHFFolder(bare, { weights: false });
    expect(g.tokenizer).toBeUndefined();
    expect(g.weights).toBeUndefined();
    expect(await readHFTokenizerFiles(bare)).toBeUndefined();
  });

  test('invalid folders and configs', async () => {
    await expectCode(readHFFolder(path.join(root, 'nope')), 'E_IO');
    const noConfig = await folder('noconfig', { 'tokenizer.json': { model: {} } });
    await expectCode(readHFFolder(noConfig), 'E_FORMAT', /config\.json is missing/);
    const badJson = await folder('badjson', { 'config.json': '{"model_type": ' });
    await expectCode(readHFFolder(badJson), 'E_FORMAT', /config\.json: invalid JSON/);
    const noWeights = await folder('noweights', { 'config.json': { model_type: 'x' } });
    await expectCode(readHFFolder(noWeights), 'E_FORMAT', /no safetensors/);
    const badTok = await folder('badtok', { 'config.json': { model_type: 'x' }, 'tokenizer.json': { nope: 1 } });
    await expectCode(readHFFolder(badTok, { weights: false }), 'E_FORMAT', /tokenizer\.json/);
    const badTpl = await folder('badtpl', { 'config.json': { model_type: 'x' }, 'tokenizer.json': { model: {} }, 'tokenizer_config.json': { chat_template: 5 } });
    await expectCode(readHFFolder(badTpl, { weights: false }), 'E_FORMAT', /chat_template/);
    const badGen = await folder('badgen', { 'config.json': { model_type: 'x' }, 'generation_config.json': { eos_token_id: 'x' } });
    await expectCode(readHFFolder(badGen, { weights: false }), 'E_FORMAT', /eos_token_id/);
    expectCodeSync(() => parseHFConfig({ architectures: ['X'] }), 'E_FORMAT', /model_type/);
    expectCodeSync(() => parseHFConfig([]), 'E_FORMAT');
    expectCodeSync(() => parseHFConfig({ model_type: 'x', hidden_size: '16' }), 'E_FORMAT', /"hidden_size" must be a number/);
    expectCodeSync(() => parseHFConfig({ model_type: 'x', architectures: 'X' }), 'E_FORMAT', /architectures/);
    expectCodeSync(() => parseHFConfig({ model_type: 'x', tie_word_embeddings: 1 }), 'E_FORMAT', /tie_word_embeddings/);
    expectCodeSync(() => parseHFConfig({ model_type: 'x', eos_token_id: [1, 'a'] }), 'E_FORMAT', /eos_token_id/);
  });
});
