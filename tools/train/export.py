#!/usr/bin/env python3
"""Export a training checkpoint to a Hugging Face Qwen2-MoE model directory.

  export.py [--ckpt tools/train/work/final.pt] [--out models/kjv-moe]

Writes config.json, generation_config.json, model-0000{1,2}-of-00002.safetensors (F16),
model.safetensors.index.json, tokenizer.json, tokenizer_config.json and
reference-logits.json (computed in float32 from the F16-rounded weights, read back
from the safetensors files just written).
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread: BLAS (OpenBLAS) and torch
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Qwen2MoeConfig, Qwen2MoeForCausalLM, num_params  # noqa: E402
from tokenizer import BPETokenizer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(ROOT, "tools", "train", "work")

PROMPTS = [
    "In the beginning",
    "And the LORD said unto Moses,",
    # Ruth 1:16 (held-out test book)
    "And Ruth said, Intreat me not to leave thee, or to return from following after thee: for whither "
    "thou goest, I will go; and where thou lodgest, I will lodge: thy people shall be my people, and thy God my God:",
]
N_GREEDY = 16

DTYPES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32"}
NP_DTYPES = {"F16": np.float16, "F32": np.float32}


def write_safetensors(path, tensors):
    """tensors: list of (name, torch.Tensor). Hand-written safetensors format."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    blobs = []
    for name, t in tensors:
        t = t.contiguous()
        b = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)  # pad header to 8-byte alignment (as safetensors does)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    return off


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=NP_DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def load_hf_dir(d):
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        idx = json.load(f)
    sd = {}
    for fn in sorted(set(idx["weight_map"].values())):
        sd.update(read_safetensors(os.path.join(d, fn)))
    assert set(sd) == set(idx["weight_map"]), "index / shard mismatch"
    return sd


def sig5(x):
    return float("%.5g" % x)


@torch.no_grad()
def greedy(model, ids, n):
    ids = list(ids)
    out = []
    for _ in range(n):
        logits, _ = model(torch.tensor([ids]))
        nxt = int(torch.argmax(logits[0, -1]).item())
        out.append(nxt)
        ids.append(nxt)
    return out


@torch.no_grad()
def eval_text(model, ids, L=1024):
    """Mean NLL over non-overlapping windows of L tokens (first token of each window is context only)."""
    tot, n = 0.0, 0
    usage = torch.zeros(model.cfg.num_hidden_layers, model.cfg.num_experts)
    for s in range(0, len(ids) - 1, L):
        w = torch.tensor([ids[s:s + L]])
        if w.shape[1] < 2:
            break
        logits, rls = model(w)
        lo = F.cross_entropy(logits[0, :-1], w[0, 1:], reduction="sum")
        tot += lo.item()
        n += w.shape[1] - 1
        for li, rl in enumerate(rls):
            sel = torch.topk(rl, model.cfg.num_experts_per_tok, dim=-1).indices
            usage[li] += torch.bincount(sel.view(-1), minlength=model.cfg.num_experts).float()
    usage = usage / usage.sum(dim=1, keepdim=True)
    return tot / n, n, usage


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(WORK, "final.pt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "kjv-moe"))
    ap.add_argument("--no-eval", action="store_true", help="skip valid/test perplexity evaluation")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    ck = torch.load(args.ckpt, map_location="cpu")
    cfg = Qwen2MoeConfig.from_dict(ck["config"])
    sd = ck["model"]
    os.makedirs(args.out, exist_ok=True)

    # ---- weights: F16, two shards ----
    model = Qwen2MoeForCausalLM(cfg)
    names = list(model.state_dict().keys())  # canonical HF order
    assert set(names) == set(sd), set(names) ^ set(sd)
    for n in names:
        mx = sd[n].abs().max().item()
        assert mx < 60000, (n, mx)
    tensors = [(n, sd[n].to(torch.float16)) for n in names]
    total = sum(t.numel() * 2 for _, t in tensors)
    shards, cur, cur_size = [], [], 0
    for n, t in tensors:
        if cur and not shards and cur_size + t.numel() * 2 > total / 2:
            shards.append(cur)
            cur, cur_size = [], 0
        cur.append((n, t))
        cur_size += t.numel() * 2
    shards.append(cur)
    assert len(shards) == 2, len(shards)
    weight_map = {}
    for i, sh in enumerate(shards):
        fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
        write_safetensors(os.path.join(args.out, fn), sh)
        for n, _ in sh:
            weight_map[n] = fn
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg.to_hf("float16"), f, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfg.bos_token_id, "eos_token_id": [cfg.eos_token_id, 4095],
                   "do_sample": False, "max_new_tokens": 256, "transformers_version": "4.51.0"}, f, indent=2)
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(WORK, fn), os.path.join(args.out, fn))
    print("export: wrote weights (%d params, %d bytes) in %.1fs" % (num_params(model), total, time.time() - t0),
          flush=True)

    # ---- reload F16 weights from disk, evaluate in float32 ----
    sd16 = load_hf_dir(args.out)
    model.load_state_dict({k: v.float() for k, v in sd16.items()})
    model.eval()
    tok = BPETokenizer.from_json(os.path.join(args.out, "tokenizer.json"))
    refs = []
    for p in PROMPTS:
        ids = tok.encode(p)
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids]))
        logits = logits[0]
        g = greedy(model, ids, N_GREEDY)
        refs.append({
            "prompt": p,
            "input_ids": ids,
            "argmax": [int(x) for x in logits.argmax(-1).tolist()],
            "logits": [[sig5(x) for x in row] for row in logits.tolist()],
            "greedy_ids": g,
            "greedy_text": tok.decode(g),
        })
        print("export: %r -> %r" % (p[:40], tok.decode(g)), flush=True)
    ref = {
        "description": "Logits of the exported model for fixed prompts, computed in float32 from the F16 weights "
                       "stored in this directory (weights read back from the safetensors files). No BOS token is "
                       "prepended; input_ids is the plain tokenizer.json encoding of prompt. logits[i] is the "
                       "vocab_size-long logit vector at position i (predicting token i+1), rounded to 5 significant "
                       "digits. argmax[i] = argmax(logits[i]). greedy_ids: 16 greedily generated tokens "
                       "(argmax, no sampling, full recomputation each step) after the prompt.",
        "dtype_weights": "float16",
        "dtype_compute": "float32",
        "vocab_size": cfg.vocab_size,
        "prompts": refs,
    }
    if not args.no_eval:
        with open(os.path.join(ROOT, "data", "kjv", "test.txt"), encoding="utf-8") as f:
            test_ids = tok.encode(f.read())
        tl, tn, tu = eval_text(model, test_ids)
        ref["test_eval"] = {
            "description": "data/kjv/test.txt encoded with tokenizer.json (no BOS/EOS), split into non-overlapping "
                           "windows of 1024 tokens starting at token 0 (the last one shorter); each window is "
                           "evaluated independently from position 0; mean NLL (nats) over all predicted tokens "
                           "(1023 per full window). F16 weights, float32 compute.",
            "num_tokens": len(test_ids), "num_predicted": tn, "mean_nll": round(tl, 5), "perplexity": round(math.exp(tl), 4),
            "expert_usage": [[round(x, 4) for x in row.tolist()] for row in tu],
        }
        vids = np.fromfile(os.path.join(WORK, "valid.bin"), dtype=np.uint16).astype(np.int64).tolist()
        vl, vn, vu = eval_text(model, vids)
        print("export: test nll %.4f ppl %.2f | valid nll %.4f ppl %.2f" % (tl, math.exp(tl), vl, math.exp(vl)))
        with open(os.path.join(WORK, "export_eval.json"), "w") as f:
            json.dump({"test_nll": tl, "test_ppl": math.exp(tl), "test_tokens": len(test_ids),
                       "valid_nll_f16": vl, "valid_ppl_f16": math.exp(vl), "valid_predicted": vn,
                       "expert_usage_valid_f16": [[round(x, 4) for x in r.tolist()] for r in vu],
                       "expert_usage_test_f16": ref["test_eval"]["expert_usage"],
                       "ckpt": args.ckpt, "step": ck.get("step"), "summary": ck.get("summary")}, f, indent=2)
    with open(os.path.join(args.out, "reference-logits.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    sz = os.path.getsize(os.path.join(args.out, "reference-logits.json"))
    print("export: reference-logits.json %d bytes; done in %.1fs" % (sz, time.time() - t0))
    assert sz < 4 * 1024 * 1024


if __name__ == "__main__":
    main()
