import { promises as fsp } from 'fs';
import * as path from 'path';
import * as gguf from '../../lib/formats/gguf';
import { GGUFTypedValue, GGUFValueType } from '../../lib/formats/gguf';
import { JSONObject } from '../../lib/formats/json';
import { detectGGUFPre, hfTokenizerToGGUFMetadata, readGGUFVocab, TokenType } from '../../lib/formats/vocab';
import { Tokenizer } from '../../lib/runtime/tokenizer';
import { expectCode, expectCodeSync, tempDir } from '../formats/helpers';
import { byteLevelTokenizer, SAMPLES, spmTokenizer } from './fixtures';

let dir: string;
let n = 0;
beforeAll(async () => { dir = await tempDir('vocab'); });
afterAll(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

async function ggufWith(metadata: Record<string, GGUFTypedValue>): Promise<gguf.GGUFFile> {
  const file = path.join(dir, `v${n++}.gguf`);
  await gguf.writeGGUF(file, {
    metadata: { 'general.architecture': 'llama', ...metadata },
    tensors: [{ name: 'token_embd.weight', type: 'F32', shape: [2, 4], data: new Uint8Array(32) }],
  });
  return gguf.readGGUF(file);
}

const EXTRA = [
  '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n',
  '<|endoftext|><|endoftext|>',
  "DON'T SHOUT, it's FINE",
  '12345678 999 1000000',
];

describe.each(['qwen2', 'gpt2', 'llama3'] as const)('byte-level BPE (%s): GGUF-embedded vocab ≡ tokenizer.json', (flavour) => {
  const fx = byteLevelTokenizer(flavour);
  const hf = Tokenizer.fromHFJson(fx.tokenizerJson, fx.tokenizerConfig);
  const expectedPre = { qwen2: 'qwen2', gpt2: 'gpt-2', llama3: 'llama-bpe' }[flavour];

  test('conversion to GGUF metadata', () => {
    const meta = hfTokenizerToGGUFMetadata(fx.tokenizerJson, fx.tokenizerConfig, { vocabSize: hf.vocabSize + 7 });
    expect(meta['tokenizer.ggml.model'].value).toBe('gpt2');
    expect(meta['tokenizer.ggml.pre'].value).toBe(expectedPre);
    const tokens = meta['tokenizer.ggml.tokens'];
    const types = meta['tokenizer.ggml.token_type'];
    const merges = meta['tokenizer.ggml.merges'];
    if (tokens.type !== GGUFValueType.ARRAY || types.type !== GGUFValueType.ARRAY || merges.type !== GGUFValueType.ARRAY) throw new Error('arrays expected');
    expect(tokens.itemType).toBe(GGUFValueType.STRING);
    expect(types.itemType).toBe(GGUFValueType.INT32);
    expect(tokens.value).toHaveLength(hf.vocabSize + 7);
    expect(tokens.value[hf.vocabSize]).toBe(`[PAD${hf.vocabSize}]`);
    expect(types.value[hf.vocabSize]).toBe(TokenType.UNUSED);
    expect(types.value[fx.ids.imStart]).toBe(TokenType.CONTROL);
    expect(types.value[fx.ids.toolCall]).toBe(TokenType.USER_DEFINED);
    expect(types.value[65]).toBe(TokenType.NORMAL);
    expect(merges.value[0]).toMatch(/^\S+ \S+$/);
    expect(meta['tokenizer.ggml.eos_token_id']).toEqual(gguf.u32(fx.ids.imEnd));
    expect(meta['tokenizer.ggml.padding_token_id']).toEqual(gguf.u32(fx.ids.endoftext));
    expect(meta['tokenizer.ggml.bos_token_id']).toBeUndefined();
    expect(meta['tokenizer.ggml.add_bos_token']).toEqual(gguf.bool(false));
    expect(typeof meta['tokenizer.chat_template'].value).toBe('string');
  });

  test('same ids, same text, same template', async () => {
    const meta = hfTokenizerToGGUFMetadata(fx.tokenizerJson, fx.tokenizerConfig, { vocabSize: hf.vocabSize + 7 });
    const tok = await Tokenizer.fromGGUF(await ggufWith(meta));
    expect(tok.vocabSize).toBe(hf.vocabSize + 7);
    expect(tok.eosId).toBe(hf.eosId);
    expect(tok.stopIds).toEqual(expect.arrayContaining([fx.ids.imEnd, fx.ids.endoftext]));
    for (const text of [...SAMPLES, ...EXTRA]) {
      const ids = tok.encode(text);
      expect(ids).toEqual(hf.encode(text));
      expect(tok.encode(text, { parseSpecial: false })).toEqual(hf.encode(text, { parseSpecial: false }));
      expect(tok.decode(ids)).toBe(text);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(hf.decode(ids, { skipSpecialTokens: true }));
    }
    expect(tok.decode([hf.vocabSize + 1])).toBe(''); // [PAD] tokens decode to nothing
    const msgs = [{ role: 'user', content: 'Hi' }];
    expect(tok.applyChatTemplate(msgs, { addGenerationPrompt: true })).toBe(hf.applyChatTemplate(msgs, { addGenerationPrompt: true }));
  });
});

describe('other GGUF pre-tokenizers', () => {
  const fx = byteLevelTokenizer('qwen2');
  const base = hfTokenizerToGGUFMetadata(fx.tokenizerJson, fx.tokenizerConfig);
  test.each(['default', 'deepseek-v3', 'olmo'])('%s round-trips text', async (pre) => {
    const tok = await Tokenizer.fromGGUF(await ggufWith({ ...base, 'tokenizer.ggml.pre': gguf.str(pre) }));
    for (const text of [...SAMPLES, ...EXTRA]) expect(tok.decode(tok.encode(text))).toBe(text);
  });
  test('default splits digit runs into groups of three, deepseek-v3 isolates CJK runs', async () => {
    const def = await Tokenizer.fromGGUF(await ggufWith({ ...base, 'tokenizer.ggml.pre': gguf.str('default') }));
    const pieces = def.encode('1234567').map((id) => def.tokenText(id));
    expect(pieces.join('')).toBe('1234567');
    expect(pieces).toEqual(expect.arrayContaining(['7']));
    const ds = await Tokenizer.fromGGUF(await ggufWith({ ...base, 'tokenizer.ggml.pre': gguf.str('deepseek-v3') }));
    expect(ds.decode(ds.encode('abc中文def'))).toBe('abc中文def');
  });
  test('a missing pre means default, an unknown one is E_UNSUPPORTED', async () => {
    const noPre = { ...base };
    delete noPre['tokenizer.ggml.pre'];
    const tok = await Tokenizer.fromGGUF(await ggufWith(noPre));
    expect(tok.decode(tok.encode('hello 123'))).toBe('hello 123');
    const f = await ggufWith({ ...base, 'tokenizer.ggml.pre': gguf.str('chameleon') });
    await expectCode(Tokenizer.fromGGUF(f), 'E_UNSUPPORTED', /'chameleon'.*qwen2/);
  });
});

describe('SentencePiece (GGUF "llama") vocab ≡ Llama-style tokenizer.json', () => {
  const fx = spmTokenizer();
  const hf = Tokenizer.fromHFJson(fx.tokenizerJson, fx.tokenizerConfig);

  test('same ids and text', async () => {
    const tok = await Tokenizer.fromGGUF(await ggufWith(fx.metadata));
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.addBosDefault).toBe(true);
    for (const text of [...SAMPLES, '<s>inside</s> text', ' <s> x']) {
      const ids = tok.encode(text);
      expect(ids).toEqual(hf.encode(text));
      expect(ids[0]).toBe(1);
      // text next to special tokens gets SentencePiece's prefix space, so only plain text round-trips exactly
      if (!text.includes('<s>')) expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(hf.decode(ids, { skipSpecialTokens: true }));
      expect(tok.decode(ids)).toBe(hf.decode(ids));
      const s = tok.createDecoderStream({ skipSpecialTokens: true });
      const pieces = ids.map((id) => s.push(id));
      pieces.push(s.flush());
      for (const p of pieces) expect(p).not.toContain('\uFFFD');
    }
    expect(tok.encode('<s>', { parseSpecial: false, addBos: false })).not.toContain(1);
    expect(tok.encode('hi', { addBos: false, addEos: true })).toEqual([...hf.encode('hi', { addBos: false }), 2]);
    expect(tok.decode(tok.encode('hello'))).toBe('<s> hello');
  });

  test('scores decide merges (highest score first), not training order', async () => {
    // A vocabulary where "ab"+"c" and "a"+"bc" compete: the higher-scored "bc" wins first.
    const tokens = ['<unk>', '<s>', '</s>', '▁', 'a', 'b', 'c', 'ab', 'bc', '▁a', '▁abc', 'abc'];
    const scores = [0, 0, 0, -1, -2, -3, -4, -10, -5, -20, -30, -6];
    const types = [2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    const f = await ggufWith({
      'tokenizer.ggml.model': gguf.str('llama'), 'tokenizer.ggml.tokens': gguf.strArr(tokens),
      'tokenizer.ggml.scores': gguf.f32Arr(scores), 'tokenizer.ggml.token_type': gguf.i32Arr(types),
      'tokenizer.ggml.add_space_prefix': gguf.bool(false), 'tokenizer.ggml.add_bos_token': gguf.bool(false),
    });
    const tok = await Tokenizer.fromGGUF(f);
    // a b c → a [bc] (-5 beats ab -10) → [abc]? "a"+"bc" = "abc" (-6) → one token
    expect(tok.encode('abc').map((id) => tok.tokenText(id))).toEqual(['abc']);
    // "x" is unknown and has no byte token → <unk>
    expect(tok.encode('x')).toEqual([0]);
    expect(tok.decode(tok.encode('ab c'))).toBe('ab c');
  });
});

describe('GGUF vocab validation', () => {
  const fx = byteLevelTokenizer('qwen2');
  const base = hfTokenizerToGGUFMetadata(fx.tokenizerJson, fx.tokenizerConfig);
  test('bad or missing vocab metadata', async () => {
    const none = await ggufWith({});
    expectCodeSync(() => readGGUFVocab(none), 'E_FORMAT', /no embedded tokenizer/);
    await expectCode(Tokenizer.fromGGUF(none), 'E_FORMAT');
    await expectCode(Tokenizer.fromGGUF(await ggufWith({ ...base, 'tokenizer.ggml.model': gguf.str('bert') })), 'E_UNSUPPORTED', /'bert'/);
    await expectCode(Tokenizer.fromGGUF(await ggufWith({ ...base, 'tokenizer.ggml.tokens': gguf.i32Arr([1, 2]) })), 'E_FORMAT', /tokenizer\.ggml\.tokens/);
    await expectCode(Tokenizer.fromGGUF(await ggufWith({ ...base, 'tokenizer.ggml.token_type': gguf.i32Arr([1]) })), 'E_FORMAT', /token_type has 1 entries/);
    await expectCode(Tokenizer.fromGGUF(await ggufWith({ ...base, 'tokenizer.ggml.tokens': gguf.strArr(['a', 'b', 'a']), 'tokenizer.ggml.token_type': gguf.i32Arr([1, 1, 1]) })), 'E_FORMAT', /duplicate token "a"/);
    const noMerges = { ...base };
    delete noMerges['tokenizer.ggml.merges'];
    await expectCode(Tokenizer.fromGGUF(await ggufWith(noMerges)), 'E_FORMAT', /merges/);
    const spm = spmTokenizer();
    const noScores = { ...spm.metadata };
    delete noScores['tokenizer.ggml.scores'];
    await expectCode(Tokenizer.fromGGUF(await ggufWith(noScores)), 'E_FORMAT', /scores/);
    // out-of-range special ids are ignored, as llama.cpp does
    const t = await Tokenizer.fromGGUF(await ggufWith({ ...base, 'tokenizer.ggml.bos_token_id': gguf.u32(1e6) }));
    expect(t.bosId).toBeUndefined();
  });

  test('HF → GGUF conversion refuses what llama.cpp could not run the same way', () => {
    const spm = spmTokenizer();
    expectCodeSync(() => hfTokenizerToGGUFMetadata(spm.tokenizerJson, spm.tokenizerConfig), 'E_UNSUPPORTED', /byte-level/);
    const odd: JSONObject = { ...fx.tokenizerJson, pre_tokenizer: { type: 'Whitespace' } };
    expectCodeSync(() => hfTokenizerToGGUFMetadata(odd, fx.tokenizerConfig), 'E_UNSUPPORTED', /options\.pre/);
    expect(hfTokenizerToGGUFMetadata(odd, fx.tokenizerConfig, { pre: 'qwen2' })['tokenizer.ggml.pre'].value).toBe('qwen2');
    expectCodeSync(() => hfTokenizerToGGUFMetadata(fx.tokenizerJson, fx.tokenizerConfig, { vocabSize: 10 }), 'E_ARGUMENT', /vocabSize/);
    expectCodeSync(() => hfTokenizerToGGUFMetadata({ model: { type: 'WordPiece', vocab: {} } }), 'E_UNSUPPORTED');
    expect(detectGGUFPre(undefined)).toBeUndefined();
    expect(detectGGUFPre({ type: 'ByteLevel', add_prefix_space: true, use_regex: true })).toBeUndefined();
  });

  test('a tokenizer with a BOS added by its post-processor converts with add_bos_token', () => {
    const tj: JSONObject = {
      ...fx.tokenizerJson,
      post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} },
    };
    const meta = hfTokenizerToGGUFMetadata(tj, { ...fx.tokenizerConfig, bos_token: '<|endoftext|>' });
    expect(meta['tokenizer.ggml.add_bos_token']).toEqual(gguf.bool(true));
    expect(meta['tokenizer.ggml.bos_token_id']).toEqual(gguf.u32(fx.ids.endoftext));
    const hf = Tokenizer.fromHFJson(tj, { ...fx.tokenizerConfig, bos_token: '<|endoftext|>' });
    expect(hf.addBosDefault).toBe(true);
    expect(hf.encode('hi')[0]).toBe(fx.ids.endoftext);
  });
});
