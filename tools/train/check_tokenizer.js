// Verify that @huggingface/tokenizers (JS) loads our tokenizer.json and matches the Python encoder.
// Usage: node tools/train/check_tokenizer.js <dir with tokenizer.json> <expected.json>
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('@huggingface/tokenizers');
const dir = process.argv[2];
const expected = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
const tc = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(tj, tc);
let bad = 0;
for (const { text, ids } of expected) {
  const enc = tok.encode(text, { add_special_tokens: false });
  const got = Array.from(enc.ids);
  if (JSON.stringify(got) !== JSON.stringify(ids)) {
    bad++;
    console.log('MISMATCH', JSON.stringify(text.slice(0, 80)), got.slice(0, 20), ids.slice(0, 20));
  }
  const dec = got.length ? tok.decode(got, { skip_special_tokens: false }) : "";
  if (dec !== text) { bad++; console.log('ROUNDTRIP FAIL', JSON.stringify(text.slice(0, 80)), JSON.stringify(dec.slice(0, 80))); }
}
const s = tok.encode('<|im_start|>user\nHi<|im_end|>\n<|endoftext|>', { add_special_tokens: false });
console.log('specials:', Array.from(s.ids).join(' '));
console.log(`${expected.length} texts checked, ${bad} failures`);
process.exit(bad ? 1 : 0);
