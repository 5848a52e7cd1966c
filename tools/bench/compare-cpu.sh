#!/usr/bin/env bash
# CPU training throughput of MvqNative against the PyTorch reference (tools/reference/), same
# presets, batch, thread count and step counts, runs alternating ours / PyTorch so that machine
# load drifts hit both alike. Prints one JSON object on stdout (per-run figures, medians, ratio,
# machine, the table as lines) and the table on stderr.
#
# Environment: THREADS (default: nproc), RUNS (default 3), STEPS (timed steps per run, default 10),
# WARMUP (untimed steps first, default 2), BATCH (default 64), PRESETS (default
# "fmnist-vq fmnist-mvq-global"), PYTHON (default /usr/bin/python3, the one with torch).
#
# images/s of one run = batch * steps / (sum of the timed step times), for both programs
# (PyTorch's bench reports exactly that; ours is recomputed from its per-step times).
set -euo pipefail
cd "$(dirname "$0")/../.."

THREADS=${THREADS:-$(nproc)}
RUNS=${RUNS:-3}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
BATCH=${BATCH:-64}
PRESETS=${PRESETS:-"fmnist-vq fmnist-mvq-global"}
PYTHON=${PYTHON:-/usr/bin/python3}

dotnet build tools/Mvq.Cli -c Release -v quiet -nologo >&2
MVQ_DLL=tools/Mvq.Cli/bin/Release/net10.0/mvq.dll
[ -f "$MVQ_DLL" ] || { echo "compare-cpu: $MVQ_DLL not built" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

for preset in $PRESETS; do
  for run in $(seq 1 "$RUNS"); do
    echo "compare-cpu: $preset run $run/$RUNS (ours, then pytorch), load $(cut -d' ' -f1 /proc/loadavg)" >&2
    MVQ_THREADS=$THREADS dotnet "$MVQ_DLL" bench train --device cpu --preset "$preset" --batch "$BATCH" \
      --steps "$STEPS" --warmup "$WARMUP" --json > "$TMP/ours.$preset.$run.json"
    "$PYTHON" tools/reference/mvq_reference.py bench --preset "$preset" --batch "$BATCH" --threads "$THREADS" \
      --steps "$STEPS" --warmup "$WARMUP" --json > "$TMP/torch.$preset.$run.json"
  done
done

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
"$PYTHON" - "$TMP" "$THREADS" "$RUNS" "$STEPS" "$WARMUP" "$BATCH" "$LOAD_BEFORE" "$LOAD_AFTER" $PRESETS <<'EOF'
import json, os, platform, statistics, sys, datetime
tmp, threads, runs, steps, warmup, batch, load_before, load_after, *presets = sys.argv[1:]
runs, batch = int(runs), int(batch)

def last_json(path):
    # The JSON object is the last non-empty line (build or runtime chatter may precede it).
    lines = [l for l in open(path).read().splitlines() if l.strip()]
    return json.loads(lines[-1]) if lines[-1].lstrip().startswith("{") else json.loads(open(path).read())

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "cores": os.cpu_count(), "cpu": cpu, "threads": int(threads), "batch": batch, "runs": runs,
       "steps": int(steps), "warmup": int(warmup), "load_avg_before": load_before, "load_avg_after": load_after,
       "images_per_s": "batch * steps / sum(step times), per run; median over runs", "presets": {}}
for p in presets:
    ours = [last_json(f"{tmp}/ours.{p}.{r}.json") for r in range(1, runs + 1)]
    torch = [last_json(f"{tmp}/torch.{p}.{r}.json") for r in range(1, runs + 1)]
    ours_ips = [batch * len(o["step_ms"]) * 1000.0 / sum(o["step_ms"]) for o in ours]
    torch_ips = [t["images_per_s"] for t in torch]
    mo, mt = statistics.median(ours_ips), statistics.median(torch_ips)
    out["presets"][p] = {
        "ours_images_per_s": [round(v, 2) for v in ours_ips],
        "ours_median_step_ms": [round(o["ms_per_step"], 3) for o in ours],
        "pytorch_images_per_s": torch_ips,
        "ours_median": round(mo, 2), "pytorch_median": round(mt, 2), "ratio_ours_over_pytorch": round(mo / mt, 3),
        "ours_threads": ours[0].get("threads"), "pytorch_threads": torch[0].get("threads"),
        "torch_version": torch[0].get("torch_version"),
    }
rows = ["| preset | ours images/s | PyTorch images/s | ours / PyTorch |", "|---|---:|---:|---:|"]
rows += [f"| {p} | {r['ours_median']:.1f} | {r['pytorch_median']:.1f} | {r['ratio_ours_over_pytorch']:.2f} |" for p, r in out["presets"].items()]
out["table"] = rows
print(json.dumps(out, indent=2))
# The table also goes to stderr, so stdout stays one JSON object.
print("\n".join(rows), file=sys.stderr)
print(f"{out['cores']} cores ({cpu}), {threads} threads, batch {batch}, median of {runs} runs of {steps} steps; "
      f"load average {load_before} before, {load_after} after", file=sys.stderr)
EOF
