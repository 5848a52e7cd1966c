#!/usr/bin/env bash
# The prior on the CPU against the PyTorch reference (tools/reference/prior_reference.py), same presets,
# prior shape (3 layers, 4 heads, width 128), batch and thread count, runs alternating ours / PyTorch so that
# load drifts hit both alike:
#   train:  images/s of full prior training steps (forward, masked cross-entropy, backward, clip, AdamW),
#           batch / median step time on both sides, after WARMUP untimed steps;
#   sample: images/s of KV-cache sampling of COUNT images (prior only, no autoencoder decode),
#           COUNT / median run time on both sides, after at least SWARMUP untimed runs lasting at least
#           SWARMUP_SECONDS on both sides (a 64-image run of a 5-token prior takes ~15 ms: a few runs leave
#           .NET's tiered JIT in tier 0, so the warm-up is measured in time, the same rule on both sides).
# Prints one JSON object on stdout (per-run figures, medians, ratios) and a table on stderr.
#
# Environment: THREADS (default 1), RUNS (default 5), STEPS (default 20), WARMUP (default 40: .NET's tiered
# JIT needs tens of steps), PRESETS (default "fmnist-vq fmnist-mvq-global"), COUNT (default 64),
# SRUNS (timed sampling runs per program run, default 3), SWARMUP (default 3), SWARMUP_SECONDS (default 3),
# PYTHON (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/../.."

THREADS=${THREADS:-1}
RUNS=${RUNS:-5}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-40}
PRESETS=${PRESETS:-"fmnist-vq fmnist-mvq-global"}
COUNT=${COUNT:-64}
SRUNS=${SRUNS:-3}
SWARMUP=${SWARMUP:-3}
SWARMUP_SECONDS=${SWARMUP_SECONDS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}

dotnet build tools/Mvq.Cli -c Release -v quiet -nologo >&2
MVQ_DLL=tools/Mvq.Cli/bin/Release/net10.0/mvq.dll
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

batch_for() { [ "$1" = fmnist-vq ] && echo 32 || echo 128; }   # PriorConfig.DefaultFor's batch
for preset in $PRESETS; do
  B=$(batch_for "$preset")
  for run in $(seq 1 "$RUNS"); do
    echo "compare-prior: $preset run $run/$RUNS, load $(cut -d' ' -f1 /proc/loadavg)" >&2
    MVQ_THREADS=$THREADS dotnet "$MVQ_DLL" bench prior --preset "$preset" --batch "$B" --steps "$STEPS" --warmup "$WARMUP" --json > "$TMP/ours.train.$preset.$run.json"
    "$PYTHON" tools/reference/prior_reference.py bench-train --preset "$preset" --batch "$B" --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" > "$TMP/torch.train.$preset.$run.json"
    MVQ_THREADS=$THREADS dotnet "$MVQ_DLL" bench sample --presets "$preset" --count "$COUNT" --batch "$COUNT" --runs "$SRUNS" --warmup "$SWARMUP" --warmup-seconds "$SWARMUP_SECONDS" --json > "$TMP/ours.sample.$preset.$run.json"
    "$PYTHON" tools/reference/prior_reference.py bench-sample --preset "$preset" --count "$COUNT" --batch "$COUNT" --threads "$THREADS" --runs "$SRUNS" --warmup "$SWARMUP" --warmup-seconds "$SWARMUP_SECONDS" > "$TMP/torch.sample.$preset.$run.json"
  done
done

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
"$PYTHON" - "$TMP" "$THREADS" "$RUNS" "$LOAD_BEFORE" "$LOAD_AFTER" "$COUNT" $PRESETS <<'PY'
import json, os, statistics, sys, datetime
tmp, threads, runs, lb, la, count, *presets = sys.argv[1:]
runs, count = int(runs), int(count)
def load(p):
    return json.loads(open(p).read())
out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
       "threads": int(threads), "runs": runs, "load_avg_before": lb, "load_avg_after": la, "presets": {}}
rows = ["| preset | what | ours images/s | PyTorch images/s | ours / PyTorch |", "|---|---|---:|---:|---:|"]
for p in presets:
    ot = [load(f"{tmp}/ours.train.{p}.{r}.json")["images_per_s"] for r in range(1, runs + 1)]
    tt = [load(f"{tmp}/torch.train.{p}.{r}.json")["images_per_s"] for r in range(1, runs + 1)]
    os_ = [count * 1000.0 / load(f"{tmp}/ours.sample.{p}.{r}.json")["rows"][0]["prior_ms"] for r in range(1, runs + 1)]
    ts = [load(f"{tmp}/torch.sample.{p}.{r}.json")["images_per_s"] for r in range(1, runs + 1)]
    # The same sampling runs counted in process CPU time (both sides, every thread): a loaded machine inflates it far
    # less than the wall clock, so it is the figure to read when the load average is well above the core count.
    oc = [count * 1000.0 / load(f"{tmp}/ours.sample.{p}.{r}.json")["rows"][0]["prior_cpu_ms"] for r in range(1, runs + 1)]
    tc = [count * 1000.0 / load(f"{tmp}/torch.sample.{p}.{r}.json")["prior_cpu_ms"] for r in range(1, runs + 1)]
    res = {}
    for what, o, t in (("train", ot, tt), ("sample", os_, ts), ("sample_cpu_time", oc, tc)):
        mo, mt = statistics.median(o), statistics.median(t)
        res[what] = {"ours_images_per_s": [round(v, 2) for v in o], "pytorch_images_per_s": t,
                     "ours_median": round(mo, 2), "pytorch_median": round(mt, 2), "ratio": round(mo / mt, 3)}
        rows.append(f"| {p} | {what} | {mo:.1f} | {mt:.1f} | {mo / mt:.2f} |")
    out["presets"][p] = res
out["table"] = rows
print(json.dumps(out, indent=2))
print("\n".join(rows), file=sys.stderr)
print(f"{threads} thread(s), median of {runs} runs; load average {lb} before, {la} after", file=sys.stderr)
PY
