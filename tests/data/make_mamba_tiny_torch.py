"""make_mamba_tiny_torch.py — writes a tiny state-spaces/mamba-style
checkpoint (config.json + pytorch_model.bin from torch.save) for
tests/unit/engine/test_checkpoint.c.  Values follow a formula the test recomputes; some
tensors are float16 / bfloat16, one is a view at a storage offset, and
lm_head.weight shares the embedding's storage, as in mamba-130m.

usage: /usr/bin/python3 make_mamba_tiny_torch.py OUTDIR"""
import collections
import json
import os
import sys

import torch

D, N_LAYER, VOCAB, PAD = 8, 2, 10, 8
N, K, EXPAND = 4, 4, 2
E, R = EXPAND * D, (D + 15) // 16
V = (VOCAB + PAD - 1) // PAD * PAD


def value(name, j):
    """Element j of tensor name: small multiples of 1/16, exact in f16/bf16."""
    h = sum(name.encode()) % 13
    return ((j * 7 + h * 3) % 29 - 14) / 16.0


def make(name, shape, dtype=torch.float32, offset=0):
    numel = 1
    for s in shape:
        numel *= s
    data = torch.tensor([value(name, j) for j in range(numel)], dtype=torch.float32)
    if offset:
        big = torch.zeros(offset + numel, dtype=dtype)
        big[offset:] = data.to(dtype)
        return big[offset:].view(*shape)
    return data.to(dtype).view(*shape)


def main(out):
    os.makedirs(out, exist_ok=True)
    sd = collections.OrderedDict()
    sd["backbone.embedding.weight"] = make("backbone.embedding.weight", (V, D))
    for i in range(N_LAYER):
        p = "backbone.layers.%d." % i
        shapes = [("mixer.A_log", (E, N)), ("mixer.D", (E,)),
                  ("mixer.in_proj.weight", (2 * E, D)), ("mixer.conv1d.weight", (E, 1, K)),
                  ("mixer.conv1d.bias", (E,)), ("mixer.x_proj.weight", (R + 2 * N, E)),
                  ("mixer.dt_proj.weight", (E, R)), ("mixer.dt_proj.bias", (E,)),
                  ("mixer.out_proj.weight", (D, E)), ("norm.weight", (D,))]
        for suffix, shape in shapes:
            name = p + suffix
            dtype, offset = torch.float32, 0
            if i == 1 and suffix == "mixer.in_proj.weight":
                dtype = torch.float16
            if i == 0 and suffix == "mixer.x_proj.weight":
                dtype = torch.bfloat16
            if i == 0 and suffix == "mixer.in_proj.weight":
                offset = 100
            sd[name] = make(name, shape, dtype, offset)
    sd["backbone.norm_f.weight"] = make("backbone.norm_f.weight", (D,))
    sd["lm_head.weight"] = sd["backbone.embedding.weight"]   # tied: same storage
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    cfg = {"d_model": D, "n_layer": N_LAYER, "vocab_size": VOCAB,
           "ssm_cfg": {"d_state": N}, "rms_norm": True, "residual_in_fp32": True,
           "fused_add_norm": True, "pad_vocab_size_multiple": PAD}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f)


if __name__ == "__main__":
    main(sys.argv[1])
