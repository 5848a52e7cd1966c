"""PyTorch (CPU, eager) timing of the prior's ops as the reference prior computes them, at a prior's shapes:
the same groups and statistic as `mvq bench prior-ops` (median ms of forward + backward per group after a warm-up).

  /usr/bin/python3 tools/bench/prior_ops_torch.py --batch 32 --tokens 49 --threads 2 --json

Groups: embedding (lookup + backward), layer_norm ([N, C]), gelu (tanh, [N, 4C]), attention (causal softmax(q k^T) v
from qkv [N, 3C] as tools/reference's CausalSelfAttention: matmul, masked_fill, softmax, matmul), cross_entropy
([N, V], mean), decode (one query per sequence against a KV cache of T rows: cat + matmul + softmax + matmul).
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def median_ms(fn, warmup, runs, clock):
    """Median ms per call over `runs` samples of enough calls for about 5 ms each (as mvq bench prior-ops)."""
    now = time.process_time if clock == "process" else time.perf_counter
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(1e-6, time.perf_counter() - t0)
    inner = int(min(1000, max(1, math.ceil(0.005 / once))))
    ts = []
    for _ in range(runs):
        t0 = now()
        for _ in range(inner):
            fn()
        ts.append((now() - t0) * 1000 / inner)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=49)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--clock", choices=["wall", "process"], default="wall",
                    help="process: CPU time of the process (use with --threads 1 on a loaded machine)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    b, t, c, h, v = a.batch, a.tokens, a.width, a.heads, a.vocab
    n, hd = b * t, c // h

    ids = torch.randint(0, v, (n,))
    table = torch.randn(v + 1, c, requires_grad=True)
    x = torch.randn(n, c, requires_grad=True)
    gamma = torch.randn(c, requires_grad=True)
    beta = torch.randn(c, requires_grad=True)
    dy = torch.randn(n, c)
    hx = (3 * torch.randn(n, 4 * c)).requires_grad_()
    hdy = torch.randn(n, 4 * c)
    qkv = torch.randn(n, 3 * c, requires_grad=True)
    logits = (3 * torch.randn(n, v)).requires_grad_()
    targets = torch.randint(0, v, (n,))
    causal = torch.ones(t, t, dtype=torch.bool).tril()

    def embedding():
        table.grad = None
        F.embedding(ids, table).backward(dy)

    def layer_norm():
        x.grad = gamma.grad = beta.grad = None
        F.layer_norm(x, (c,), gamma, beta, 1e-5).backward(dy)

    def gelu():
        hx.grad = None
        F.gelu(hx, approximate="tanh").backward(hdy)

    def attention():
        qkv.grad = None
        q, k, vv = qkv.view(b, t, 3 * c).split(c, dim=2)
        q, k, vv = (z.reshape(b, t, h, hd).transpose(1, 2) for z in (q, k, vv))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ vv).transpose(1, 2).reshape(n, c)
        y.backward(dy)

    def cross_entropy():
        logits.grad = None
        F.cross_entropy(logits, targets).backward()

    kc = torch.randn(b, h, t - 1, hd)
    vc = torch.randn(b, h, t - 1, hd)
    step = torch.randn(b, 3 * c)

    @torch.no_grad()
    def decode():
        q, k, vv = step.split(c, dim=1)
        q, k, vv = (z.view(b, h, 1, hd) for z in (q, k, vv))
        kk = torch.cat([kc, k], 2)
        vvv = torch.cat([vc, vv], 2)
        att = ((q @ kk.transpose(-2, -1)) * (1.0 / math.sqrt(hd))).softmax(-1)
        return (att @ vvv).transpose(1, 2).reshape(b, c)

    groups = [("embedding", embedding), ("layer_norm", layer_norm), ("gelu", gelu), ("attention", attention),
              ("cross_entropy", cross_entropy), ("decode", decode)]
    ms = {name: round(median_ms(fn, a.warmup, a.runs, a.clock), 4) for name, fn in groups}
    res = {"device": "torch-cpu", "threads": a.threads, "clock": a.clock, "batch": b, "tokens": t, "width": c, "heads": h, "vocab": v,
           "torch_version": torch.__version__, "ms": ms}
    if a.json:
        print(json.dumps(res))
    else:
        for k2, val in ms.items():
            print(f"{k2:14s} {val:9.3f} ms")


if __name__ == "__main__":
    main()
