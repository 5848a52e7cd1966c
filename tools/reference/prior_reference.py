"""PyTorch reference of the MvqNative prior (docs/prior.md): the same GPT-style pre-LayerNorm transformer with
the same parameter names, a segment-masked cross-entropy, a KV-cache sampler, and the side-by-side benchmarks.

Modes (run with Debian's python: /usr/bin/python3 tools/reference/prior_reference.py MODE ...):
  state        write a reference-state safetensors file (inputs, logits, loss, every gradient, 10 AdamW steps)
  bench-train  time prior training steps (images/s) on synthetic codes
  bench-sample time KV-cache sampling (images/s)
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import safetensors_io  # noqa: E402
from model import clip_gradients  # noqa: E402

STATE_STEPS = 10
STATE_BATCH = 4
OPTIM = {"name": "AdamW", "lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
         "decay_params": "linear weights (*.weight of rank 2), not embeddings, norms or biases", "clip": 1.0}

# The presets' code layouts ([name, length, vocabulary] per segment), as the autoencoder presets define them.
LAYOUTS = {
    "fmnist-vq": [["k1", 49, 128]],
    "fmnist-vq-global": [["k1", 5, 128]],
    "fmnist-mvq-global": [["k1", 2, 64], ["k2", 2, 64], ["w", 1, 256]],
}


class Layout:
    """Segments in order; segment s owns global ids [off_s, off_s + V_s); the start token is id V = sum V_s."""

    def __init__(self, segments):
        self.segments = [(n, int(l), int(v)) for n, l, v in segments]
        self.offsets, off = [], 0
        for _, _, v in self.segments:
            self.offsets.append(off)
            off += v
        self.vocab = off
        self.start = off
        self.length = sum(l for _, l, _ in self.segments)
        lo, hi = [], []
        for (_, l, v), o in zip(self.segments, self.offsets):
            lo += [o] * l
            hi += [o + v] * l
        self.lo, self.hi = lo, hi

    def inputs_targets(self, codes):
        """codes [B, T] local ids -> (inputs [B, T] with the start token first, targets [B, T] global ids)."""
        targets = codes + torch.tensor(self.lo, dtype=codes.dtype, device=codes.device)
        start = torch.full((codes.shape[0], 1), self.start, dtype=codes.dtype, device=codes.device)
        return torch.cat([start, targets[:, :-1]], 1), targets

    def mask(self, device=None):
        """[T, V] bool, True where a column is valid at a position."""
        cols = torch.arange(self.vocab, device=device)
        return (cols[None, :] >= torch.tensor(self.lo, device=device)[:, None]) & \
               (cols[None, :] < torch.tensor(self.hi, device=device)[:, None])


class CausalSelfAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        b, t, c = x.shape
        hd = c // self.heads
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(y)


class Mlp(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc = nn.Linear(width, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.proj = nn.Linear(hidden, width)

    def forward(self, x):
        return self.proj(self.act(self.fc(x)))


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, mlp_ratio * width)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Prior(nn.Module):
    """tok_emb [V+1, C], pos_emb [T, C], blocks, ln_f, head Linear(C -> V): logits [B, T, V]."""

    def __init__(self, layout, layers, heads, width, mlp_ratio=4, init_std=0.02):
        super().__init__()
        self.layout = layout
        self.tok_emb = nn.Embedding(layout.vocab + 1, width)
        self.pos_emb = nn.Embedding(layout.length, width)
        self.blocks = nn.ModuleList([Block(width, heads, mlp_ratio) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, layout.vocab)
        resid = init_std / math.sqrt(2 * layers)
        for n, p in self.named_parameters():
            if n.endswith(".bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, resid if n.endswith("proj.weight") else init_std)

    def forward(self, inputs):
        b, t = inputs.shape
        x = self.tok_emb(inputs) + self.pos_emb(torch.arange(t, device=inputs.device))[None]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))

    def loss(self, codes):
        """Mean segment-masked cross-entropy (nats per token) and the raw logits."""
        inputs, targets = self.layout.inputs_targets(codes)
        logits = self(inputs)
        masked = logits.masked_fill(~self.layout.mask(logits.device)[None, : inputs.shape[1]], float("-inf"))
        return F.cross_entropy(masked.reshape(-1, masked.shape[-1]), targets.reshape(-1)), logits


def prior_decays(name, p):
    return name.endswith(".weight") and p.dim() >= 2 and not name.startswith(("tok_emb", "pos_emb"))


def make_optimizer(model, lr, weight_decay):
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if prior_decays(n, p)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if not prior_decays(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)


@torch.no_grad()
def sample(model, count, batch, temperature=1.0, top_k=0, top_p=1.0, seed=1):
    """KV-cache incremental decoding: one position per step for a batch; logits of the position's segment only."""
    lay = model.layout
    gen = torch.Generator().manual_seed(seed)
    c = model.ln_f.normalized_shape[0]
    out = []
    for s in range(0, count, batch):
        b = min(batch, count - s)
        caches = [(torch.zeros(b, blk.attn.heads, lay.length, c // blk.attn.heads),
                   torch.zeros(b, blk.attn.heads, lay.length, c // blk.attn.heads)) for blk in model.blocks]
        ids = torch.full((b,), lay.start, dtype=torch.long)
        codes = torch.empty(b, lay.length, dtype=torch.long)
        for t in range(lay.length):
            x = model.tok_emb(ids) + model.pos_emb.weight[t]
            for blk, (kc, vc) in zip(model.blocks, caches):
                hh = blk.attn.heads
                hd = c // hh
                q, k, v = blk.attn.qkv(blk.ln1(x)).split(c, dim=1)
                kc[:, :, t] = k.view(b, hh, hd)
                vc[:, :, t] = v.view(b, hh, hd)
                att = (kc[:, :, : t + 1] @ q.view(b, hh, hd, 1)).squeeze(-1) * (1.0 / math.sqrt(hd))
                y = (att.softmax(-1).unsqueeze(2) @ vc[:, :, : t + 1]).reshape(b, c)
                x = x + blk.attn.proj(y)
                x = x + blk.mlp(blk.ln2(x))
            lo, hi = lay.lo[t], lay.hi[t]
            logits = F.linear(model.ln_f(x), model.head.weight[lo:hi], model.head.bias[lo:hi]) / temperature
            if top_k > 0:
                kth = logits.topk(min(top_k, hi - lo), -1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            if top_p < 1.0:
                sp, si = logits.sort(-1, descending=True)
                cum = sp.softmax(-1).cumsum(-1)
                drop = cum - sp.softmax(-1) >= top_p
                logits = logits.scatter(-1, si, sp.masked_fill(drop, float("-inf")))
            k = torch.multinomial(logits.softmax(-1), 1, generator=gen).squeeze(1)
            codes[:, t] = k
            ids = k + lo
        out.append(codes)
    return torch.cat(out)


def compute_state(layout, cfg, seed):
    torch.manual_seed(seed)
    model = Prior(layout, **cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    codes = torch.stack([torch.randint(0, v, (STATE_BATCH,), generator=gen) for _, l, v in layout.segments
                         for _ in range(l)], 1)
    out = {f"param/{k}": v.detach().clone() for k, v in model.state_dict().items()}
    inputs, targets = layout.inputs_targets(codes)
    out["input/codes"] = codes.to(torch.int32)
    out["input/inputs"] = inputs.to(torch.int32)
    out["input/targets"] = targets.to(torch.int32)
    opt = make_optimizer(model, OPTIM["lr"], OPTIM["weight_decay"])
    losses, norms = [], []
    for step in range(STATE_STEPS):
        opt.zero_grad(set_to_none=False)
        loss, logits = model.loss(codes)
        loss.backward()
        if step == 0:
            out["fwd/logits"] = logits.detach().reshape(-1, layout.vocab).clone()
            out["loss/total"] = loss.detach().reshape(1).clone()
            for n, p in model.named_parameters():
                out[f"grad/{n}"] = p.grad.detach().clone()
        norms.append(float(clip_gradients(model, OPTIM["clip"])))
        losses.append(float(loss.detach()))
        opt.step()
    out["train/loss"] = torch.tensor(losses, dtype=torch.float32)
    out["train/grad_norm"] = torch.tensor(norms, dtype=torch.float32)
    for k, v in model.state_dict().items():
        out[f"final/{k}"] = v.detach().clone()
    decay = [n for n, p in model.named_parameters() if prior_decays(n, p)]
    return out, decay


def cmd_state(args):
    layout = Layout(json.loads(args.layout))
    cfg = {"layers": args.layers, "heads": args.heads, "width": args.width, "mlp_ratio": 4}
    tensors, decay = compute_state(layout, cfg, args.seed)
    meta = {"layout": json.dumps(layout.segments), "prior_config": json.dumps(cfg), "seed": str(args.seed),
            "batch": str(STATE_BATCH), "steps": str(STATE_STEPS), "optimizer": json.dumps(OPTIM),
            "decay_params": json.dumps(decay), "torch_version": torch.__version__,
            "command": " ".join(["/usr/bin/python3", "tools/reference/prior_reference.py"] + sys.argv[1:]),
            "recipe": ("param/* initial parameters; input/codes [B,T] local ids, input/inputs and input/targets "
                       "[B,T] global ids (start token first); fwd/logits [B*T,V] unmasked logits of step 0; "
                       "loss/total mean segment-masked cross-entropy of step 0; grad/* step 0 gradients before "
                       "clipping; train/loss and train/grad_norm per step (before its update); final/* after all "
                       "steps. Each step: forward, backward, global-norm clip, AdamW.")}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    safetensors_io.save(args.out, tensors, meta)
    print(f"wrote {args.out}: {len(tensors)} tensors; loss {tensors['train/loss'].tolist()}")


def _setup(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layout = Layout(LAYOUTS[args.preset])
    model = Prior(layout, args.layers, args.heads, args.width)
    return layout, model


def _median_runs(fn, warmup, steps, warmup_seconds=0.0, cpu=None):
    """Median time of `steps` calls after at least `warmup` untimed calls lasting at least `warmup_seconds`
    (the same rule as `mvq bench sample`: the warm-up is measured in time, so both sides reach steady state).
    When `cpu` is a list, each timed call's process CPU time (time.process_time) is appended to it."""
    t0 = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - t0 < warmup_seconds:
        fn()
        done += 1
    times = []
    for _ in range(steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return float(np.median(times))


def cmd_bench_train(args):
    layout, model = _setup(args)
    gen = torch.Generator().manual_seed(1)
    codes = torch.stack([torch.randint(0, layout.hi[t] - layout.lo[t], (args.batch,), generator=gen)
                         for t in range(layout.length)], 1)
    opt = make_optimizer(model, 1e-3, 0.01)

    def step():
        opt.zero_grad(set_to_none=False)
        loss, _ = model.loss(codes)
        loss.backward()
        clip_gradients(model, 1.0)
        opt.step()

    sec = _median_runs(step, args.warmup, args.steps)
    res = {"preset": args.preset, "batch": args.batch, "threads": args.threads, "tokens_per_image": layout.length,
           "layers": args.layers, "heads": args.heads, "width": args.width, "steps": args.steps,
           "warmup": args.warmup, "ms_per_step": round(1000 * sec, 4), "images_per_s": round(args.batch / sec, 2),
           "tokens_per_s": round(args.batch * layout.length / sec, 1), "torch_version": torch.__version__}
    print(json.dumps(res))


def cmd_bench_sample(args):
    layout, model = _setup(args)
    model.eval()
    cpu = []
    sec = _median_runs(lambda: sample(model, args.count, args.batch, seed=1), args.warmup, args.runs, args.warmup_seconds, cpu)
    res = {"preset": args.preset, "count": args.count, "batch": args.batch, "threads": args.threads,
           "tokens_per_image": layout.length, "layers": args.layers, "heads": args.heads, "width": args.width,
           "runs": args.runs, "warmup": args.warmup, "warmup_seconds": args.warmup_seconds, "prior_ms": round(1000 * sec, 3),
           "images_per_s": round(args.count / sec, 2), "prior_cpu_ms": round(1000 * float(np.median(cpu)), 3), "torch_version": torch.__version__}
    print(json.dumps(res))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("state")
    s.add_argument("--layout", default='[["k1", 2, 5], ["k2", 2, 4], ["w", 1, 3]]', help="JSON [[name, length, vocab], ...]")
    s.add_argument("--layers", type=int, default=2)
    s.add_argument("--heads", type=int, default=2)
    s.add_argument("--width", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    for name in ("bench-train", "bench-sample"):
        b = sub.add_parser(name)
        b.add_argument("--preset", required=True, choices=sorted(LAYOUTS))
        b.add_argument("--layers", type=int, default=3)
        b.add_argument("--heads", type=int, default=4)
        b.add_argument("--width", type=int, default=128)
        b.add_argument("--threads", type=int, default=1)
        b.add_argument("--warmup", type=int, default=5)
        b.add_argument("--warmup-seconds", type=float, default=0.0, help="warm up for at least this long too")
        if name == "bench-train":
            b.add_argument("--batch", type=int, default=32)
            b.add_argument("--steps", type=int, default=20)
        else:
            b.add_argument("--count", type=int, default=64)
            b.add_argument("--batch", type=int, default=64)
            b.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    {"state": cmd_state, "bench-train": cmd_bench_train, "bench-sample": cmd_bench_sample}[args.mode](args)


if __name__ == "__main__":
    main()
