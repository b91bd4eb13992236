import { promises as fsp } from 'fs';
import * as path from 'path';
import { Tokenizer } from '../../lib/runtime/tokenizer';
import { expectCodeSync, tempDir } from '../formats/helpers';
import { byteLevelTokenizer, CHATML, SAMPLES, spmTokenizer } from './fixtures';

const REPLACEMENT = '\uFFFD';

function streamPieces(tok: Tokenizer, ids: number[]): { pieces: string[]; text: string } {
  const s = tok.createDecoderStream();
  const pieces = ids.map((id) => s.push(id));
  pieces.push(s.flush());
  return { pieces, text: s.text };
}

describe('Tokenizer from tokenizer.json (byte-level BPE)', () => {
  const fx = byteLevelTokenizer('qwen2');
  const tok = Tokenizer.fromHFJson(fx.tokenizerJson, fx.tokenizerConfig);

  test('vocabulary and special tokens', () => {
    expect(tok.vocabSize).toBe(fx.ids.toolCallEnd + 1);
    expect(tok.bosId).toBeUndefined();
    expect(tok.eosId).toBe(fx.ids.imEnd);
    expect(tok.stopIds).toEqual(expect.arrayContaining([fx.ids.imEnd, fx.ids.endoftext]));
    expect(tok.addBosDefault).toBe(false);
    expect(tok.tokenText(fx.ids.imStart)).toBe('<|im_start|>');
    expect(tok.tokenText(32)).toBe('Ġ'); // the byte-level spelling of a space
    expect(tok.tokenId('<|im_end|>')).toBe(fx.ids.imEnd);
    expect(tok.isSpecial(fx.ids.imEnd)).toBe(true);
    expect(tok.isSpecial(fx.ids.toolCall)).toBe(false);
  });

  test('encode/decode round trips ASCII and multi-byte UTF-8', () => {
    for (const text of SAMPLES) {
      const ids = tok.encode(text);
      expect(tok.decode(ids)).toBe(text);
    }
    // merges are used: "the" is one token, and 'é' (2 bytes) became a single token too
    expect(tok.encode('the')).toHaveLength(1);
    expect(tok.encode('é').length).toBe(1);
    expect(tok.encode('🦀').length).toBeGreaterThan(1); // not in the corpus: byte pieces
  });

  test('special tokens: parsed by default, literal text with parseSpecial: false', () => {
    const text = '<|im_start|>user\nHi<|im_end|>';
    const ids = tok.encode(text);
    expect(ids[0]).toBe(fx.ids.imStart);
    expect(ids.at(-1)).toBe(fx.ids.imEnd);
    const plain = tok.encode(text, { parseSpecial: false });
    expect(plain).not.toContain(fx.ids.imStart);
    expect(plain).not.toContain(fx.ids.imEnd);
    expect(tok.decode(plain)).toBe(text);
    // user-defined tokens always match
    expect(tok.encode('<tool_call>', { parseSpecial: false })).toEqual([fx.ids.toolCall]);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nHi');
    expect(tok.encode('x', { addEos: true }).at(-1)).toBe(fx.ids.imEnd);
    expectCodeSync(() => tok.encode('x', { addBos: true }), 'E_ARGUMENT', /no BOS/);
  });

  test('streaming decoder never emits U+FFFD for valid text and reassembles it exactly', () => {
    let heldBack = 0;
    for (const text of SAMPLES) {
      const ids = tok.encode(text);
      const { pieces, text: streamed } = streamPieces(tok, ids);
      for (const p of pieces) expect(p).not.toContain(REPLACEMENT);
      expect(pieces.join('')).toBe(text);
      expect(streamed).toBe(text);
      heldBack += pieces.filter((p) => p === '').length;
    }
    expect(heldBack).toBeGreaterThan(0); // some characters did span several tokens
    const s = tok.createDecoderStream({ skipSpecialTokens: true });
    expect(tok.encode('<|im_start|>ok').map((id) => s.push(id)).join('')).toBe('ok');
    // an incomplete character at the end comes out as U+FFFD on flush
    const crab = tok.encode('🦀');
    const t = tok.createDecoderStream();
    expect(crab.slice(0, 2).map((id) => t.push(id)).join('')).toBe('');
    expect(t.flush()).toBe(REPLACEMENT);
  });

  test('token id range errors', () => {
    expectCodeSync(() => tok.decode([tok.vocabSize]), 'E_TOKEN_RANGE');
    expectCodeSync(() => tok.decode([-1]), 'E_TOKEN_RANGE');
    expectCodeSync(() => tok.decode([1.5]), 'E_TOKEN_RANGE');
    expectCodeSync(() => tok.createDecoderStream().push(1e9), 'E_TOKEN_RANGE');
    expectCodeSync(() => tok.tokenText(-3), 'E_TOKEN_RANGE');
    expect(tok.decode([])).toBe('');
    expectCodeSync(() => tok.encode(5 as unknown as string), 'E_ARGUMENT');
  });

  test('ChatML chat template', () => {
    const messages = [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: 'Hi 🚀' }];
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi 🚀<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.applyChatTemplate(messages)).not.toContain('assistant');
    const ids = tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }));
    expect(ids.filter((id) => id === fx.ids.imStart)).toHaveLength(3);
    expect(tok.applyChatTemplate(messages, { template: '{{ bos_token }}|{{ eos_token }}|{{ messages | length }}|{{ x }}', variables: { x: 7 } }))
      .toBe('|<|im_end|>|2|7');
  });

  test('chat template errors', () => {
    const m = [{ role: 'user', content: 'x' }];
    expectCodeSync(() => tok.applyChatTemplate(m, { template: '{% for %}' }), 'E_FORMAT', /does not parse/);
    expectCodeSync(() => tok.applyChatTemplate(m, { template: "{{ raise_exception('roles must alternate') }}" }), 'E_ARGUMENT', /roles must alternate/);
    expectCodeSync(() => tok.applyChatTemplate(m, { templateName: 'tool_use' }), 'E_ARGUMENT', /no chat template named/);
    expectCodeSync(() => tok.applyChatTemplate([{ content: 'x' }] as unknown as { role: string }[]), 'E_ARGUMENT');
    const bare = Tokenizer.fromHFJson(fx.tokenizerJson, {});
    expectCodeSync(() => bare.applyChatTemplate(m), 'E_UNSUPPORTED', /no chat template/);
  });

  test('malformed tokenizer.json gives E_FORMAT', () => {
    expectCodeSync(() => Tokenizer.fromHFJson({ version: '1.0' }), 'E_FORMAT', /model/);
    expectCodeSync(() => Tokenizer.fromHFJson({ model: { type: 'Nope' } }), 'E_FORMAT', /cannot be loaded/);
  });
});

describe('Tokenizer from a Llama-style tokenizer.json (SentencePiece BPE with byte fallback)', () => {
  const fx = spmTokenizer();
  const tok = Tokenizer.fromHFJson(fx.tokenizerJson, fx.tokenizerConfig);

  test('round trips, BOS, byte fallback, streaming', () => {
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.addBosDefault).toBe(true);
    for (const text of SAMPLES.filter((s) => !s.startsWith(' '))) {
      const ids = tok.encode(text);
      expect(ids[0]).toBe(1);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
      const { pieces } = streamPieces(tok, ids.slice(1));
      for (const p of pieces) expect(p).not.toContain(REPLACEMENT);
      expect(pieces.join('')).toBe(` ${text}`.replace(/^ $/, ''));
    }
    const crab = tok.encode('🦀', { addBos: false });
    expect(crab.map((id) => tok.tokenText(id))).toEqual(['▁', '<0xF0>', '<0x9F>', '<0xA6>', '<0x80>']);
  });
});

describe('Tokenizer with a decoder that is neither byte-level nor SentencePiece (WordPiece)', () => {
  const tok = Tokenizer.fromHFJson({
    added_tokens: [{ id: 0, content: '[UNK]', special: true }, { id: 6, content: '[SEP]', special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100,
      vocab: { '[UNK]': 0, hello: 1, '##lo': 2, world: 3, hel: 4, '##ld': 5, '[SEP]': 6 } },
  }, { unk_token: '[UNK]', sep_token: '[SEP]' });

  test('encode, decode and streaming go through the library decoder', () => {
    const ids = tok.encode('hello world hello');
    expect(ids).toEqual([1, 3, 1]);
    expect(tok.decode(ids)).toBe('hello world hello');
    expect(tok.decode([4, 2, 6], { skipSpecialTokens: true })).toBe('hello');
    const s = tok.createDecoderStream();
    const pieces = [...ids, 4, 2].map((id) => s.push(id));
    pieces.push(s.flush());
    expect(pieces.join('')).toBe(tok.decode([...ids, 4, 2]));
    expect(s.text).toBe('hello world hello hello');
  });
});

describe('Tokenizer.fromHFFolder', () => {
  test('reads tokenizer.json, tokenizer_config.json (template list), generation_config.json', async () => {
    const dir = await tempDir('tokdir');
    try {
      const fx = byteLevelTokenizer('qwen2');
      await fsp.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(fx.tokenizerJson));
      await fsp.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({
        ...fx.tokenizerConfig,
        chat_template: [{ name: 'default', template: CHATML }, { name: 'tool_use', template: 'TOOLS {{ messages[0].content }}' }],
      }));
      await fsp.writeFile(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [fx.ids.imEnd, fx.ids.endoftext] }));
      const tok = await Tokenizer.fromHFFolder(dir);
      expect(tok.stopIds).toEqual(expect.arrayContaining([fx.ids.imEnd, fx.ids.endoftext]));
      expect(tok.applyChatTemplate([{ role: 'user', content: 'q' }], { templateName: 'tool_use' })).toBe('TOOLS q');
      expect(tok.applyChatTemplate([{ role: 'user', content: 'q' }])).toContain('<|im_start|>user\nq');
      await fsp.rm(path.join(dir, 'tokenizer.json'));
      await expect(Tokenizer.fromHFFolder(dir)).rejects.toMatchObject({ code: 'E_FORMAT' });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
