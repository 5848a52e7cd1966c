"""PyTorch reference of the MvqNative models: `state` writes a reference-state safetensors file,
`verify` recomputes one and compares, `bench` times training steps on the CPU or a GPU. See README.md.

Run with Debian's python: /usr/bin/python3 tools/reference/mvq_reference.py MODE ...
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import safetensors_io  # noqa: E402
from config import ModelConfig  # noqa: E402
from model import Autoencoder, make_optimizer, clip_gradients, decays  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STATE_STEPS = 10
STATE_BATCH = 4
OPTIM = {"name": "AdamW", "lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
         "decay_params": "conv/linear/mix weights (*.weight with rank >= 2); not biases, norms, codebooks",
         "clip": 1.0, "clip_formula": "g *= min(1, clip / (||g||_2 + 1e-6)), global norm over all grads (in float64)"}


def random_masks(gen, steps, batch, hypotheses, dim, drop_rate, device="cpu"):
    """[steps, B, J] int32 words: bit i set (keep dimension i) with probability 1 - p (on gen's device)."""
    keep = torch.rand(steps, batch, hypotheses, dim, generator=gen, device=device) >= drop_rate
    weights = torch.tensor([1 << i for i in range(dim)], dtype=torch.int64, device=device)
    words = (keep.to(torch.int64) * weights).sum(-1)
    return words.to(torch.int32) if dim < 32 else (words - (words >= 2 ** 31).to(torch.int64) * 2 ** 32).to(torch.int32)


def load_weights(model, path):
    """Loads every parameter and buffer from a safetensors file (keys 'param/<name>' or '<name>'), strictly."""
    tensors, _ = safetensors_io.load(path)
    tensors = {k[len("param/"):] if k.startswith("param/") else k: v for k, v in tensors.items()}
    state = model.state_dict()
    missing = [k for k in state if k not in tensors]
    if missing:
        raise KeyError(f"{path}: missing {missing}")
    with torch.no_grad():
        for k, v in state.items():
            src = torch.from_numpy(tensors[k])
            if tuple(src.shape) != tuple(v.shape):
                raise ValueError(f"{k}: shape {tuple(src.shape)} in file, {tuple(v.shape)} in model")
            v.copy_(src)


def _i32(t):
    return t.detach().to(torch.int32)


def compute_state(cfg, seed, weights=None):
    """Runs the reference-state recipe; returns (tensors dict in file order, metadata extras)."""
    torch.manual_seed(seed)
    model = Autoencoder(cfg)
    if weights:
        load_weights(model, weights)
    model.train()
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(STATE_BATCH, cfg.channels, cfg.height, cfg.width, generator=gen)
    masks = None
    if cfg.kind == "mvq":
        masks = random_masks(gen, STATE_STEPS, STATE_BATCH, cfg.hypotheses, cfg.code_dim2, cfg.drop_rate)

    out = {}
    for k, v in model.state_dict().items():
        out[f"param/{k}"] = v.detach().clone()
    out["input/x"] = x
    if masks is not None:
        out["input/masks"] = masks

    opt = make_optimizer(model, OPTIM["lr"], OPTIM["weight_decay"])
    losses_traj, norms = [], []
    for step in range(STATE_STEPS):
        opt.zero_grad(set_to_none=False)
        _, outs, losses = model(x, None if masks is None else masks[step])
        losses["total"].backward()
        if step == 0:
            for k in ("h", "z1", "k1", "q1", "z2", "k2", "q2", "g", "bn_mean", "bn_var", "d", "w",
                      "diff_w", "y_w", "x_hat"):
                if k in outs:
                    v = outs[k]
                    out[f"fwd/{k}"] = _i32(v) if v.dtype == torch.int64 else v.detach().clone()
            for k in sorted(losses):
                out[f"loss/{k}"] = losses[k].detach().reshape(1).clone()
            for n, p in model.named_parameters():
                if p.requires_grad:
                    out[f"grad/{n}"] = p.grad.detach().clone()
            # buffers after step 0's forward (EMA codebooks, BatchNorm running statistics)
            for n, b in model.named_buffers():
                out[f"step0/{n}"] = b.detach().clone()
        norms.append(float(clip_gradients(model, OPTIM["clip"])))
        losses_traj.append(float(losses["total"].detach()))
        opt.step()
    out["train/loss"] = torch.tensor(losses_traj, dtype=torch.float32)
    out["train/grad_norm"] = torch.tensor(norms, dtype=torch.float32)
    for k, v in model.state_dict().items():
        out[f"final/{k}"] = v.detach().clone()
    return out


def cmd_state(args):
    cfg = ModelConfig.load(args.config)
    tensors = compute_state(cfg, args.seed, args.weights)
    names = [n for n, p in Autoencoder(cfg).named_parameters()]
    meta = {
        "config": cfg.to_json(),
        "command": " ".join(["/usr/bin/python3", "tools/reference/mvq_reference.py"] + sys.argv[1:]),
        "seed": str(args.seed),
        "batch": str(STATE_BATCH),
        "steps": str(STATE_STEPS),
        "optimizer": json.dumps(OPTIM),
        "decay_params": json.dumps([n for n in names if decays(n, dict(Autoencoder(cfg).named_parameters())[n])]),
        "torch_version": torch.__version__,
        "recipe": ("param/* initial parameters and buffers; input/x [B,C,H,W]; input/masks [steps,B,J] int32 D2-bit "
                   "words (bit i keeps dim i); fwd/* step 0 forward in training mode (q1 from the codebook before "
                   "the EMA update); loss/* step 0 loss terms; grad/* step 0 gradients before clipping; step0/* "
                   "buffers after step 0's forward; train/loss total loss of each of the steps (before its update); "
                   "train/grad_norm pre-clip global norm; final/* parameters and buffers after all steps. "
                   "Each step: forward (EMA and BatchNorm running updates inside), backward, clip, AdamW."),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    safetensors_io.save(args.out, tensors, meta)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {len(tensors)} tensors, {size} bytes; loss {tensors['train/loss'].tolist()}")


def cmd_verify(args):
    """Recomputes a state file from its own config and initial weights, and compares every tensor."""
    ref, meta = safetensors_io.load(args.file)
    cfg = ModelConfig.from_dict(json.loads(meta["config"]))
    tmp = args.file + ".init.tmp"
    safetensors_io.save(tmp, {k: v for k, v in ref.items() if k.startswith("param/")})
    try:
        got = compute_state(cfg, int(meta["seed"]), tmp)
    finally:
        os.remove(tmp)
    worst = 0.0
    for k, v in ref.items():
        g = got[k].detach().numpy() if hasattr(got[k], "detach") else got[k]
        if g.shape != v.shape:
            raise SystemExit(f"{k}: shape {g.shape} != {v.shape}")
        if v.dtype.kind == "i":
            if not np.array_equal(g, v):
                raise SystemExit(f"{k}: integer mismatch")
        else:
            err = float(np.max(np.abs(g - v))) if v.size else 0.0
            worst = max(worst, err)
            if err > args.atol:
                raise SystemExit(f"{k}: max abs diff {err} > {args.atol}")
    print(f"{args.file}: {len(ref)} tensors match (max abs diff {worst:g})")


def load_preset(name):
    # The presets are the library's own files (MvqNative/Models/Presets), read here too: one definition.
    path = name if name.endswith(".json") else os.path.join(HERE, "..", "..", "MvqNative", "Models", "Presets", f"{name}.json")
    return ModelConfig.load(path)


def _bench_setup(args):
    """Threads, device (cuda: factory calls default to it, so the model's own tensors land there), config."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("bench --device cuda: torch sees no CUDA device")
        torch.set_default_device(dev)
        # FP32 like ours (cuBLAS SGEMM without tensor cores) unless --tf32: then TF32 tensor-op GEMMs and
        # convolutions, like ours with --tf32 on. PyTorch's own defaults (since 1.12): matmul TF32 off, cuDNN conv TF32 on.
        torch.backends.cuda.matmul.allow_tf32 = bool(getattr(args, "tf32", False))
        torch.backends.cudnn.allow_tf32 = bool(getattr(args, "tf32", False))
    cfg = load_preset(args.preset)
    if args.hypotheses:
        cfg.hypotheses = args.hypotheses
        cfg.chunk = min(cfg.chunk, args.hypotheses)
    return dev, cfg


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _time_steps(step, dev, warmup, steps):
    """Median and mean of per-step wall times (device synchronised around each step), in ms, and the times."""
    for _ in range(warmup):
        step()
    _sync(dev)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(dev)
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times)), float(np.mean(times)), times


def cmd_bench(args):
    dev, cfg = _bench_setup(args)
    gen = torch.Generator(device=dev).manual_seed(1)
    x = torch.rand(args.batch, cfg.channels, cfg.height, cfg.width, generator=gen, device=dev)
    t_build = time.perf_counter()
    if args.bottleneck:
        if cfg.kind != "mvq":
            raise SystemExit("bench --bottleneck needs an MVQ preset")
        from model import MvqBottleneck
        net = MvqBottleneck(cfg).train()
        h_shape = (args.batch, cfg.enc_channels[1], cfg.height // 4, cfg.width // 4)
        h = torch.rand(*h_shape, generator=gen, device=dev).requires_grad_(True)
    else:
        net = Autoencoder(cfg).train()
    opt = make_optimizer(net, 5e-4, 0.01)
    if args.compile and not hasattr(torch, "compile"):
        raise SystemExit(f"bench --compile: torch {torch.__version__} has no torch.compile")
    mode = getattr(args, "compile_mode", None)
    # mode "reduce-overhead" makes torch.compile replay CUDA graphs (the like-for-like of ours with --cuda-graphs on).
    fwd = (torch.compile(net, mode=mode) if mode else torch.compile(net)) if args.compile else net

    def masks():
        if cfg.kind != "mvq":
            return None
        return random_masks(gen, 1, args.batch, cfg.hypotheses, cfg.code_dim2, cfg.drop_rate, dev)[0]

    def step():
        if args.bottleneck:
            # Bottleneck alone: forward (both VQs, statistics, scoring of all J, winner), backward to h.
            h.grad = None
            dec_in, _, losses = fwd(h, masks())
            (dec_in.square().mean() + losses["vq1"] + losses["vq2"] + losses["wta"]).backward()
            return
        opt.zero_grad(set_to_none=False)
        _, _, losses = fwd(x, masks())
        losses["total"].backward()
        clip_gradients(net, 1.0)
        opt.step()

    # With --compile the first warm-up steps compile: their time is reported separately.
    t0 = time.perf_counter()
    step()
    _sync(dev)
    first_ms = 1000 * (time.perf_counter() - t0)
    median_ms, mean_ms, times = _time_steps(step, dev, max(0, args.warmup - 1), args.steps)
    res = {"preset": os.path.basename(args.preset).replace(".json", ""), "batch": args.batch,
           "threads": args.threads, "device": str(dev),
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "compile": bool(args.compile), "compile_mode": getattr(args, "compile_mode", None) if args.compile else None,
           "tf32": bool(getattr(args, "tf32", False)), "bottleneck_only": bool(args.bottleneck),
           "hypotheses": cfg.hypotheses if cfg.kind == "mvq" else None, "steps": args.steps,
           "images_per_s": round(args.batch * 1000 / median_ms, 2), "ms_per_step": round(median_ms, 4),
           "ms_per_step_mean": round(mean_ms, 4), "first_step_ms": round(first_ms, 1),
           "setup_s": round(time.perf_counter() - t_build, 2), "torch_version": torch.__version__,
           "step_ms": [round(t, 4) for t in times]}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['preset']}{' bottleneck' if args.bottleneck else ''} on {res['device_name']}"
              f"{' (compiled)' if args.compile else ''}: batch {args.batch}, {args.threads} threads: "
              f"{res['images_per_s']} images/s, {res['ms_per_step']} ms/step (median; torch {torch.__version__})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("state", help="write a reference-state safetensors file")
    s.add_argument("--config", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--weights", help="initial parameters and buffers (safetensors, keys name or param/name)")
    s.add_argument("--seed", type=int, default=0)
    v = sub.add_parser("verify", help="recompute a state file from its initial weights and compare")
    v.add_argument("file")
    v.add_argument("--atol", type=float, default=1e-5)
    b = sub.add_parser("bench", help="time training steps on synthetic data")
    b.add_argument("--preset", required=True, help="name in MvqNative/Models/Presets/ or a JSON path")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--json", action="store_true")
    b.add_argument("--device", default="cpu", help="cpu | cuda (cuda: TF32 off, masks drawn on the device)")
    b.add_argument("--compile", action="store_true", help="torch.compile the model (the first step's time is reported apart)")
    b.add_argument("--hypotheses", type=int, help="override J of an MVQ preset (chunk = min(chunk, J))")
    b.add_argument("--compile-mode", help="torch.compile mode with --compile (e.g. reduce-overhead: CUDA graphs)")
    b.add_argument("--tf32", action="store_true", help="cuda: TF32 tensor-op matmuls and convolutions (default: FP32)")
    b.add_argument("--bottleneck", action="store_true", help="time the MVQ bottleneck alone (forward + backward to its input)")
    args = p.parse_args(argv)
    {"state": cmd_state, "verify": cmd_verify, "bench": cmd_bench}[args.mode](args)


if __name__ == "__main__":
    main()
