#!/usr/bin/python3
"""bpe_ref.py — a Python reference for ssmlab's tokenizer.json byte-level BPE
(data/tokenizer.c), written independently of it, and the trainer that makes
the test fixture tests/data/tokenizer_fortunes.json.

It follows the Hugging Face `tokenizers` pipeline for GPT-2 / GPT-NeoX style
files: added tokens ("normalized": false on the raw text, then "normalized":
true on the normalised text, leftmost-longest, with single_word / lstrip /
rstrip), unicodedata normalisation, the GPT-2 pattern applied with the
`regex` module (Debian's python3-regex), GPT-2's bytes_to_unicode, and the
original GPT-2 BPE loop (merge the lowest-ranked pair everywhere, repeat).
Invalid UTF-8 is carried through as surrogate escapes.

  bpe_ref.py train OUT [--merges N] [--corpus DIR]   train the fixture
  bpe_ref.py variant IN OUT [options]                 rewrite a tokenizer.json
  bpe_ref.py pretok FILE INPUTS                       pieces, one line per input
  bpe_ref.py encode FILE INPUTS                       ids, one line per input
INPUTS has one hex-encoded input per line.  pretok prints each piece as the
hex of its bytes, followed by "@id" for an added token; encode prints ids.
"""
import argparse
import collections
import json
import os
import sys
import unicodedata

import regex

GPT2_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
WORD_END = regex.compile(r"[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$")
WORD_START = regex.compile(r"^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]")
SPACE_END = regex.compile(r"\p{White_Space}*$")
SPACE_START = regex.compile(r"^\p{White_Space}*")
NORMAL_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def bytes_to_unicode():
    """GPT-2's table: byte -> the character that stands for it."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD))
            + list(range(0xAE, 0x100)))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_CHAR = bytes_to_unicode()


def to_text(raw):
    return raw.decode("utf-8", "surrogateescape")


def to_bytes(text):
    return text.encode("utf-8", "surrogateescape")


def byte_level(text):
    return "".join(BYTE_CHAR[b] for b in to_bytes(text))


class Tokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        model = j["model"]
        assert model.get("type", "BPE") == "BPE"
        self.vocab = model["vocab"]
        self.ranks = {}
        for rank, m in enumerate(model["merges"]):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            self.ranks[(a, b)] = rank          # a later duplicate wins
        self.unk = model.get("unk_token")
        self.fuse_unk = model.get("fuse_unk", False)
        self.ignore_merges = model.get("ignore_merges", False)
        self.forms = self._forms(j.get("normalizer"))
        pre = j["pre_tokenizer"]
        if pre["type"] == "Sequence":
            (pre,) = pre["pretokenizers"]
        assert pre["type"] == "ByteLevel"
        self.prefix_space = pre.get("add_prefix_space", True)
        self.use_regex = pre.get("use_regex", True)
        self.added = [t for t in j.get("added_tokens", []) if t["content"]]
        for t in self.added:
            t.setdefault("normalized", not t.get("special", False))
            t["match"] = self.normalize(t["content"]) if t["normalized"] else t["content"]

    @staticmethod
    def _forms(norm):
        if norm is None:
            return []
        if norm["type"] == "Sequence":
            return [n["type"] for n in norm["normalizers"]]
        return [norm["type"]]

    def normalize(self, text):
        for form in self.forms:
            assert form in NORMAL_FORMS
            text = unicodedata.normalize(form, text)
        return text

    # -- added tokens --

    def _leftmost_longest(self, text, start, tokens):
        for i in range(start, len(text)):
            best = None
            for t in tokens:
                if text.startswith(t["match"], i) and (
                        best is None or len(t["match"]) > len(best["match"])):
                    best = t
            if best is not None:
                return i, best
        return None, None

    def split_added(self, text, normalized):
        """[(piece, id or None)] covering text."""
        tokens = [t for t in self.added if t["normalized"] == normalized]
        out, pos, done = [], 0, 0
        while tokens:
            i, t = self._leftmost_longest(text, pos, tokens)
            if t is None:
                break
            start, stop = i, i + len(t["match"])
            pos = stop
            if t.get("single_word") and (WORD_END.search(text[:start])
                                         or WORD_START.search(text[stop:])):
                continue
            if t.get("lstrip"):
                start = max(SPACE_END.search(text[:start]).start(), done)
            if t.get("rstrip"):
                stop += SPACE_START.search(text[stop:]).end()
            pos = stop
            if start > done:
                out.append((text[done:start], None))
            out.append((text[start:stop], t["id"]))
            done = stop
        if done < len(text):
            out.append((text[done:], None))
        return out

    # -- pre-tokenisation and BPE --

    def pieces(self, text):
        out = []
        for seg, tid in self.split_added(text, False):
            if tid is not None:
                out.append((seg, tid))
                continue
            for seg2, tid2 in self.split_added(self.normalize(seg), True):
                if tid2 is not None:
                    out.append((seg2, tid2))
                    continue
                if self.prefix_space and not seg2.startswith(" "):
                    seg2 = " " + seg2
                parts = GPT2_PATTERN.findall(seg2) if self.use_regex else [seg2]
                assert "".join(parts) == seg2
                out.extend((p, None) for p in parts)
        return out

    def symbols(self, word):
        syms = []
        last_unknown = False
        for ch in word:
            if ch in self.vocab:
                syms.append(ch)
                last_unknown = False
            elif self.unk in self.vocab:
                if not (self.fuse_unk and last_unknown):
                    syms.append(self.unk)
                last_unknown = True
        return syms

    def bpe(self, word):
        if self.ignore_merges and word in self.vocab:
            return [word]
        syms = self.symbols(word)
        while len(syms) > 1:
            pairs = set(zip(syms, syms[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and (syms[i], syms[i + 1]) == best:
                    merged.append(syms[i] + syms[i + 1])
                    i += 2
                else:
                    merged.append(syms[i])
                    i += 1
            syms = merged
        return syms

    def encode(self, raw):
        ids = []
        for piece, tid in self.pieces(to_text(raw)):
            if tid is not None:
                ids.append(tid)
            else:
                ids.extend(self.vocab[s] for s in self.bpe(byte_level(piece)))
        return ids


# ---- training the fixture ----

def read_corpus(directory, limit):
    text = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if "." in name or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text.append(f.read())
        if sum(map(len, text)) > limit:
            break
    multilingual = ("Café naïve résumé über Straße déjà-vu coöperate. 東京 日本語 "
                    "中文 한국어 Ελληνικά русский язык 🙂🚀 ½ ²³ 1234567 — “quotes” …\n")
    return "".join(text)[:limit] + multilingual * 40


def count_words(text):
    counts = collections.Counter(
        byte_level(p) for p in GPT2_PATTERN.findall(unicodedata.normalize("NFC", text)))
    return [[list(w), c] for w, c in counts.items()]


def pair_stats(words):
    stats, where = collections.Counter(), collections.defaultdict(set)
    for k, (syms, c) in enumerate(words):
        for p in zip(syms, syms[1:]):
            stats[p] += c
            where[p].add(k)
    return stats, where


def apply_merge(words, k, best, stats, where):
    syms, c = words[k]
    for p in zip(syms, syms[1:]):
        stats[p] -= c
    out, i = [], 0
    while i < len(syms):
        if i + 1 < len(syms) and (syms[i], syms[i + 1]) == best:
            out.append(syms[i] + syms[i + 1])
            i += 2
        else:
            out.append(syms[i])
            i += 1
    words[k][0] = out
    for p in zip(out, out[1:]):
        stats[p] += c
        where[p].add(k)


def train_merges(words, n_merges):
    stats, where = pair_stats(words)
    merges = []
    for _ in range(n_merges):
        best = max(stats, key=lambda p: (stats[p], p), default=None)
        if best is None or stats[best] < 2:
            break
        merges.append(best)
        for k in sorted(where.pop(best)):
            apply_merge(words, k, best, stats, where)
        del stats[best]
    return merges


def added(tid, content, special, normalized, **flags):
    return {"id": tid, "content": content, "single_word": flags.get("single_word", False),
            "lstrip": flags.get("lstrip", False), "rstrip": flags.get("rstrip", False),
            "normalized": normalized, "special": special}


def tokenizer_json(merges):
    vocab = {"<|endoftext|>": 0, "<|padding|>": 1}
    for b in range(256):
        vocab[BYTE_CHAR[b]] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    n = len(vocab)
    spaces = [added(n + k, " " * w, False, True) for k, w in enumerate((2, 3, 4, 8, 16))]
    byte_level_opts = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "<|endoftext|>", True, False),
                         added(1, "<|padding|>", True, False)] + spaces,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": dict(type="ByteLevel", **byte_level_opts),
        "post_processor": dict(type="ByteLevel", **byte_level_opts),
        "decoder": dict(type="ByteLevel", **byte_level_opts),
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [a + " " + b for a, b in merges]},
    }


def write_json(obj, path, ascii_only=False):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=ascii_only)
        f.write("\n")


def cmd_train(args):
    words = count_words(read_corpus(args.corpus, args.chars))
    write_json(tokenizer_json(train_merges(words, args.merges)), args.out)


# ---- variants of a tokenizer.json for the tests ----

def extra_added(j):
    n = 1 + max(max(j["model"]["vocab"].values()), max(t["id"] for t in j["added_tokens"]))
    j["added_tokens"] += [
        added(n, "<mask>", True, False, lstrip=True, rstrip=True),
        added(n + 1, "ony", False, True, single_word=True),
        added(n + 2, "cafe\u0301", False, True),      # matched once normalised
        added(n + 3, "[RAW]", False, False, rstrip=True),
        added(n + 4, "<|endoftext|><|endoftext|>", True, False),
    ]


def cmd_variant(args):
    with open(args.inp, encoding="utf-8") as f:
        j = json.load(f)
    model = j["model"]
    if args.pairs:
        model["merges"] = [m.split(" ", 1) for m in model["merges"]]
    if args.prefix_space:
        j["pre_tokenizer"]["add_prefix_space"] = True
    if args.no_regex:
        j["pre_tokenizer"]["use_regex"] = False
    if args.normalizer == "none":
        j["normalizer"] = None
    elif args.normalizer == "seq":
        j["normalizer"] = {"type": "Sequence",
                           "normalizers": [{"type": "NFD"}, {"type": "NFKC"}]}
    elif args.normalizer:
        j["normalizer"] = {"type": args.normalizer}
    if args.ignore_merges:
        model["ignore_merges"] = True
    if args.extra_added:
        extra_added(j)
    if args.drop_bytes:          # some bytes' characters leave the vocabulary
        for k, b in enumerate((0xE2, 0xF0, 0x9F)):    # ids stay dense
            model["vocab"]["<unused%d>" % k] = model["vocab"].pop(BYTE_CHAR[b])
        keep = lambda m: all(p in model["vocab"] and "".join(m) in model["vocab"]
                             for p in m)
        pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in model["merges"]]
        pairs = [m for m in pairs if keep(m) and "".join(m) in model["vocab"]]
        model["merges"] = [" ".join(m) for m in pairs]
        if args.drop_bytes == "unk":
            model["unk_token"] = "<|padding|>"
            model["fuse_unk"] = True
    write_json(j, args.out, ascii_only=args.ascii)


# ---- reference outputs ----

def read_inputs(path):
    with open(path) as f:
        return [bytes.fromhex(line.strip()) for line in f]


def cmd_pretok(args):
    tok = Tokenizer(args.file)
    for raw in read_inputs(args.inputs):
        out = []
        for piece, tid in tok.pieces(to_text(raw)):
            out.append(to_bytes(piece).hex() + ("" if tid is None else "@%d" % tid))
        print(" ".join(out))


def cmd_encode(args):
    tok = Tokenizer(args.file)
    for raw in read_inputs(args.inputs):
        print(" ".join(map(str, tok.encode(raw))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train")
    p.add_argument("out")
    p.add_argument("--merges", type=int, default=1000)
    p.add_argument("--chars", type=int, default=400000)
    p.add_argument("--corpus", default="/usr/share/games/fortunes")
    p.set_defaults(fn=cmd_train)
    p = sub.add_parser("variant")
    p.add_argument("inp")
    p.add_argument("out")
    p.add_argument("--pairs", action="store_true")
    p.add_argument("--prefix-space", action="store_true")
    p.add_argument("--no-regex", action="store_true")
    p.add_argument("--normalizer", choices=["none", "seq"] + list(NORMAL_FORMS))
    p.add_argument("--ignore-merges", action="store_true")
    p.add_argument("--extra-added", action="store_true")
    p.add_argument("--drop-bytes", choices=["drop", "unk"])
    p.add_argument("--ascii", action="store_true")
    p.set_defaults(fn=cmd_variant)
    for name, fn in (("pretok", cmd_pretok), ("encode", cmd_encode)):
        p = sub.add_parser(name)
        p.add_argument("file")
        p.add_argument("inputs")
        p.set_defaults(fn=fn)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
