#!/usr/bin/env bash
# Side-by-side timing of the prior's ops: `mvq bench prior-ops` (ours, CPU) against
# tools/bench/prior_ops_torch.py (PyTorch eager, the reference prior's formulation), same shapes,
# threads, warm-up, clock and statistic (median ms per forward+backward group), the two programs
# alternating RUNS times so that load drifts hit both alike. stdout: one JSON object (per-run
# figures, medians over runs, speed-up = PyTorch ms / ours ms); stderr: a short table.
#   tools/bench/compare-prior-ops.sh                         # 1 thread, process CPU time, 3 runs
#   THREADS=2 CLOCK=wall RUNS=5 tools/bench/compare-prior-ops.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${THREADS:-1}; RUNS=${RUNS:-3}; CLOCK=${CLOCK:-process}
dotnet build tools/Mvq.Cli -c Release >/dev/null
MVQ="dotnet tools/Mvq.Cli/bin/Release/net10.0/mvq.dll"
# name batch tokens vocab: the default priors' training shapes (fmnist-vq, fmnist-mvq-global).
SHAPES=("fmnist-vq 32 49 128" "fmnist-mvq-global 128 5 384")
out=$(mktemp)
for s in "${SHAPES[@]}"; do
  read -r name b t v <<<"$s"
  for r in $(seq "$RUNS"); do
    ours=$(MVQ_THREADS=$THREADS $MVQ bench prior-ops --device cpu --batch "$b" --tokens "$t" --vocab "$v" --clock "$CLOCK" --json | tr -d '\n')
    theirs=$(/usr/bin/python3 tools/bench/prior_ops_torch.py --batch "$b" --tokens "$t" --vocab "$v" --threads "$THREADS" --clock "$CLOCK" --json)
    echo "{\"shape\":\"$name\",\"ours\":$ours,\"torch\":$theirs}" >>"$out"
  done
done
/usr/bin/python3 - "$out" "$THREADS" "$CLOCK" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
res = {"threads": int(sys.argv[2]), "clock": sys.argv[3], "cpu": os.popen("grep -m1 'model name' /proc/cpuinfo").read().split(":")[-1].strip(),
       "cores": os.cpu_count(), "loadavg": open("/proc/loadavg").read().split()[:3], "runs": rows, "median": {}}
for shape in dict.fromkeys(r["shape"] for r in rows):
    rs = [r for r in rows if r["shape"] == shape]
    med = {}
    for op in rs[0]["ours"]["ms"]:
        o = statistics.median(r["ours"]["ms"][op] for r in rs)
        t = statistics.median(r["torch"]["ms"][op] for r in rs)
        med[op] = {"ours_ms": o, "torch_ms": t, "speedup": round(t / o, 2) if o > 0 else None}
    res["median"][shape] = med
print(json.dumps(res))
print(f"threads {res['threads']}, clock {res['clock']}, median of {len(rows) // max(1, len(res['median']))} runs (ms per fwd+bwd group)", file=sys.stderr)
for shape, med in res["median"].items():
    print(f"{shape}:", file=sys.stderr)
    for op, m in med.items():
        print(f"  {op:14s} ours {m['ours_ms']:8.3f}  torch {m['torch_ms']:8.3f}  speed-up {m['speedup']}", file=sys.stderr)
PY
rm -f "$out"
