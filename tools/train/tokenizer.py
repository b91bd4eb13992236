#!/usr/bin/env python3
"""Train a byte-level BPE tokenizer (GPT-2 style) on the training text, pure Python.

Vocabulary: 256 byte tokens (id = byte value) + merges + 3 special tokens
(<|endoftext|>, <|im_start|>, <|im_end|>) = 4096.

Writes:
  tools/train/work/tokenizer.json, tokenizer_config.json  (Hugging Face format)
  tools/train/work/{train,valid,test}.bin   (uint16 token ids; books separated by <|endoftext|>)

Usage: tokenizer.py [--vocab 4096]
"""
import argparse
import heapq
import json
import os
import sys
import time
from collections import Counter, defaultdict

import regex

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(ROOT, "tools", "train", "work")

# Exactly the pattern used by the HF ByteLevel pre-tokenizer (use_regex: true).
PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE2U = bytes_to_unicode()


def pretokenize(text):
    return PAT.findall(text)


def train_bpe(text, vocab_size):
    n_merges = vocab_size - 256 - len(SPECIALS)
    t0 = time.time()
    wc = Counter(pretokenize(text))
    words = [list(w.encode("utf-8")) for w in wc]
    freqs = [wc[w] for w in wc]
    print("tokenizer: %d unique pre-tokens (%.1fs)" % (len(words), time.time() - t0), flush=True)

    pair_counts = defaultdict(int)
    pair_words = defaultdict(set)
    for i, (w, f) in enumerate(zip(words, freqs)):
        for p in zip(w, w[1:]):
            pair_counts[p] += f
            pair_words[p].add(i)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    merges = []  # list of (a, b) token ids
    tok_bytes = [bytes([i]) for i in range(256)]
    while len(merges) < n_merges and heap:
        negc, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negc or negc == 0:
            continue  # stale entry
        new_id = 256 + len(merges)
        merges.append(pair)
        tok_bytes.append(tok_bytes[pair[0]] + tok_bytes[pair[1]])
        a, b = pair
        changed = set()
        for i in sorted(pair_words[pair]):
            w = words[i]
            f = freqs[i]
            # remove old pairs
            for p in zip(w, w[1:]):
                pair_counts[p] -= f
                changed.add(p)
            nw = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    nw.append(new_id)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            for p in zip(w, w[1:]):
                pair_words[p].discard(i)
            words[i] = nw
            for p in zip(nw, nw[1:]):
                pair_counts[p] += f
                pair_words[p].add(i)
                changed.add(p)
        for p in changed:
            c = pair_counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_counts.pop(p, None)
                pair_words.pop(p, None)
    print("tokenizer: %d merges (%.1fs)" % (len(merges), time.time() - t0), flush=True)
    return merges, tok_bytes


def tok_str(bs):
    return "".join(BYTE2U[x] for x in bs)


class BPETokenizer:
    """Byte-level BPE encoder equivalent to HF tokenizers' BPE + ByteLevel."""

    def __init__(self, merges, tok_bytes):
        self.merges = merges
        self.tok_bytes = tok_bytes
        self.ranks = {p: r for r, p in enumerate(merges)}
        self.pair_to_id = {p: 256 + r for r, p in enumerate(merges)}
        self.cache = {}
        self.special_ids = {s: len(tok_bytes) + i for i, s in enumerate(SPECIALS)}

    @classmethod
    def from_json(cls, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        vocab = tj["model"]["vocab"]
        u2b = {u: b for b, u in BYTE2U.items()}
        tok_bytes = [None] * len(vocab)
        for s, i in vocab.items():
            tok_bytes[i] = bytes(u2b[c] for c in s)
        merges = []
        for m in tj["model"]["merges"]:
            x, y = m.split(" ") if isinstance(m, str) else m
            merges.append((vocab[x], vocab[y]))
        return cls(merges, tok_bytes)

    def encode_word(self, w):
        r = self.cache.get(w)
        if r is not None:
            return r
        ids = list(w.encode("utf-8"))
        ranks = self.ranks
        while len(ids) > 1:
            best = None
            for p in zip(ids, ids[1:]):
                rk = ranks.get(p)
                if rk is not None and (best is None or rk < best[0]):
                    best = (rk, p)
            if best is None:
                break
            a, b = best[1]
            nid = 256 + best[0]
            out = []
            j = 0
            while j < len(ids):
                if j + 1 < len(ids) and ids[j] == a and ids[j + 1] == b:
                    out.append(nid)
                    j += 2
                else:
                    out.append(ids[j])
                    j += 1
            ids = out
        self.cache[w] = ids
        return ids

    def encode(self, text):
        out = []
        for w in pretokenize(text):
            out.extend(self.encode_word(w))
        return out

    def decode(self, ids):
        bs = b""
        for i in ids:
            if i < len(self.tok_bytes):
                bs += self.tok_bytes[i]
            else:
                bs += SPECIALS[i - len(self.tok_bytes)].encode()
        return bs.decode("utf-8", errors="replace")

    @property
    def vocab_size(self):
        return len(self.tok_bytes) + len(SPECIALS)

    def to_json(self):
        vocab = {tok_str(b): i for i, b in enumerate(self.tok_bytes)}
        assert len(vocab) == len(self.tok_bytes), "duplicate token strings"
        merges = ["%s %s" % (tok_str(self.tok_bytes[a]), tok_str(self.tok_bytes[b])) for a, b in self.merges]
        added = [{
            "id": len(self.tok_bytes) + i, "content": s, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True,
        } for i, s in enumerate(SPECIALS)]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                              "use_regex": True},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                               "use_regex": False},
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                        "use_regex": True},
            "model": {
                "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                "ignore_merges": False, "vocab": vocab, "merges": merges,
            },
        }

    def config_json(self):
        dec = {}
        for i, s in enumerate(SPECIALS):
            dec[str(len(self.tok_bytes) + i)] = {
                "content": s, "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False, "special": True}
        return {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": dec,
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": None,
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "unk_token": None,
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "errors": "replace",
            "model_max_length": 2048,
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
        }


def encode_split(tok, path):
    import numpy as np
    with open(path, encoding="utf-8") as f:
        text = f.read()
    eos = tok.special_ids["<|endoftext|>"]
    ids = []
    for book in text.split("\n\n"):
        if book.strip():
            ids.extend(tok.encode(book if book.endswith("\n") else book + "\n"))
            ids.append(eos)
    return np.array(ids, dtype=np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()
    with open(os.path.join(WORK, "train.txt"), encoding="utf-8") as f:
        text = f.read()
    merges, tok_bytes = train_bpe(text, args.vocab)
    tok = BPETokenizer(merges, tok_bytes)
    assert tok.vocab_size == args.vocab, tok.vocab_size
    with open(os.path.join(WORK, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok.to_json(), f, ensure_ascii=False, indent=None)
    with open(os.path.join(WORK, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tok.config_json(), f, ensure_ascii=False, indent=2)
    # reload from json to make sure the json is self-consistent
    tok = BPETokenizer.from_json(os.path.join(WORK, "tokenizer.json"))
    for name, path in [("train", os.path.join(WORK, "train.txt")), ("valid", os.path.join(WORK, "valid.txt")),
                       ("test", os.path.join(ROOT, "data", "kjv", "test.txt"))]:
        t0 = time.time()
        arr = encode_split(tok, path)
        arr.tofile(os.path.join(WORK, name + ".bin"))
        nbytes = os.path.getsize(path)
        print("tokenizer: %s %d tokens (%.2f bytes/token, %.1fs)" % (name, len(arr), nbytes / len(arr),
                                                                     time.time() - t0), flush=True)
    # round trip
    with open(os.path.join(ROOT, "data", "kjv", "test.txt"), encoding="utf-8") as f:
        t = f.read()
    assert tok.decode(tok.encode(t)) == t
    print("tokenizer: round trip ok")


if __name__ == "__main__":
    main()
