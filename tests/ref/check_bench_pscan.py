#!/usr/bin/python3
"""check_bench_pscan.py — the PyTorch baseline of `make bench`
(bench/torch_baseline.py) computes the same numbers with either scan: the
parallel scan equals the loop over time (alone, and as the model's logits
and gradients) to 1e-4 relative, and the baseline's recurrent decode step
gives the full forward's logits at every position (so gen-130m's torch side
runs the same math).  Usage: check_bench_pscan.py [SSMLAB] (the binary is
not used; tests/run.sh passes it to every check)."""
import os
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_baseline as tb  # noqa: E402
from refcheck import Report  # noqa: E402

TOL = 1e-4


def rel(x, y):
    return ((x - y).abs().max() / y.abs().max().clamp(min=1e-30)).item()


def model(scan, seed=7):
    torch.manual_seed(seed)
    return tb.Mamba(32, 2, 61, scan)


def main():
    torch.set_num_threads(1)
    r = Report()
    g = torch.Generator().manual_seed(3)
    for L in (1, 2, 7, 64, 257):   # odd lengths take the padding path
        a = torch.rand(2, L, 5, 4, generator=g) * 0.5 + 0.5   # decay factors in (0.5, 1)
        b = torch.randn(2, L, 5, 4, generator=g)
        r.within(f"scan_parallel == scan_loop, L {L}", rel(tb.scan_parallel(a, b), tb.scan_loop(a, b)), TOL)

    tokens = torch.randint(0, 61, (3, 45), generator=g)
    targets = torch.randint(0, 61, (3, 45), generator=g)
    outs = {}
    for scan in ("loop", "pscan"):
        m = model(scan)
        logits = m(tokens)
        torch.nn.functional.cross_entropy(logits.reshape(-1, 61), targets.reshape(-1)).backward()
        outs[scan] = (logits.detach(), [p.grad for p in m.parameters()])
    r.within("logits, pscan vs loop", rel(outs["pscan"][0], outs["loop"][0]), TOL)
    r.within("gradients, pscan vs loop",
             max(rel(gp, gl) for gp, gl in zip(outs["pscan"][1], outs["loop"][1])), TOL)

    m = model("loop").eval()
    with torch.no_grad():
        full = m(tokens[:1])                                  # (1, L, V)
        last = m(tokens[:1], last=True)                       # (1, 1, V)
        r.within("forward last == forward's last position", rel(last[:, 0], full[:, -1]), TOL)
        cache = []
        step = m(tokens[:1, :5], last=True, cache=cache)[:, -1]   # a prompt of 5
        worst = rel(step, full[:, 4])
        for t in range(5, tokens.shape[1]):
            step = m.step(tokens[:1, t], cache)
            worst = max(worst, rel(step, full[:, t]))
        r.within("decode steps after a prompt == forward", worst, TOL)
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
