#!/usr/bin/env python3
"""Resumable VQ-vs-MVQ sweep on FashionMNIST (issue 11): trains each cell with `mvq train`, scores it
with `mvq eval`, and writes OUT/cells.json (one record per cell and seed) for `mvq report --cells`.

A cell is reused only when its recorded budget, seed and config (cell.json) match exactly; anything else
is trained again from scratch. Cells run in the order listed (most important first), so a sweep stopped
early still has complete groups.

Usage:
  tools/experiments/sweep.py train  [--out runs/sweep] [--steps 600] [--seeds 1,2,3] [--only GROUP,...]
  tools/experiments/sweep.py eval   [--out runs/sweep] [--features PATH] [--limit N]
  tools/experiments/sweep.py list                         # the cells, their bits per instance
  tools/experiments/sweep.py tables [--out runs/sweep] [--gen-out GEN.json] [--bench BENCH.json] [--versus LONG_OUT]   # markdown tables
  tools/experiments/sweep.py gen    --runs DIR [DIR ...] [--count 2000] [--limit 2000] [--features PATH]
      # generation: the default prior (`mvq prior train`), `mvq sample --count N --seed 1`, then
      # `mvq eval --samples` (gFID, precision, recall) against the first N test images; DIR/gen/gen.json
env: MVQ (command prefix, default "dotnet tools/Mvq.Cli/bin/Release/net10.0/mvq.dll"), MVQ_THREADS (set it to 1).
"""
import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time


def vq(k, l):
    return {"kind": "vq", "head": "global", "tokens": l, "codes": k, "codeDim": 16}


def mvq(k1, l1, k2, l2, j=256, j_eval=None):
    return {"kind": "mvq", "head": "global", "tokens": l1, "codes": k1, "codeDim": 16,
            "secondary": {"tokens": l2, "codeDim": 16, "codes": k2},
            "mvq": {"hypotheses": j, "evalHypotheses": j_eval or j, "fHidden": 64, "chunk": min(j, 256)}}


def bits(m):
    """Bits per instance: sum over tokens of log2(vocabulary), the winner index w included."""
    b = m["tokens"] * math.log2(m["codes"])
    if m["kind"] == "mvq":
        b += m["secondary"]["tokens"] * math.log2(m["secondary"]["codes"]) + math.log2(m["mvq"]["evalHypotheses"])
    return b


# (group, name, model config), most important first. Paper framing: L primary tokens, VQ with K entries
# against MVQ with K/2 primary and K/2 secondary entries, L2 = 1 (L = 2) or 2 (L = 5).
CELLS = [
    ("paper-L2", "vq-L2-K16", vq(16, 2)),
    ("paper-L2", "mvq-L2-K8+8", mvq(8, 2, 8, 1)),
    # Equal bits: a VQ cell spending about as many bits as mvq-L2-K8+8 (16 against 17).
    ("equal-bits", "vq-L2-K256", vq(256, 2)),
    # J sweep at mvq-L2-K8+8 (J_eval = J: w costs log2 J bits; J = 1 is plain dropout, no selection).
    ("j-sweep", "mvq-L2-K8+8-J1", mvq(8, 2, 8, 1, j=1)),
    ("paper-L5", "vq-L5-K16", vq(16, 5)),
    ("paper-L5", "mvq-L5-K8+8", mvq(8, 5, 8, 2)),
    ("equal-bits", "vq-L5-K64", vq(64, 5)),       # 30 bits against mvq-L5-K8+8's 29
    ("j-sweep", "mvq-L2-K8+8-J32", mvq(8, 2, 8, 1, j=32)),
    ("j-sweep", "mvq-L2-K8+8-J2048", mvq(8, 2, 8, 1, j=2048)),
    ("j-sweep", "mvq-L2-K8+8-J2", mvq(8, 2, 8, 1, j=2)),
    ("j-sweep", "mvq-L2-K8+8-J8", mvq(8, 2, 8, 1, j=8)),
    # K sweep in the paper's framing (the paper: gains "widen as codebook entries are reduced"), L = 2 then L = 5.
    ("paper-L2-K32", "vq-L2-K32", vq(32, 2)),
    ("paper-L2-K32", "mvq-L2-K16+16", mvq(16, 2, 16, 1)),
    ("paper-L2-K64", "vq-L2-K64", vq(64, 2)),
    ("paper-L2-K64", "mvq-L2-K32+32", mvq(32, 2, 32, 1)),
    ("paper-L2-K128", "vq-L2-K128", vq(128, 2)),
    ("paper-L2-K128", "mvq-L2-K64+64", mvq(64, 2, 64, 1)),
    ("paper-L5-K32", "vq-L5-K32", vq(32, 5)),
    ("paper-L5-K32", "mvq-L5-K16+16", mvq(16, 5, 16, 2)),
    # vq-L5-K64 is in the equal-bits group above (a cell name is one run folder).
    ("paper-L5-K64", "mvq-L5-K32+32", mvq(32, 5, 32, 2)),
    ("paper-L5-K128", "vq-L5-K128", vq(128, 5)),
    ("paper-L5-K128", "mvq-L5-K64+64", mvq(64, 5, 64, 2)),
]


def mvq_cmd():
    return shlex.split(os.environ.get("MVQ", "dotnet tools/Mvq.Cli/bin/Release/net10.0/mvq.dll"))


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def cells(args):
    only = set(args.only.split(",")) if args.only else None
    seeds = [int(s) for s in args.seeds.split(",")]
    for group, name, model in CELLS:
        if only and group not in only and name not in only:
            continue
        for seed in seeds:
            yield group, name, model, seed


def train(args):
    os.makedirs(args.out, exist_ok=True)
    for group, name, model, seed in cells(args):
        d = os.path.join(args.out, f"{name}-s{seed}")
        record = {"name": name, "group": group, "seed": seed, "steps": args.steps, "batch": args.batch,
                  "model": model, "bits_per_instance": bits(model), "data": "fashion-mnist:train"}
        old = load(os.path.join(d, "cell.json"))
        if old and {k: old.get(k) for k in record} == record and load(os.path.join(d, "metrics.json")):
            print(f"{name} seed {seed}: reused", flush=True)
            continue
        os.makedirs(d, exist_ok=True)
        lock = os.path.join(d, ".lock")  # several workers may share one OUT: a cell is trained by one of them
        if not take_lock(lock):
            print(f"{name} seed {seed}: busy (another worker holds {lock})", flush=True)
            continue
        try:
            train_cell(args, d, name, seed, record)
        finally:
            os.remove(lock)


def take_lock(lock):
    """Creates the lock file holding our pid; a lock left by a dead process is taken over."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return True
        except FileExistsError:
            try:
                pid = int(open(lock).read().strip() or "0")
                os.kill(pid, 0)
                return False
            except (ValueError, ProcessLookupError, OSError):
                os.remove(lock)
    return False


def train_cell(args, d, name, seed, record):
    for f in ("metrics.json", "eval.json", "model.safetensors"):
        if os.path.exists(os.path.join(d, f)):
            os.remove(os.path.join(d, f))
    write_json(os.path.join(d, "config.json"), {"model": record["model"]})
    t0 = time.time()
    with open(os.path.join(d, "train.log"), "w") as log:
        rc = subprocess.call(mvq_cmd() + ["train", "--config", os.path.join(d, "config.json"), "--data", record["data"],
                                          "--steps", str(args.steps), "--batch", str(args.batch), "--seed", str(seed),
                                          "--out", d], stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        print(f"{name} seed {seed}: mvq train failed (rc {rc}), see {d}/train.log", file=sys.stderr, flush=True)
        return
    record["wall_s"] = round(time.time() - t0, 1)
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record["threads"] = os.environ.get("MVQ_THREADS", "")
    write_json(os.path.join(d, "cell.json"), record)
    print(f"{name} seed {seed}: trained in {record['wall_s']} s", flush=True)


def evaluate(args):
    out = []
    for group, name, model, seed in cells(args):
        d = os.path.join(args.out, f"{name}-s{seed}")
        rec = load(os.path.join(d, "cell.json"))
        if not rec or not os.path.exists(os.path.join(d, "model.safetensors")):
            continue
        key = {"features": os.path.abspath(args.features) if args.features else None, "limit": args.limit,
               "model_mtime": os.path.getmtime(os.path.join(d, "model.safetensors"))}
        ev = load(os.path.join(d, "eval.json"))
        if not ev or ev.get("key") != key:
            cmd = mvq_cmd() + ["eval", "--model", os.path.join(d, "model.safetensors"), "--data", "fashion-mnist:test", "--json"]
            if args.features:
                cmd += ["--features", args.features]
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            t0 = time.time()
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"{name} seed {seed}: mvq eval failed: {p.stderr.strip()[-300:]}", file=sys.stderr, flush=True)
                continue
            ev = {"key": key, "eval": json.loads(p.stdout), "eval_s": round(time.time() - t0, 1)}
            write_json(os.path.join(d, "eval.json"), ev)
            print(f"{name} seed {seed}: evaluated in {ev['eval_s']} s", flush=True)
        m = load(os.path.join(d, "metrics.json")) or {}
        out.append({**rec, "eval": ev["eval"], "history": [{"step": h["step"], "loss": h["loss"], "rec": h["rec"], "ms": h.get("ms")} for h in m.get("history", [])],
                    "train_seconds": m.get("seconds")})
    write_json(os.path.join(args.out, "cells.json"), out)
    print(f"wrote {os.path.join(args.out, 'cells.json')} ({len(out)} cells)")


def generate(args):
    """gFID of each run folder's model with its default prior; reuses DIR/gen/gen.json when its key matches."""
    import re
    out = []
    for run in args.runs:
        model = os.path.join(run, "model.safetensors")
        if not os.path.exists(model):
            print(f"error: {model}: no model", file=sys.stderr)
            continue
        g = os.path.join(run, "gen")
        os.makedirs(g, exist_ok=True)
        key = {"model_mtime": os.path.getmtime(model), "count": args.count, "limit": args.limit, "seed": 1,
               "features": os.path.abspath(args.features) if args.features else None, "prior_steps": args.prior_steps,
               "prior_limit": args.prior_limit}
        rec = load(os.path.join(g, "gen.json"))
        if not rec or rec.get("key") != key:
            prior = os.path.join(g, "prior", "prior.safetensors")
            t0 = time.time()
            cmd = mvq_cmd() + ["prior", "train", "--model", model, "--data", "fashion-mnist:train", "--out", os.path.join(g, "prior"), "--seed", "1"]
            if args.prior_steps:
                cmd += ["--steps", str(args.prior_steps)]
            if args.prior_limit:
                cmd += ["--limit", str(args.prior_limit)]
            with open(os.path.join(g, "prior.log"), "w") as log:
                if subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT) != 0:
                    print(f"{run}: mvq prior train failed, see {g}/prior.log", file=sys.stderr, flush=True)
                    continue
            t1 = time.time()
            samples = os.path.join(g, "samples")
            p = subprocess.run(mvq_cmd() + ["sample", "--model", model, "--prior", prior, "--count", str(args.count), "--batch", "64",
                                            "--seed", "1", "--output", samples], capture_output=True, text=True)
            if p.returncode != 0:
                print(f"{run}: mvq sample failed: {p.stderr.strip()[-300:]}", file=sys.stderr, flush=True)
                continue
            # "sampled N images (T tokens each) in P ms (prior) + D ms (decoder); ..."
            m = re.search(r"\((\d+) tokens each\) in (\d+) ms \(prior\) \+ (\d+) ms \(decoder\)", p.stdout)
            t2 = time.time()
            # grid.png (the overview) is not a sample: keep it beside the folder, out of the scored set.
            if os.path.exists(os.path.join(samples, "grid.png")):
                os.replace(os.path.join(samples, "grid.png"), os.path.join(g, "grid.png"))
            cmd = mvq_cmd() + ["eval", "--samples", samples, "--data", "fashion-mnist:test", "--limit", str(args.limit), "--json"]
            if args.features:
                cmd += ["--features", args.features]
            e = subprocess.run(cmd, capture_output=True, text=True)
            if e.returncode != 0:
                print(f"{run}: mvq eval --samples failed: {e.stderr.strip()[-300:]}", file=sys.stderr, flush=True)
                continue
            pm = load(os.path.join(g, "prior", "metrics.json")) or {}
            rec = {"key": key, "run": os.path.abspath(run), "cell": load(os.path.join(run, "cell.json")),
                   "prior_wall_s": round(t1 - t0, 1), "sample_wall_s": round(t2 - t1, 1),
                   "tokens": int(m.group(1)) if m else None, "sample_prior_ms": int(m.group(2)) if m else None,
                   "sample_decoder_ms": int(m.group(3)) if m else None, "sample_stdout": p.stdout.strip(),
                   "prior_eval": pm.get("eval"), "gen_eval": json.loads(e.stdout),
                   "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "threads": os.environ.get("MVQ_THREADS", "")}
            for f in os.listdir(samples):  # the PNGs are reproducible from the prior, the seed and codes.json
                if re.fullmatch(r"\d+\.png", f):
                    os.remove(os.path.join(samples, f))
            write_json(os.path.join(g, "gen.json"), rec)
            print(f"{run}: prior {rec['prior_wall_s']} s, sampling {rec['sample_wall_s']} s, gFID {rec['gen_eval'].get('gfid')}", flush=True)
        out.append(rec)
    if args.gen_out:
        write_json(args.gen_out, out)
        print(f"wrote {args.gen_out} ({len(out)} runs)")


def versus(short, long):
    """The cells of a longer sweep (--versus DIR) against the same cells and seeds of this one, and the headline
    VQ/MVQ comparisons at both lengths with their Welch t."""
    order = [name for _, name, _ in CELLS]
    names = sorted({r["name"] for r in long}, key=order.index)
    seeds = {n: sorted(r["seed"] for r in long if r["name"] == n) for n in names}
    vals = lambda src, n, k, ss: [r["eval"][k] for r in src if r["name"] == n and r["seed"] in ss]
    steps = lambda src: src[0]["steps"] if src else "?"
    s0, s1 = steps(short), steps(long)
    print()
    print(f"| cell | bits / instance | seeds | rFID, {s0} steps | rFID, {s1} steps | test mse, {s0} | test mse, {s1} | train wall s ({s1}, each) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in names:
        ss = seeds[n]
        wall = ", ".join(str(round(r["wall_s"])) for r in long if r["name"] == n)
        bits_n = next(r["bits_per_instance"] for r in long if r["name"] == n)
        print(f"| {n} | {bits_n:g} | {','.join(map(str, ss))} | {mean_std(vals(short, n, 'rfid', ss), '.1f')} | {mean_std(vals(long, n, 'rfid', ss), '.1f')} | "
              f"{mean_std(vals(short, n, 'mse', ss), '.5f')} | {mean_std(vals(long, n, 'mse', ss), '.5f')} | {wall} |")

    def gap(src, a, b, ss):
        va, vb = vals(src, a, "rfid", ss), vals(src, b, "rfid", ss)
        ma, mb = sum(va) / len(va), sum(vb) / len(vb)
        t = f" ({welch_t(va, vb):+.1f})" if len(va) > 1 and len(vb) > 1 else ""
        return f"{100 * (mb - ma) / ma:+.0f}%{t}"

    print()
    print(f"| comparison | MVQ against VQ, {s0} steps (t) | MVQ against VQ, {s1} steps (t) |")
    print("|---|---|---|")
    for label, a, b in (("paper framing, L = 2, K = 16", "vq-L2-K16", "mvq-L2-K8+8"), ("equal bits, L = 2 (16 vs 17)", "vq-L2-K256", "mvq-L2-K8+8"),
                        ("paper framing, L = 5, K = 16", "vq-L5-K16", "mvq-L5-K8+8"), ("equal bits, L = 5 (30 vs 29)", "vq-L5-K64", "mvq-L5-K8+8"),
                        ("paper framing, L = 5, K = 32", "vq-L5-K32", "mvq-L5-K16+16")):
        common = sorted(set(seeds.get(a, [])) & set(seeds.get(b, [])))
        if common:
            print(f"| {label} (seeds {','.join(map(str, common))}) | {gap(short, a, b, common)} | {gap(long, a, b, common)} |")


def welch_t(va, vb):
    """(mean(vb) - mean(va)) over its Welch standard error; nan with fewer than 2 values a side or no spread."""
    if len(va) < 2 or len(vb) < 2:
        return float("nan")
    var = lambda v: sum((x - sum(v) / len(v)) ** 2 for x in v) / (len(v) - 1)
    se = math.sqrt(var(va) / len(va) + var(vb) / len(vb))
    return (sum(vb) / len(vb) - sum(va) / len(va)) / se if se > 0 else float("nan")


def bits_text(m):
    """'17 (6 + 3 + 8)': total, then L1 + L2 + w bits for MVQ."""
    t = bits(m)
    if m["kind"] != "mvq":
        return f"{t:g}"
    b1 = m["tokens"] * math.log2(m["codes"])
    b2 = m["secondary"]["tokens"] * math.log2(m["secondary"]["codes"])
    return f"{t:g} ({b1:g} + {b2:g} + {math.log2(m['mvq']['evalHypotheses']):g})"


def mean_std(v, fmt):
    if not v:
        return "-"
    m = sum(v) / len(v)
    if len(v) == 1:
        return f"{m:{fmt}} (1 seed)"
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    return f"{m:{fmt}} ± {sd:{fmt}}"


def tables(args):
    """Markdown tables for docs/results: every cell (mean ± sample std over seeds), the paper's framing against K, the
    equal-bits pairs, the J sweep (with --bench, `mvq bench mvq --json` step times) and, with --gen-out, generation."""
    cells_json = load(os.path.join(args.out, "cells.json")) or []
    runs_of = lambda name: [c for c in cells_json if c["name"] == name]
    col = lambda runs, k: [r["eval"][k] for r in runs if r["eval"].get(k) is not None]
    print("| cell | group | bits / instance | seeds | rFID | KID | precision | recall | F8 | F1/8 | perceptual | test mse | psnr (dB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for _, name, model in CELLS:
        runs = runs_of(name)
        if not runs:
            continue
        c = lambda k, f: mean_std(col(runs, k), f)
        print(f"| {name} | {runs[0]['group']} | {bits_text(model)} | {','.join(str(r['seed']) for r in runs)} | {c('rfid', '.1f')} | "
              f"{c('kid', '.1f')} | {c('precision', '.3f')} | {c('recall', '.3f')} | {c('f8', '.3f')} | "
              f"{c('f1_8', '.3f')} | {c('perceptual', '.3f')} | {c('mse', '.5f')} | {c('psnr', '.2f')} |")

    def rfid(name):
        v = col(runs_of(name), "rfid")
        return (sum(v) / len(v), len(v)) if v else (None, 0)

    def mean(name, k):
        v = col(runs_of(name), k)
        return sum(v) / len(v)

    def pair_row(label, a, b):
        """One comparison row: VQ cell a against MVQ cell b, rFID change of MVQ relative to VQ."""
        (ra, na), (rb, nb) = rfid(a), rfid(b)
        model = {n: m for _, n, m in CELLS}
        if ra is None or rb is None:
            return
        # The gap in units of its standard error (Welch): |t| < 2 is within the seed noise of 3 seeds a side.
        va, vb = col(runs_of(a), "rfid"), col(runs_of(b), "rfid")
        t = welch_t(va, vb)
        print(f"| {label} | {a}: {bits(model[a]):g} bits, {mean_std(va, '.1f')} | "
              f"{b}: {bits(model[b]):g} bits, {mean_std(vb, '.1f')} | {100 * (rb - ra) / ra:+.0f}% | {t:+.1f} | {100 * (mean(b, 'mse') - mean(a, 'mse')) / mean(a, 'mse'):+.0f}% | {min(na, nb)} |")

    print()
    print("Paper framing: VQ with K entries against MVQ with K/2 primary + K/2 secondary entries (rFID change of MVQ; negative = MVQ better).")
    print()
    print("| L, K | VQ | MVQ | MVQ against VQ | t (Welch) | test mse, MVQ against VQ | seeds |")
    print("|---|---|---|---|---|---|---|")
    for l in (2, 5):
        for k in (16, 32, 64, 128):
            pair_row(f"L = {l}, K = {k}", f"vq-L{l}-K{k}", f"mvq-L{l}-K{k // 2}+{k // 2}")
    print()
    print("Equal bits: VQ spending as many bits per instance as MVQ (w counted).")
    print()
    print("| pair | VQ | MVQ | MVQ against VQ | t (Welch) | test mse, MVQ against VQ | seeds |")
    print("|---|---|---|---|---|---|---|")
    for label, a, b in (("L = 2 (16 vs 17 bits)", "vq-L2-K256", "mvq-L2-K8+8"), ("L = 5 (30 vs 29 bits)", "vq-L5-K64", "mvq-L5-K8+8"),
                        ("20 bits, L = 5 vs L = 2", "vq-L5-K16", "mvq-L2-K16+16"), ("25 vs 26 bits", "vq-L5-K32", "mvq-L2-K64+64"),
                        ("35 vs 36 bits", "vq-L5-K128", "mvq-L5-K16+16")):
        pair_row(label, a, b)

    bench = {}
    if args.bench and load(args.bench):
        bench = {r["hypotheses"]: r["ms_per_step"] for r in load(args.bench)["rows"]}
    print()
    print("J sweep at mvq-L2-K8+8 (J_eval = J; J = 1 is plain dropout of the secondary tokens)" +
          (f"; step time: `mvq bench mvq`, {load(args.bench).get('preset')}, batch {load(args.bench).get('batch')}, "
           f"{load(args.bench).get('threads')} threads, median ms per training step" if bench else "") + ".")
    print()
    print("| J | bits / instance | seeds | rFID | test mse | F8 | ms / step |")
    print("|---|---|---|---|---|---|---|")
    for _, name, model in sorted(CELLS, key=lambda c: c[2].get("mvq", {}).get("hypotheses", 0)):
        if model["kind"] != "mvq" or not (name.startswith("mvq-L2-K8+8-J") or name == "mvq-L2-K8+8"):
            continue
        runs, j = runs_of(name), model["mvq"]["hypotheses"]
        if runs:
            ms = f"{bench[j]:.0f}" if j in bench else "-"
            print(f"| {j} | {bits_text(model)} | {len(runs)} | {mean_std(col(runs, 'rfid'), '.1f')} | {mean_std(col(runs, 'mse'), '.5f')} | "
                  f"{mean_std(col(runs, 'f8'), '.3f')} | {ms} |")

    if args.versus:
        versus(cells_json, load(os.path.join(args.versus, "cells.json")) or [])

    if args.gen_out:
        import re
        gen = load(args.gen_out) or []
        print()
        print("| run | tokens | bits / instance | rFID | gFID | KID | precision | recall | F8 | F1/8 | prior held-out bits / image | sampling: prior ms + decoder ms (2000 images) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        by_cell = {}
        for g in gen:
            run = os.path.basename(g["run"].rstrip("/"))
            # A sweep cell's eval.json, or eval-raw.json (plain `mvq eval --json` output) beside a preset's run.
            ev = (load(os.path.join(g["run"], "eval.json")) or {}).get("eval") or load(os.path.join(g["run"], "eval-raw.json"))
            rf = ev["rfid"] if ev else None
            cell = g.get("cell") or {}
            b = bits_text(cell["model"]) if cell.get("model") else (f"{ev['bits_per_instance']:g}" if ev and ev.get("bits_per_instance") else "-")
            e = g["gen_eval"]
            pe = g.get("prior_eval") or {}
            print(f"| {run} | {g.get('tokens')} | {b} | {rf if rf is None else f'{rf:.1f}'} | {e['gfid']:.1f} | {e['kid']:.1f} | {e['precision']:.3f} | {e['recall']:.3f} | "
                  f"{e.get('f8', float('nan')):.3f} | {e.get('f1_8', float('nan')):.3f} | {pe.get('bits_per_image', float('nan')):.2f} | {g.get('sample_prior_ms')} + {g.get('sample_decoder_ms')} |")
            by_cell.setdefault(cell.get("name") or re.sub(r"-s\d+$", "", run), []).append((g, rf))
        print()
        print("| model | runs (seeds) | tokens sampled | gFID | rFID | precision | recall | prior ms / 2000 images (median) | decoder ms (median) |")
        print("|---|---|---|---|---|---|---|---|---|")
        med = lambda v: sorted(v)[len(v) // 2] if v else float("nan")
        for name, gs in by_cell.items():
            e = [g["gen_eval"] for g, _ in gs]
            rfs = [rf for _, rf in gs if rf is not None]
            print(f"| {name} | {len(gs)} | {gs[0][0].get('tokens')} | {mean_std([x['gfid'] for x in e], '.1f')} | {mean_std(rfs, '.1f')} | "
                  f"{mean_std([x['precision'] for x in e], '.3f')} | {mean_std([x['recall'] for x in e], '.3f')} | "
                  f"{med([g.get('sample_prior_ms') for g, _ in gs if g.get('sample_prior_ms')])} | {med([g.get('sample_decoder_ms') for g, _ in gs if g.get('sample_decoder_ms')])} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["train", "eval", "list", "gen", "tables"])
    ap.add_argument("--out", default="runs/sweep")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--only", default="", help="comma-separated groups or cell names")
    ap.add_argument("--features", default=None, help="feature network for mvq eval (default: the committed one)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate the first N test images")
    ap.add_argument("--runs", nargs="*", default=[], help="gen: run folders (each with model.safetensors)")
    ap.add_argument("--count", type=int, default=2000, help="gen: images to sample")
    ap.add_argument("--prior-steps", type=int, default=None, help="gen: prior training steps (default: the prior's recipe)")
    ap.add_argument("--prior-limit", type=int, default=None, help="gen: train the prior on the first N training images only (smoke tests)")
    ap.add_argument("--gen-out", default=None, help="gen: write the records of all --runs to this JSON file")
    ap.add_argument("--versus", default=None, help="tables: a longer sweep's OUT folder, compared cell by cell with this one")
    ap.add_argument("--bench", default=None, help="tables: `mvq bench mvq --json` output for the J sweep's step times")
    args = ap.parse_args()
    if args.stage == "list":
        for group, name, model in CELLS:
            print(f"{group:14s} {name:22s} {bits(model):6.2f} bits")
    elif args.stage == "train":
        train(args)
    elif args.stage == "tables":
        tables(args)
    elif args.stage == "gen":
        if args.limit is None:
            args.limit = args.count
        generate(args)
    else:
        evaluate(args)


if __name__ == "__main__":
    main()
