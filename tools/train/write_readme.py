#!/usr/bin/env python3
"""Write models/kjv-moe/README.md from tools/train/work/{summary,export_eval}.json."""
import json
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(ROOT, "tools", "train", "work")
OUT = os.path.join(ROOT, "models", "kjv-moe")


def usage_table(rows):
    hdr = "| layer | " + " | ".join("e%d" % i for i in range(len(rows[0]))) + " |\n"
    hdr += "|---|" + "---|" * len(rows[0]) + "\n"
    return hdr + "".join("| %d | " % i + " | ".join("%.1f%%" % (100 * x) for x in r) + " |\n"
                         for i, r in enumerate(rows))


def main():
    s = json.load(open(os.path.join(WORK, "summary.json")))
    e = json.load(open(os.path.join(WORK, "export_eval.json")))
    files = sorted(f for f in os.listdir(OUT) if f != "README.md")
    sizes = "\n".join("| `%s` | %d |" % (f, os.path.getsize(os.path.join(OUT, f))) for f in files)
    a = s["args"]
    text = f"""# kjv-moe: a tiny Qwen2-MoE trained on the King James Bible

A small but real Mixture-of-Experts language model in the exact Hugging Face
`Qwen2MoeForCausalLM` layout (config.json fields, tensor names, sharded F16 safetensors),
trained from scratch on CPU on the KJV text. Made as a test fixture for quantmoe: it loads like
any HF Qwen2-MoE checkpoint and has reference logits to compare an implementation against.

## Architecture

4 layers, hidden 256, 4 attention heads of dim 64 with 2 KV heads (GQA, q/k/v biases, no o bias),
RoPE (rotate_half, theta 10000), RMSNorm eps 1e-6; every layer is a sparse MoE block with
8 routed experts (SwiGLU, intermediate 256), top-2 routing with softmax over all 8 experts and
**no** renormalisation of the top-2 weights (`norm_topk_prob: false`), plus a shared expert
(intermediate 512) scaled by `sigmoid(shared_expert_gate(x))`. Untied `lm_head`. Vocabulary 4096.
Parameters: {s['params']:,} ({e.get('total_bytes', 0) or 2 * s['params']:,} bytes in F16).

## Files

| file | bytes |
|---|---|
{sizes}

* `config.json`: Qwen2MoeConfig (`model_type: qwen2_moe`, `torch_dtype: float16`).
* `model-0000{{1,2}}-of-00002.safetensors` + `model.safetensors.index.json`: F16 weights, HF names
  (`model.layers.N.mlp.experts.M.gate_proj.weight`, `...mlp.shared_expert_gate.weight`, ...).
* `tokenizer.json`: byte-level BPE (256 byte tokens with id = byte value, 3837 merges, specials
  `<|endoftext|>`=4093, `<|im_start|>`=4094, `<|im_end|>`=4095), GPT-2 pre-tokenizer regex.
  Checked to give identical ids to the Python trainer's encoder with `@huggingface/tokenizers`
  and to round-trip text exactly (`tools/train/check_tokenizer.py models/kjv-moe`).
* `tokenizer_config.json`: `bos_token: null`, `eos_token: <|endoftext|>`, ChatML `chat_template`
  (the model was never trained on chat data; the template is there for API tests).
* `generation_config.json`: greedy, eos ids [4093, 4095].
* `reference-logits.json`: for 3 prompts: `input_ids` (plain encoding, no BOS), `logits[i]` (4096 floats
  at every position i, rounded to 5 significant digits), `argmax[i]`, and `greedy_ids`/`greedy_text`
  (16 greedy tokens). Computed **in float32 from the F16 weights in this folder** (read back from the
  safetensors files), causal attention, no KV cache. `test_eval`: mean NLL / perplexity of
  `data/kjv/test.txt` (see its `description` for the exact windowing), with expert usage.

## Data

`bible-kjv` (Debian) text, one verse per line with references stripped, a blank line between books.
Held out whole books: test = Ruth, Jonah, Micah, Philippians, 1 Thessalonians, James
(`data/kjv/test.txt`, {e['test_tokens']} tokens); validation = Esther, Joel, Galatians, Colossians,
1 Peter; training = the other 55 books (~1.0M tokens, 4.0 bytes/token). Books are separated by
`<|endoftext|>` in the training token stream.

## Training

AdamW (betas 0.9/0.95, weight decay {a['weight_decay']} on matrices), lr {a['lr']} with {a['warmup']} warmup
steps and cosine decay to {a['min_lr_ratio']}x, grad clip {a['clip']}, batch {a['batch']} x {a['seq_len']} tokens
(packed, random offsets), Switch/HF load-balancing loss x 0.01, seed {a['seed']}, one CPU thread
(2-core machine shared with other jobs).

* steps: {s['step']} of {s['steps_planned']} planned{' (stopped by the time budget)' if s['stopped_early'] else ''}
  ({s['step'] * a['batch'] * a['seq_len'] / 997468:.2f} epochs)
* training wall time: {s['train_wall_s'] / 60:.1f} min, mean {s['mean_tok_s']:.0f} tokens/s
  (410-510 tokens/s on an idle core; the machine was heavily shared during this run)
* final train loss (21 windows of 1024 tokens): {s['train_loss']:.4f} nats (perplexity {s['train_ppl']:.2f})
* final validation loss (all {e['valid_predicted']} validation tokens, F32 weights): {s['valid_loss']:.4f} (perplexity {s['valid_ppl']:.2f})
* exported F16 model: validation {e['valid_nll_f16']:.4f} (perplexity {e['valid_ppl_f16']:.2f}),
  test {e['test_nll']:.4f} (perplexity {e['test_ppl']:.2f})

Expert usage (share of top-2 assignments per expert) on the validation text, exported F16 model:

{usage_table(e['expert_usage_valid_f16'])}
Some experts are rarely chosen in some layers (down to ~0.3% of assignments), but every expert
of every layer is used.

## Checks

* `tools/train/test_model.py`: `tools/train/model.py` (the training model) gives bit-identical logits
  (float64) to a line-by-line transcription of transformers' `modeling_qwen2_moe.py` (eager attention,
  `repeat_kv`, one-hot expert loop, float32 RMSNorm/softmaxes).
* `tools/train/test_model.py --check-export models/kjv-moe`: that transcription, fed the F16 weights
  from this folder, reproduces `reference-logits.json` (max relative error < 1e-3, identical argmax).
* `tools/train/check_tokenizer.py models/kjv-moe`: `@huggingface/tokenizers` (JS) encodes 206 texts
  (verses, the whole test file, whitespace and non-ASCII samples) to the same ids as the Python
  encoder, and decodes them back exactly.

## Retraining

```
tools/train/run_all.sh            # apt deps, data, tokenizer, checks, training, export (about 1-1.5 h)
RESUME=1 tools/train/run_all.sh   # continue from tools/train/work/ckpt.pt
```

Needs Debian packages python3-torch python3-numpy python3-regex libopenblas0-pthread bible-kjv
(installed by the script) and runs `/usr/bin/python3`. Every step is seeded and single-threaded. Note: the shipped model's run was started with
`--steps 900` and resumed with `--steps 800` at step 125 and `--steps 700` at step 200 (CPU
contention made it slower than measured), so its learning rate over steps 40-200 differed by under 1%
from a fresh `--steps 700` run; numbers from a rerun will be close but not bit-identical.
"""
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(text)
    print("wrote", os.path.join(OUT, "README.md"))


if __name__ == "__main__":
    main()
