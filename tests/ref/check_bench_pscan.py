#!/usr/bin/python3
"""check_bench_pscan.py — the PyTorch baseline of `make bench`
(bench/torch_baseline.py) computes the same numbers with either scan: the
parallel scan equals the loop over time (alone, and as the model's logits
and gradients) to 1e-4 relative, and the baseline's recurrent decode step
gives the full forward's logits at every position (so gen-130m's torch side
runs the same math).  Its Mamba-2 (the m2-* cases): the chunked SSD equals
tests/ref/mamba2_ref.py's step-by-step recurrence (odd lengths, several
chunk sizes, one and two groups), the model's logits and gradients equal
mamba2_ref's on the same parameters, and its decode step continues a
prompt's forward.  Usage: check_bench_pscan.py [SSMLAB] (the binary is not
used; tests/run.sh passes it to every check)."""
import os
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_baseline as tb  # noqa: E402
import mamba2_ref  # noqa: E402
import mamba_ref  # noqa: E402
from refcheck import Report  # noqa: E402

TOL = 1e-4


def rel(x, y):
    return ((x - y).abs().max() / y.abs().max().clamp(min=1e-30)).item()


def model(scan, seed=7):
    torch.manual_seed(seed)
    return tb.Mamba(32, 2, 61, scan)


def m2_ref_params(m):
    """The baseline Mamba-2 model's parameters under mamba2_ref's names."""
    p = {mamba_ref.EMBED: m.embedding.weight, mamba_ref.NORM_F: m.norm_f.weight}
    for i, (norm, mx) in enumerate(zip(m.norms, m.mixers)):
        p[mamba_ref.norm_name(i)] = norm.weight
        for name, t in (("in_proj.weight", mx.in_proj.weight), ("conv1d.weight", mx.conv1d.weight),
                        ("conv1d.bias", mx.conv1d.bias), ("dt_bias", mx.dt_bias),
                        ("A_log", mx.A_log), ("D", mx.D), ("norm.weight", mx.norm_w),
                        ("out_proj.weight", mx.out_proj.weight)):
            p[mamba_ref.mixer_name(i, name)] = t
    return p


def check_mamba2(r, g):
    for L, Q, G in ((1, 4, 1), (7, 4, 2), (64, 16, 1), (67, 16, 2), (300, 256, 1)):
        H, P, N = 4, 3, 5
        x = torch.randn(2, L, H, P, generator=g)
        dt = torch.rand(2, L, H, generator=g) * 0.2 + 0.01
        A = -(torch.rand(H, generator=g) * 4 + 0.5)
        Bm, Cm = torch.randn(2, L, G, N, generator=g), torch.randn(2, L, G, N, generator=g)
        y, h = tb.ssd_chunked(x, dt, A, Bm, Cm, Q)
        want = mamba2_ref.ssd_recurrent(x, dt, A, Bm, Cm, torch.zeros(H))
        r.within(f"m2 ssd_chunked == recurrence, L {L} Q {Q} G {G}", rel(y, want), TOL)
        # the last state: one more position's output with x = 0 is exp(dt A) h C
        x1, dt1 = torch.zeros(2, 1, H, P), dt[:, :1]
        B1, C1 = Bm[:, :1], Cm[:, :1]
        nxt = mamba2_ref.ssd_recurrent(torch.cat([x, x1], 1), torch.cat([dt, dt1], 1), A,
                                       torch.cat([Bm, B1], 1), torch.cat([Cm, C1], 1),
                                       torch.zeros(H))[:, -1]
        Ch = C1[:, 0].repeat_interleave(H // G, dim=1)            # (2, H, N)
        from_h = torch.exp(dt1[:, 0] * A)[..., None] * torch.einsum("bhpn,bhn->bhp", h, Ch)
        r.within(f"m2 ssd_chunked last state, L {L} Q {Q} G {G}", rel(from_h, nxt), TOL)

    for G, Q, L in ((1, 8, 29), (2, 4, 16)):
        torch.manual_seed(5)
        m = tb.Mamba(16, 2, 64, "ssd", dict(d_state=6, head_dim=4, n_groups=G, chunk=Q))
        cfg = mamba2_ref.Config(d_model=16, n_layer=2, vocab_size=64, d_state=6, head_dim=4,
                                n_groups=G, chunk_size=Q)
        tokens = torch.randint(0, 64, (2, L), generator=g)
        targets = torch.randint(0, 64, (2, L), generator=g)
        p = m2_ref_params(m)
        outs = []
        for fwd in (lambda: m(tokens), lambda: mamba2_ref.forward(p, cfg, tokens)):
            m.zero_grad()
            logits = fwd()
            torch.nn.functional.cross_entropy(logits.reshape(-1, 64), targets.reshape(-1)).backward()
            outs.append((logits.detach(), [q.grad.clone() for q in m.parameters()]))
        r.within(f"m2 logits == mamba2_ref, G {G} Q {Q} L {L}", rel(outs[0][0], outs[1][0]), TOL)
        r.within(f"m2 gradients == mamba2_ref, G {G} Q {Q} L {L}",
                 max(rel(a, b) for a, b in zip(outs[0][1], outs[1][1])), 1e-3)
        with torch.no_grad():
            full = m(tokens[:1])
            cache = []
            step = m(tokens[:1, :5], last=True, cache=cache)[:, -1]
            worst = rel(step, full[:, 4])
            for t in range(5, L):
                step = m.step(tokens[:1, t], cache)
                worst = max(worst, rel(step, full[:, t]))
        r.within(f"m2 decode steps after a prompt == forward, G {G}", worst, TOL)


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
    check_mamba2(r, g)
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
