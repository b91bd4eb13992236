#!/usr/bin/env python3
"""Train the KJV Qwen2-MoE model on CPU (one torch thread), resumable.

  train.py --steps 700 [--resume] [--time-budget-min 100]

Checkpoints go to tools/train/work/ckpt.pt (every --ckpt-min minutes, atomically
replaced) and tools/train/work/final.pt at the end.
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread: BLAS (OpenBLAS) and torch
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Qwen2MoeConfig, Qwen2MoeForCausalLM, load_balancing_loss, num_params  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(ROOT, "tools", "train", "work")


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def load_bin(name):
    return torch.from_numpy(np.fromfile(os.path.join(WORK, name + ".bin"), dtype=np.uint16).astype(np.int64))


@torch.no_grad()
def evaluate(model, data, seq_len, max_seqs=None):
    """Mean next-token loss over non-overlapping windows; also expert usage per layer."""
    model.eval()
    cfg = model.cfg
    tot_loss, tot_n = 0.0, 0
    usage = torch.zeros(cfg.num_hidden_layers, cfg.num_experts)
    n = (len(data) - 1) // seq_len
    if max_seqs:
        n = min(n, max_seqs)
    starts = [i * seq_len for i in range(n)]
    rem = len(data) - 1 - n * seq_len
    if not max_seqs and rem > 1:
        starts.append(len(data) - 1 - seq_len)  # tail window, score only the new tokens
    for j, s in enumerate(starts):
        x = data[s:s + seq_len].unsqueeze(0)
        y = data[s + 1:s + seq_len + 1].unsqueeze(0)
        logits, rls = model(x)
        lo = F.cross_entropy(logits.view(-1, cfg.vocab_size), y.view(-1), reduction="none")
        if j == n:  # tail
            lo = lo[-rem:]
        tot_loss += lo.sum().item()
        tot_n += lo.numel()
        for li, rl in enumerate(rls):
            sel = torch.topk(rl, cfg.num_experts_per_tok, dim=-1).indices
            usage[li] += torch.bincount(sel.view(-1), minlength=cfg.num_experts).float()
    model.train()
    usage = usage / usage.sum(dim=1, keepdim=True)
    return tot_loss / tot_n, usage


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def save(path, model, opt, gen, step, elapsed, args, history):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                "step": step, "elapsed": elapsed, "args": vars(args), "config": model.cfg.__dict__,
                "history": history}, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--ckpt-min", type=float, default=5.0)
    ap.add_argument("--time-budget-min", type=float, default=1e9,
                    help="stop (and checkpoint) after this much cumulative training wall time")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", default=os.path.join(WORK, "final.pt"))
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    cfg = Qwen2MoeConfig()
    model = Qwen2MoeForCausalLM(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator()
    gen.manual_seed(args.seed)
    train = load_bin("train")
    valid = load_bin("valid")
    step, elapsed, history = 0, 0.0, []
    ckpt_path = os.path.join(WORK, "ckpt.pt")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        step, elapsed, history = ck["step"], ck["elapsed"], ck.get("history", [])
        log("resumed from step %d (%.1f min elapsed)" % (step, elapsed / 60))
    log("params %d, train tokens %d, valid tokens %d, %d tokens/step, %d steps (%.2f epochs)" % (
        num_params(model), len(train), len(valid), args.batch * args.seq_len, args.steps,
        args.steps * args.batch * args.seq_len / len(train)))

    model.train()
    t_last_ckpt = time.time()
    t0 = time.time() - elapsed
    run_loss, run_aux, run_n, t_win, tok_win = 0.0, 0.0, 0, time.time(), 0
    L = args.seq_len
    stopped_early = False
    while step < args.steps:
        if time.time() - t0 > args.time_budget_min * 60:
            log("time budget reached at step %d" % step)
            stopped_early = True
            break
        lr = lr_at(step, args)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(train) - L - 1, (args.batch,), generator=gen)
        batch = torch.stack([train[s:s + L + 1] for s in starts.tolist()])
        logits, rls = model(batch[:, :-1])
        ce = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), batch[:, 1:].reshape(-1))
        aux = load_balancing_loss(rls, cfg.num_experts, cfg.num_experts_per_tok)
        loss = ce + cfg.router_aux_loss_coef * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        run_loss += ce.item()
        run_aux += aux.item()
        run_n += 1
        tok_win += args.batch * L
        if step % 10 == 0 or step == args.steps:
            dt = time.time() - t_win
            log("step %d/%d lr %.2e loss %.4f aux %.4f gnorm %.2f %.0f tok/s elapsed %.1f min" % (
                step, args.steps, lr, run_loss / run_n, run_aux / run_n, gn, tok_win / dt, (time.time() - t0) / 60))
            history.append({"step": step, "train_loss": run_loss / run_n, "aux": run_aux / run_n,
                            "tok_s": tok_win / dt, "elapsed_s": time.time() - t0})
            run_loss, run_aux, run_n, t_win, tok_win = 0.0, 0.0, 0, time.time(), 0
        if step % args.eval_every == 0 and step < args.steps:
            vl, usage = evaluate(model, valid, L, max_seqs=8)
            log("eval step %d valid loss %.4f ppl %.2f (first 8 windows)" % (step, vl, math.exp(vl)))
            history.append({"step": step, "valid_loss_8": vl})
        if time.time() - t_last_ckpt > args.ckpt_min * 60:
            save(ckpt_path, model, opt, gen, step, time.time() - t0, args, history)
            t_last_ckpt = time.time()
            log("checkpoint saved at step %d" % step)
    elapsed = time.time() - t0
    save(ckpt_path, model, opt, gen, step, elapsed, args, history)
    vl, usage = evaluate(model, valid, L)
    tl, _ = evaluate(model, train, L, max_seqs=21)
    summary = {"step": step, "steps_planned": args.steps, "stopped_early": stopped_early,
               "train_wall_s": elapsed, "train_loss": tl, "train_ppl": math.exp(tl),
               "valid_loss": vl, "valid_ppl": math.exp(vl),
               "expert_usage_valid": [[round(x, 4) for x in row.tolist()] for row in usage],
               "mean_tok_s": step * args.batch * L / elapsed, "params": num_params(model),
               "args": vars(args)}
    log("final: " + json.dumps(summary))
    torch.save({"model": model.state_dict(), "step": step, "config": cfg.__dict__, "summary": summary,
                "history": history}, args.out)
    with open(os.path.join(WORK, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    log("saved " + args.out)


if __name__ == "__main__":
    main()
