#!/usr/bin/env python3
"""make_corpus.py — writes the seed corpora of the libFuzzer harnesses in
tests/fuzz/ (small valid files of each kind, a few slightly broken ones),
one directory per harness: OUT/npy, OUT/safetensors, OUT/torch, ... made from
the repository's fixtures (tests/data/, scenarios/*.conf) with numpy and
torch.  With --regressions DIR it instead rebuilds the hostile inputs of
issue 15 (tests/fuzz/regressions/) from their descriptions.

usage: /usr/bin/python3 tests/fuzz/make_corpus.py OUT
       /usr/bin/python3 tests/fuzz/make_corpus.py --regressions DIR"""
import collections
import gzip
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "data")


def put(out, kind, name, data):
    d = os.path.join(out, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def npy_bytes(arr, version=None):
    buf = io.BytesIO()
    if version:
        np.lib.format.write_array(buf, arr, version=version)
    else:
        np.save(buf, arr)
    return buf.getvalue()


def seeds_npy(out):
    r = np.arange(24, dtype=np.float32) / 8
    put(out, "npy", "f4-2d.npy", npy_bytes(r.reshape(4, 6)))
    put(out, "npy", "f4-scalar.npy", npy_bytes(np.float32(1.5)))
    put(out, "npy", "f4-empty.npy", npy_bytes(np.zeros((0, 3), np.float32)))
    put(out, "npy", "f4-be-3d.npy", npy_bytes(r.reshape(2, 3, 4).astype(">f4")))
    put(out, "npy", "f4-v2.npy", npy_bytes(r[:5], version=(2, 0)))
    put(out, "npy", "f4-v3.npy", npy_bytes(r[:3], version=(3, 0)))
    put(out, "npy", "f8-rejected.npy", npy_bytes(r[:4].astype(np.float64)))
    put(out, "npy", "f4-fortran.npy", npy_bytes(np.asfortranarray(r.reshape(4, 6))))


def safetensors_bytes(tensors, meta=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, off, data = {}, 0, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def tiny_state_dict():
    return torch.load(os.path.join(FIXTURES, "mamba_tiny_torch", "pytorch_model.bin"),
                      map_location="cpu", weights_only=True)


def raw(t, dtype):
    return t.detach().contiguous().to(dtype).view(torch.uint8).numpy().tobytes()


def seeds_safetensors(out):
    x = torch.arange(6, dtype=torch.float32) / 4
    put(out, "safetensors", "dtypes.safetensors", safetensors_bytes([
        ("a", "F32", (2, 3), raw(x, torch.float32)),
        ("b", "F16", (6,), raw(x, torch.float16)),
        ("c", "BF16", (3, 2), raw(x, torch.bfloat16)),
        ("d", "F64", (1, 6), raw(x, torch.float64)),
        ("e", "I64", (6,), raw(x.long(), torch.int64))], {"format": "pt", "k": "v"}))
    put(out, "safetensors", "scalar-empty.safetensors", safetensors_bytes([
        ("s", "F32", (), raw(x[:1], torch.float32)), ("z", "F32", (0, 4), b"")]))
    put(out, "safetensors", "empty.safetensors", safetensors_bytes([], {}))
    sd = tiny_state_dict()
    tensors = [(k, "F32", tuple(v.shape), raw(v, torch.float32))
               for k, v in sd.items() if k != "lm_head.weight"]
    model = safetensors_bytes(tensors, {"format": "pt", "ssmlab.step": "7", "ssmlab.seed": "3",
                                        "ssmlab.run_config": "d_model = 8\nn_layer = 2\n"})
    put(out, "safetensors", "mamba-tiny.safetensors", model)
    put(out, "checkpoint", "mamba-tiny.safetensors", model)
    bf16 = [(k, "BF16", s, raw(sd[k], torch.bfloat16)) for k, _, s, _ in tensors]
    put(out, "checkpoint", "mamba-tiny-bf16.safetensors", safetensors_bytes(bf16, {"format": "pt"}))
    put(out, "checkpoint", "mamba-tiny-missing.safetensors", safetensors_bytes(tensors[:5]))


def torch_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def seeds_torch(out):
    with open(os.path.join(FIXTURES, "mamba_tiny_torch", "pytorch_model.bin"), "rb") as f:
        put(out, "torch", "mamba-tiny.bin", f.read())
    x = torch.arange(12, dtype=torch.float32) / 4
    sd = collections.OrderedDict([("a", x.view(3, 4)), ("b", x[2:8].half()),
                                  ("c", x.bfloat16()), ("d", x.double().view(2, 6))])
    put(out, "torch", "dtypes.bin", torch_bytes(sd))
    put(out, "torch", "shared.bin", torch_bytes({"w": x, "tied": x, "s": torch.tensor(2.0)}))
    put(out, "torch", "empty.bin", torch_bytes({}))


def seeds_config(out):
    with open(os.path.join(FIXTURES, "mamba_tiny_torch", "config.json")) as f:
        base = json.load(f)
    put(out, "config", "mamba-tiny.json", json.dumps(base))
    hf = {"model_type": "mamba", "hidden_size": 8, "num_hidden_layers": 2, "vocab_size": 16,
          "state_size": 4, "conv_kernel": 4, "expand": 2, "time_step_rank": 1,
          "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True}
    put(out, "config", "transformers.json", json.dumps(hf))
    own = dict(base, tie_embeddings=False,
               ssmlab={"input_kind": "tokens", "d_input": 0, "n_classes": 0, "norm_eps": 1e-5})
    put(out, "config", "ssmlab.json", json.dumps(own))
    put(out, "config", "bad-type.json", json.dumps(dict(base, d_model="8")))


def tokenizer_json(vocab, merges, added=(), normalizer=None):
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for i, c in added],
        "normalizer": normalizer,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": vocab,
                  "merges": merges}})


def seeds_tokenizer(out):
    with open(os.path.join(FIXTURES, "tokenizer_fortunes.json"), "rb") as f:
        put(out, "tokenizer", "fortunes.json", f.read())
    vocab = {"H": 0, "e": 1, "l": 2, "o": 3, "He": 4, "ll": 5, "Hell": 6, "\u0120": 7, "w": 8}
    put(out, "tokenizer", "tiny.json",
        tokenizer_json(vocab, ["H e", "l l", "He ll"], [(9, "<|endoftext|>")]))
    put(out, "tokenizer", "tiny-nfc.json",
        tokenizer_json(vocab, [["H", "e"], ["l", "l"]], normalizer={"type": "NFC"}))


def idx_bytes(dims, data):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + data


def seeds_idx(out):
    pix = bytes((i * 37) % 256 for i in range(4 * 6 * 6))
    for name, data in [("images3.idx", idx_bytes((4, 6, 6), pix)),
                       ("images4.idx", idx_bytes((4, 3, 3, 4), pix[:144])),
                       ("labels.idx", idx_bytes((4,), bytes([0, 3, 1, 2]))),
                       ("images-empty.idx", idx_bytes((0, 6, 6), b""))]:
        put(out, "idx", name, data)
        put(out, "idx", name + ".gz", gzip.compress(data, mtime=0))


def seeds_cifar(out):
    rec = lambda label: bytes([label]) + bytes((i * 13 + label) % 256 for i in range(3072))
    one, two = rec(3), rec(3) + rec(9)
    put(out, "cifar", "one.bin", one)
    put(out, "cifar", "two.bin", two)
    put(out, "cifar", "one.bin.gz", gzip.compress(one, mtime=0))
    put(out, "cifar", "two.bin.gz", gzip.compress(two, mtime=0))
    put(out, "cifar", "short.bin", one[:100])


def seeds_text(out):
    put(out, "text", "plain.txt", "The quick brown fox jumps over the lazy dog.\n" * 3)
    put(out, "text", "fortune.txt", "A fortune.\n%\nAnother one,\n  -- someone\n%\nLast.\n")
    put(out, "text", "binary.txt", bytes(range(256)))
    put(out, "text", "tiny.txt", "ab")


def seeds_run_config(out):
    d = os.path.join(ROOT, "scenarios")
    for name in sorted(os.listdir(d)):
        if name.endswith(".conf"):
            with open(os.path.join(d, name), "rb") as f:
                put(out, "run_config", name, f.read())
    put(out, "run_config", "overrides.conf", "task = mqar  # trailing comment\nseed=7\r\nlr=1e-3\n")


def seeds_history(out):
    cols = ["step", "split", "loss", "acc", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "bpb",
            "eig_pos", "eig_neg", "verdict", "decay"]
    rows = [[str(s), sp, "%.3f" % (3 - s / 100), "", "0.001", "1.5", "1000", str(s), "", "4", "0",
             "positive", "0.5"] for s in (10, 20) for sp in ("train", "val")]
    csv = "\n".join(",".join(r) for r in [cols] + rows) + "\n"
    put(out, "history", "train.csv", csv)
    put(out, "history", "crlf-quoted.csv",
        'step,split,loss,note\r\n1,val,2.5,"a, ""quoted"" cell"\r\n\r\n2,val,2.25,"multi\nline"\r\n')
    put(out, "history", "ragged.csv", "step,split,loss\n1,val\n2,val,1.0,extra\n")


def seeds_keys(out):
    put(out, "keys", "keys", "# my keys\nrun = r space\nstep = s Right\n  # indented comment\n"
                             "validate = v F5 C-v\ncancel = Esc\n\nscenario = #\n")
    put(out, "keys", "crlf", "run = r\r\nstep = S-Tab PgDn\r\n")


def regressions(d):
    """The hostile inputs named by issue 15, rebuilt from their descriptions."""
    os.makedirs(d, exist_ok=True)

    def write(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    # IDX images: dims 0x6060 x 0x20e9 x 0x8e, 3 data bytes
    write("idx-huge-dims.idx", struct.pack(">BBBBIII", 0, 0, 8, 3, 0x6060, 0x20e9, 0x8e) + b"\1\2\3")

    def npy(header, version=1, pad_to=None):
        h = header.encode()
        if pad_to:
            h += b" " * (pad_to - 10 - len(h) - 1) + b"\n"
        return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H", len(h)) + h

    # a shape whose product passes 2^60 (and whose byte count passes 2^64)
    write("npy-shape-overflow.npy",
          npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, 2147483648, 3), }", pad_to=128))
    # the header ends inside descr: parse_header reads d[2..4] past the buffer
    write("npy-truncated-descr.npy", npy("{'descr': '"))
    # 80 bytes asking for 4 TB of float32
    write("npy-4tb.npy",
          npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", pad_to=80))
    # 255-byte pytorch_model.bin: a pickle putting and getting memo index 0xFFFFFF
    pkl = b"\x80\x02}r\xff\xff\xff\x00j\xff\xff\xff\x00."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", (1980, 1, 1, 0, 0, 0)), pkl)
    data = buf.getvalue()
    data = data[:-2] + struct.pack("<H", 255 - len(data)) + b"\0" * (255 - len(data))
    write("torch-memo-ffffff.bin", data)
    # 106-byte tokenizer.json with one id 16777215
    tok = '{"model": {"type": "BPE", "vocab": {"a": 16777215}, "merges": []}}'
    write("tokenizer-id-ffffff.json", (tok + " " * (105 - len(tok)) + "\n").encode())
    # a run config comment line longer than 1 KB whose tail is `lr = 1e+09`:
    # run_config_read's fgets takes 1087 bytes a time, so the tail reads as a line
    write("run_config-long-comment.conf", ("# " + "x" * 1085 + "lr = 1e+09\n").encode())
    # the same in the lab's keys file (tui/keys.c, 511 bytes a time): rebinds run to q
    write("keys-long-comment", ("# " + "x" * 509 + "run = q\n").encode())


def main(argv):
    if len(argv) == 3 and argv[1] == "--regressions":
        regressions(argv[2])
        return
    if len(argv) != 2:
        sys.exit(__doc__)
    for make in (seeds_npy, seeds_safetensors, seeds_torch, seeds_config, seeds_tokenizer,
                 seeds_idx, seeds_cifar, seeds_text, seeds_run_config, seeds_history, seeds_keys):
        make(argv[1])


if __name__ == "__main__":
    main(sys.argv)
