#!/usr/bin/env bash
# CPU training throughput of MvqNative against the PyTorch reference (tools/reference/), same
# presets, batch, thread count, warm-up and step counts. Prints one JSON object on stdout (per-run
# figures, medians, ratios, steady-state evidence, GFLOP/s against the SGEMM peak, machine, load)
# and a short table on stderr.
#
# Environment: THREADS (default: nproc), RUNS (default 5), STEPS (timed steps per run, default 30),
# WARMUP (untimed steps first, default 30: .NET's tiered JIT needs tens of steps to reach its
# optimised code, and PyTorch gets the same), BATCH (default 64), PRESETS (default
# "fmnist-vq fmnist-mvq-global"), PYTHON (default /usr/bin/python3, the one with torch),
# GEMM_SIZE (SGEMM size for the peak, default 1024; 0 skips it).
#
# Method (docs/perf/cpu-vs-pytorch.md):
# - both programs report every timed step's wall time (step_ms); both statistics are computed
#   here the same way for both sides: images/s by the mean step (batch * steps / sum of times)
#   and by the median step (batch / median time), each a median over runs;
# - runs alternate, and the order flips every run (ours first on odd runs, PyTorch first on even
#   ones), so load drifts on a shared machine hit both alike; the 1-minute load average before
#   every run is recorded;
# - steady state: for each run, the median of the last third of the timed steps over the median of
#   the first third ("drift", 1.0 = flat) and p90/p10 of the step times ("spread"), both sides;
# - GFLOP/s of a step: the graph's flops (convolutions, linears, VQ distances, MVQ hypotheses;
#   forward and backward, counted from the preset, the same count for both sides) over the median
#   step time, against the best SGEMM rate `mvq bench gemm` measures at GEMM_SIZE in the same session.
set -euo pipefail
cd "$(dirname "$0")/../.."

THREADS=${THREADS:-$(nproc)}
RUNS=${RUNS:-5}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-30}
BATCH=${BATCH:-64}
PRESETS=${PRESETS:-"fmnist-vq fmnist-mvq-global"}
PYTHON=${PYTHON:-/usr/bin/python3}
GEMM_SIZE=${GEMM_SIZE:-1024}

dotnet build tools/Mvq.Cli -c Release -v quiet -nologo >&2
MVQ_DLL=tools/Mvq.Cli/bin/Release/net10.0/mvq.dll
[ -f "$MVQ_DLL" ] || { echo "compare-cpu: $MVQ_DLL not built" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

ours() {
  MVQ_THREADS=$THREADS dotnet "$MVQ_DLL" bench train --device cpu --preset "$1" --batch "$BATCH" \
    --steps "$STEPS" --warmup "$WARMUP" --json > "$TMP/ours.$1.$2.json"
}
torch() {
  "$PYTHON" tools/reference/mvq_reference.py bench --preset "$1" --batch "$BATCH" --threads "$THREADS" \
    --steps "$STEPS" --warmup "$WARMUP" --json > "$TMP/torch.$1.$2.json"
}

for preset in $PRESETS; do
  for run in $(seq 1 "$RUNS"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "$load" > "$TMP/load.$preset.$run"
    if [ $((run % 2)) = 1 ]; then
      echo "compare-cpu: $preset run $run/$RUNS (ours, then pytorch), load $load" >&2
      ours "$preset" "$run"; torch "$preset" "$run"
    else
      echo "compare-cpu: $preset run $run/$RUNS (pytorch, then ours), load $load" >&2
      torch "$preset" "$run"; ours "$preset" "$run"
    fi
  done
done

if [ "$GEMM_SIZE" != 0 ]; then
  echo "compare-cpu: SGEMM peak at $GEMM_SIZE, load $(cut -d' ' -f1 /proc/loadavg)" >&2
  MVQ_THREADS=$THREADS dotnet "$MVQ_DLL" bench gemm --sizes "$GEMM_SIZE" --json > "$TMP/gemm.json"
else
  echo '{}' > "$TMP/gemm.json"
fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
"$PYTHON" - "$TMP" "$THREADS" "$RUNS" "$STEPS" "$WARMUP" "$BATCH" "$LOAD_BEFORE" "$LOAD_AFTER" $PRESETS <<'EOF'
import json, os, platform, statistics, sys, datetime
tmp, threads, runs, steps, warmup, batch, load_before, load_after, *presets = sys.argv[1:]
runs, batch = int(runs), int(batch)

def last_json(path):
    # The JSON object is the last non-empty line (build or runtime chatter may precede it).
    text = open(path).read()
    lines = [l for l in text.splitlines() if l.strip()]
    return json.loads(lines[-1]) if lines and lines[-1].lstrip().startswith("{") and lines[-1].rstrip().endswith("}") else json.loads(text)

def flops_per_step(p, b):
    """Flops of one training step of preset p at batch b, forward + backward, from the graph of docs/model.md.
    Counted: convolutions, linears and token heads (2 per multiply-add; backward = dx + dw = 2x forward, the
    first conv has no dx), VQ distances (3 K D per row: subtract, multiply, add), MVQ hidden statistics and
    hypothesis scoring (forward only: losers get no gradient), the winner path through f and U.
    Not counted: element-wise ops, norms, losses, the optimiser (memory-bound, O(params) or O(activations))."""
    sys.path.insert(0, "tools/reference")
    from config import ModelConfig   # the preset files as both programs read them (mvq_reference.load_preset)
    c = ModelConfig.load(os.path.join("MvqNative/Models/Presets", p + ".json"))
    C, H, W = c.channels, c.height, c.width
    c0, c1 = c.enc_channels; R, hid = c.res_blocks, c.res_hidden
    P = (H // 4) * (W // 4)
    D1, K1 = c.code_dim, c.codes
    grid = c.head == "grid"
    L1 = P if grid else c.tokens
    macs = []                                          # (multiply-adds per image, has dx)
    macs.append((C * c0 * 16 * (H // 2) * (W // 2), False))
    macs.append((c0 * c1 * 16 * P, True))
    macs.append((c1 * c1 * 9 * P, True))
    res = [(c1 * hid * 9 * P, True), (hid * c1 * P, True)] * R
    macs += res
    head = lambda L, D: (c1 * D * P, True) if grid else (c1 * P * L * D, True)
    macs.append(head(L1, D1))                        # primary head
    macs.append((c1 * D1 * P, True) if grid else (L1 * D1 * c1 * P, True))  # decoder head
    macs.append((c1 * c1 * 9 * P, True)); macs += res
    macs.append((c1 * c0 * 9 * 4 * P, True)); macs.append((c0 * C * 9 * 16 * P, True))
    vq = 3.0 * b * L1 * K1 * D1
    mvq = 0.0
    if c.kind == "mvq":
        D2, K2 = c.code_dim2, c.codes2; L2 = P if grid else c.tokens2
        J, F = c.hypotheses, c.f_hidden
        macs.append(head(L2, D2))
        vq += 3.0 * b * L2 * K2 * D2
        mix = 0 if grid else 2.0 * L1 * L2 * D1 + L1 * D1
        stats = b * J * L2 * F * (2.0 * D2 + 3)
        score = b * J * (L2 * (F * (2.0 * D2 + 3) + D1 * (2.0 * F + 1)) + mix + 3.0 * L1 * D1)
        winner = 3 * 2.0 * b * (L2 * (D2 * F + F * D1) + (0 if grid else L1 * L2 * D1))
        mvq = stats + score + winner
    conv = sum(2.0 * b * m * (3 if dx else 2) for m, dx in macs)
    return conv + vq + mvq, {"conv_linear": conv, "vq": vq, "mvq": mvq}

def per_run(step_ms):
    n = len(step_ms); k = max(1, n // 3); s = sorted(step_ms)
    return {"mean_ms": statistics.fmean(step_ms), "median_ms": statistics.median(step_ms),
            "ips_mean": batch * 1000.0 / statistics.fmean(step_ms), "ips_median": batch * 1000.0 / statistics.median(step_ms),
            "drift": statistics.median(step_ms[-k:]) / statistics.median(step_ms[:k]),
            "spread": s[min(n - 1, (9 * n) // 10)] / s[n // 10]}

gemm = last_json(f"{tmp}/gemm.json")
peak = max((max(r.get("ours_gflops") or 0, r.get("openblas_gflops") or 0) for r in gemm.get("rows", [])), default=None) or None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "cores": os.cpu_count(), "cpu": cpu, "threads": int(threads), "batch": batch, "runs": runs,
       "steps": int(steps), "warmup": int(warmup), "load_avg_before": load_before, "load_avg_after": load_after,
       "statistics": "per run: images/s = batch / mean step time and batch / median step time, from each side's step_ms; median over runs",
       "sgemm_peak_gflops": peak, "sgemm": gemm.get("rows"), "presets": {}}
for p in presets:
    ours = [last_json(f"{tmp}/ours.{p}.{r}.json") for r in range(1, runs + 1)]
    torch = [last_json(f"{tmp}/torch.{p}.{r}.json") for r in range(1, runs + 1)]
    loads = [float(open(f"{tmp}/load.{p}.{r}").read()) for r in range(1, runs + 1)]
    o = [per_run(x["step_ms"]) for x in ours]; t = [per_run(x["step_ms"]) for x in torch]
    med = lambda rows, key: statistics.median(r[key] for r in rows)
    fl, parts = flops_per_step(p, batch)
    r = {
        "ours_images_per_s_mean": med(o, "ips_mean"), "ours_images_per_s_median": med(o, "ips_median"),
        "pytorch_images_per_s_mean": med(t, "ips_mean"), "pytorch_images_per_s_median": med(t, "ips_median"),
        "ours_step_ms_median": med(o, "median_ms"), "pytorch_step_ms_median": med(t, "median_ms"),
        "ours_drift": [round(x["drift"], 3) for x in o], "pytorch_drift": [round(x["drift"], 3) for x in t],
        "ours_spread_p90_p10": [round(x["spread"], 3) for x in o], "pytorch_spread_p90_p10": [round(x["spread"], 3) for x in t],
        "load_1min_per_run": loads,
        "flops_per_step": fl, "flops_parts": parts,
        "ours_runs": o, "pytorch_runs": t,
        "ours_step_ms": [x["step_ms"] for x in ours], "pytorch_step_ms": [x["step_ms"] for x in torch],
        # What .NET's runtime did in each timed run: collections per generation, pause, bytes per step, which steps had a GC.
        "ours_gc": [{k: x.get(k) for k in ("gc_collections_gen0_1_2", "gc_pause_ms", "allocated_bytes_per_step", "steps_with_gc", "gc", "tiered_pgo")} for x in ours],
        "ours_threads": ours[0].get("threads"), "pytorch_threads": torch[0].get("threads"),
        "torch_version": torch[0].get("torch_version"),
    }
    r["ratio_mean"] = r["ours_images_per_s_mean"] / r["pytorch_images_per_s_mean"]
    r["ratio_median"] = r["ours_images_per_s_median"] / r["pytorch_images_per_s_median"]
    r["ours_gflops"] = fl / (r["ours_step_ms_median"] * 1e6)
    r["pytorch_gflops"] = fl / (r["pytorch_step_ms_median"] * 1e6)
    r["ours_fraction_of_sgemm_peak"] = r["ours_gflops"] / peak if peak else None
    out["presets"][p] = r
rows = ["| preset | statistic | ours images/s | PyTorch images/s | ours / PyTorch | ours GFLOP/s (of SGEMM peak) |", "|---|---|---:|---:|---:|---:|"]
for p, r in out["presets"].items():
    frac = f" ({r['ours_fraction_of_sgemm_peak']:.0%})" if r["ours_fraction_of_sgemm_peak"] else ""
    rows.append(f"| {p} | mean step | {r['ours_images_per_s_mean']:.1f} | {r['pytorch_images_per_s_mean']:.1f} | {r['ratio_mean']:.2f} | |")
    rows.append(f"| {p} | median step | {r['ours_images_per_s_median']:.1f} | {r['pytorch_images_per_s_median']:.1f} | {r['ratio_median']:.2f} | {r['ours_gflops']:.1f}{frac} |")
out["table"] = rows
print(json.dumps(out, indent=2))
# The table also goes to stderr, so stdout stays one JSON object.
print("\n".join(rows), file=sys.stderr)
for p, r in out["presets"].items():
    print(f"{p}: drift (last/first third) ours {r['ours_drift']} pytorch {r['pytorch_drift']}; "
          f"p90/p10 ours {r['ours_spread_p90_p10']} pytorch {r['pytorch_spread_p90_p10']}; load {r['load_1min_per_run']}", file=sys.stderr)
print(f"{out['cores']} cores ({cpu}), {threads} threads, batch {batch}, median of {runs} runs of {steps} steps after {warmup} warm-up steps; "
      f"SGEMM peak {peak} GFLOP/s; load average {load_before} before, {load_after} after", file=sys.stderr)
EOF
