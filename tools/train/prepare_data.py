#!/usr/bin/env python3
"""Extract the King James Bible from the Debian `bible-kjv` package and split it
by whole books into train / validation / test text.

Output format: one verse per line (verse references stripped), a blank line
between books.  Deterministic (no randomness: the held-out books are fixed).

  train -> tools/train/work/train.txt
  valid -> tools/train/work/valid.txt
  test  -> data/kjv/test.txt   (committed)
"""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(ROOT, "tools", "train", "work")

# Held-out books (whole books, spread over OT and NT, ~60-100 KB each set).
TEST_BOOKS = ["Ruth", "Jonah", "Micah", "Philippians", "1 Thessalonians", "James"]
VALID_BOOKS = ["Esther", "Joel", "Galatians", "Colossians", "1 Peter"]

HEADER_RE = re.compile(r"^(.+) (\d+)$")
VERSE_RE = re.compile(r"^\s+(\d+) (.*)$")


def extract():
    # -l100000: no line wrapping, so each verse is exactly one line.
    out = subprocess.run(["bible", "-l100000", "Gen1:1-Rev22:21"],
                         check=True, stdout=subprocess.PIPE).stdout.decode("utf-8")
    books = []  # list of (name, [verses])
    cur = None
    for line in out.split("\n"):
        if not line.strip():
            continue
        m = VERSE_RE.match(line)
        if m:
            text = " ".join(m.group(2).split())
            cur[1].append(text)
            continue
        m = HEADER_RE.match(line)
        if not m:
            raise SystemExit("unexpected line: %r" % line)
        name = m.group(1)
        if cur is None or cur[0] != name:
            cur = (name, [])
            books.append(cur)
    return books


def main():
    books = extract()
    names = [b[0] for b in books]
    assert len(books) == 66, len(books)
    for n in TEST_BOOKS + VALID_BOOKS:
        assert n in names, n
    nverses = sum(len(v) for _, v in books)
    assert nverses == 31102, nverses
    split = {"train": [], "valid": [], "test": []}
    for name, verses in books:
        key = "test" if name in TEST_BOOKS else "valid" if name in VALID_BOOKS else "train"
        split[key].append("\n".join(verses) + "\n")
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(os.path.join(ROOT, "data", "kjv"), exist_ok=True)
    paths = {
        "train": os.path.join(WORK, "train.txt"),
        "valid": os.path.join(WORK, "valid.txt"),
        "test": os.path.join(ROOT, "data", "kjv", "test.txt"),
    }
    for k, parts in split.items():
        text = "\n".join(parts)
        with open(paths[k], "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print("%-5s %3d books %8d bytes -> %s" % (k, len(parts), len(text.encode()), os.path.relpath(paths[k], ROOT)))


if __name__ == "__main__":
    main()
