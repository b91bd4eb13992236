#!/usr/bin/env python3
"""test_model.py [--check-export models/kjv-moe]

Check model.py against a direct, line-by-line transcription of HF modeling_qwen2_moe.py
(eager attention, one-hot expert loop, repeat_kv), on random weights, in float64."""
import math
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread: BLAS (OpenBLAS) and torch
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Qwen2MoeConfig, Qwen2MoeForCausalLM  # noqa: E402


def hf_reference(sd, cfg, ids):
    def rms(x, w):
        dt = x.dtype
        x = x.to(torch.float32)  # HF: hidden_states.to(torch.float32)
        v = x.pow(2).mean(-1, keepdim=True)
        return w * (x * torch.rsqrt(v + cfg.rms_norm_eps)).to(dt)

    def lin(x, name, bias=False):
        y = x @ sd[name + ".weight"].T
        return y + sd[name + ".bias"] if bias else y

    def mlp(x, p):
        return lin(F.silu(lin(x, p + ".gate_proj")) * lin(x, p + ".up_proj"), p + ".down_proj")

    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def repeat_kv(h, n_rep):
        b, nk, s, d = h.shape
        return h[:, :, None, :, :].expand(b, nk, n_rep, s, d).reshape(b, nk * n_rep, s, d)

    B, T = ids.shape
    d = cfg.head_dim
    base = cfg.rope_theta
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    pos = torch.arange(T)[None, :].float()
    freqs = (inv_freq[None, :, None].float() @ pos[:, None, :]).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    h = sd["model.embed_tokens.weight"][ids]
    dt = h.dtype
    cos, sin = emb.cos().to(dt)[:, None], emb.sin().to(dt)[:, None]
    mask = torch.full((T, T), torch.finfo(dt).min, dtype=dt).triu(1)
    for i in range(cfg.num_hidden_layers):
        p = "model.layers.%d." % i
        res = h
        x = rms(h, sd[p + "input_layernorm.weight"])
        q = lin(x, p + "self_attn.q_proj", True).view(B, T, -1, d).transpose(1, 2)
        k = lin(x, p + "self_attn.k_proj", True).view(B, T, -1, d).transpose(1, 2)
        v = lin(x, p + "self_attn.v_proj", True).view(B, T, -1, d).transpose(1, 2)
        q, k = (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)
        rep = cfg.num_attention_heads // cfg.num_key_value_heads
        k, v = repeat_kv(k, rep), repeat_kv(v, rep)
        a = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d) + mask
        a = F.softmax(a, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(a, v).transpose(1, 2).reshape(B, T, -1)
        h = res + lin(o, p + "self_attn.o_proj")
        res = h
        x = rms(h, sd[p + "post_attention_layernorm.weight"]).view(-1, cfg.hidden_size)
        rl = lin(x, p + "mlp.gate")
        rw = F.softmax(rl, dim=1, dtype=torch.float)
        rw, sel = torch.topk(rw, cfg.num_experts_per_tok, dim=-1)
        if cfg.norm_topk_prob:
            rw /= rw.sum(dim=-1, keepdim=True)
        rw = rw.to(x.dtype)
        out = torch.zeros_like(x)
        em = F.one_hot(sel, num_classes=cfg.num_experts).permute(2, 1, 0)
        for e in range(cfg.num_experts):
            idx, top_x = torch.where(em[e])
            cur = mlp(x[top_x], p + "mlp.experts.%d" % e) * rw[top_x, idx, None]
            out.index_add_(0, top_x, cur)
        sh = mlp(x, p + "mlp.shared_expert") * torch.sigmoid(lin(x, p + "mlp.shared_expert_gate"))
        h = res + (out + sh).view(B, T, -1)
    h = rms(h, sd["model.norm.weight"])
    return lin(h, "lm_head")


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = Qwen2MoeConfig()
    m = Qwen2MoeForCausalLM(cfg).double()
    with torch.no_grad():  # non-trivial norms / biases
        for n, p in m.named_parameters():
            if n.endswith("layernorm.weight") or n == "model.norm.weight" or n.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.1)
            elif p.dim() == 2:
                p.mul_(5.0)
    ids = torch.randint(0, cfg.vocab_size, (2, 37))
    with torch.no_grad():
        a, _ = m(ids)
        b = hf_reference({k: v.double() for k, v in m.state_dict().items()}, cfg, ids)
    err = (a - b).abs().max().item()
    print("max |model - hf_reference| = %.3e (logit scale %.2f)" % (err, b.abs().max().item()))
    assert err < 1e-9, err
    print("OK")


def check_export(d):
    """Recompute reference-logits.json of an exported folder with the HF transcription above."""
    import json
    from export import load_hf_dir
    with open(os.path.join(d, "config.json")) as f:
        cfg = Qwen2MoeConfig.from_dict(json.load(f))
    sd = {k: v.float() for k, v in load_hf_dir(d).items()}
    with open(os.path.join(d, "reference-logits.json")) as f:
        ref = json.load(f)
    worst = 0.0
    for p in ref["prompts"]:
        with torch.no_grad():
            got = hf_reference(sd, cfg, torch.tensor([p["input_ids"]]))[0]
        exp = torch.tensor(p["logits"])
        err = ((got - exp).abs() / (exp.abs() + 1e-3)).max().item()
        worst = max(worst, err)
        assert got.argmax(-1).tolist() == p["argmax"]
    print("reference-logits.json vs HF transcription: max relative error %.2e" % worst)
    assert worst < 1e-3, worst
    print("OK")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--check-export":
        check_export(sys.argv[2])
    else:
        main()
