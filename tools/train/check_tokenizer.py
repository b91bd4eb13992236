#!/usr/bin/env python3
"""Cross-check the Python BPE encoder against @huggingface/tokenizers (JS) on held-out text.
Usage: check_tokenizer.py [dir containing tokenizer.json] (default tools/train/work)"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from tokenizer import BPETokenizer, ROOT, WORK  # noqa: E402


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else WORK
    tok = BPETokenizer.from_json(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(ROOT, "data", "kjv", "test.txt"), encoding="utf-8") as f:
        test = f.read()
    lines = test.split("\n")
    texts = lines[:200] + [test[:5000], test, "In the beginning", "  spaces   and\ttabs\n\n\nnewlines ",
                           "Unicode: caf\u00e9 \u00fcber \u4e2d\u6587 \U0001F600 1234567 it's they'll",
                           "And the LORD said unto Moses,"]
    exp = [{"text": t, "ids": tok.encode(t)} for t in texts]
    p = os.path.join(WORK, "tok_expected.json")
    with open(p, "w", encoding="utf-8") as f:
        json.dump(exp, f, ensure_ascii=False)
    r = subprocess.run(["node", os.path.join(ROOT, "tools", "train", "check_tokenizer.js"), d, p], cwd=ROOT)
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
