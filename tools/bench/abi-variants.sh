#!/usr/bin/env bash
# Why is the C ABI slower than the facade at batch 64 (issue 12)? Runs `mvq bench api` (the C ABI and the facade side
# by side, alternating, in one process) for several builds of libmvqnative.so and settings of the managed side, so
# that each candidate cause is switched off one at a time:
#   default      the library as CMake builds it (NativeAOT, IlcInstructionSet=native)
#   speed        OptimizationPreference=Speed (ILC --Ot: more inlining)
#   speed-mibc   Speed plus the runtime pack's static PGO profile of the framework (StandardOptimizationData.mibc:
#                ThreadPool, Parallel.For, ...); a profile of MvqNative itself needs dotnet-pgo, which is not installed
#   jit-nopgo    default library, managed side without dynamic PGO (DOTNET_TieredPGO=0): if the gap closes, the JIT's
#                profile-guided code is what the AOT build lacks
#   threads1     default library, MVQ_THREADS=1 (no Parallel.For): if the gap closes, it is in the parallel path
# Each figure is the ratio of medians (images/s, wall) and of the median CPU milliseconds per call (process CPU time
# during a side's timed run; less sensitive to a loaded machine). The variants run in ROUNDS interleaved rounds.
# Environment: ROUNDS (default 2), RUNS (timed runs per side, default 9), BATCHES (default "64 1024"), THREADS (2).
#   bash tools/bench/abi-variants.sh            (needs build/ from tools/scripts/build-native.sh and the Release CLI)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-2}; RUNS=${RUNS:-9}; BATCHES=${BATCHES:-64 1024}; THREADS=${THREADS:-2}
out=build/abi-variants; mkdir -p "$out"
mvq=(dotnet tools/Mvq.Cli/bin/Release/net10.0/mvq.dll)
[ -f "${mvq[1]}" ] || { echo "error: ${mvq[1]}: not built (dotnet build tools/Mvq.Cli -c Release)" >&2; exit 1; }
[ -f build/abi/libmvqnative.so ] || { echo "error: build/abi/libmvqnative.so: not built (bash tools/scripts/build-native.sh)" >&2; exit 1; }
mibc=$(ls ~/.nuget/packages/microsoft.netcore.app.runtime.linux-x64/*/tools/StandardOptimizationData.mibc 2>/dev/null | tail -1 || true)
ilc_obj=native/abi/obj/Release/net10.0/linux-x64/native
publish() {  # NAME EXTRA-PROPERTIES...
  local name=$1; shift
  [ -f "$out/$name/libmvqnative.so" ] && return
  echo "publishing $name ..." >&2
  # ILC does not notice a changed optimisation setting: its native objects go first, before and after (so that the
  # next CMake build does not link a variant's objects into build/abi/libmvqnative.so).
  rm -rf "$ilc_obj"
  dotnet publish native/abi/MvqNative.Abi.csproj -c Release -r linux-x64 -o "$out/$name" --nologo -v quiet -p:IlcInstructionSet=native "$@" >&2
  rm -rf "$ilc_obj"
}
publish speed -p:OptimizationPreference=Speed
variants="default speed jit-nopgo threads1"
if [ -n "$mibc" ]; then publish speed-mibc -p:OptimizationPreference=Speed -p:IlcMibcPath="$(dirname "$mibc")/"; variants="default speed speed-mibc jit-nopgo threads1"; fi
for round in $(seq 1 "$ROUNDS"); do
  for v in $variants; do
    lib=$PWD/build/abi/libmvqnative.so; envs=(MVQ_THREADS=$THREADS)
    case $v in
      speed|speed-mibc) lib=$PWD/$out/$v/libmvqnative.so ;;
      jit-nopgo) envs+=(DOTNET_TieredPGO=0) ;;
      threads1) envs=(MVQ_THREADS=1) ;;
    esac
    env "${envs[@]}" "${mvq[@]}" bench api --abi "$lib" --batches $BATCHES --runs "$RUNS" --startup-runs 0 --json > "$out/$v-$round.json" 2> "$out/$v-$round.err"
  done
done
python3 - "$out" "$ROUNDS" $variants <<'PY'
import json, sys, statistics
out, rounds, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = []
for v in variants:
    for r in range(1, rounds + 1):
        o = json.load(open(f"{out}/{v}-{r}.json"))
        for e in o["encode"]:
            rows.append({"variant": v, "round": r, "load_average": o["load_average"], "batch": e["batch"],
                         "facade_images_per_s": e["facade_images_per_s"], "abi_images_per_s": e["abi_images_per_s"],
                         "abi_over_facade": e["abi_over_facade"], "abi_over_facade_cpu": e["abi_over_facade_cpu"],
                         "facade_cpu_ms_per_call": e["facade_cpu_ms_per_call_median"], "abi_cpu_ms_per_call": e["abi_cpu_ms_per_call_median"]})
print(json.dumps({"statistic": "per round: ratio of the median images/s (wall) and of the median CPU ms per call, C ABI over facade", "rows": rows}, indent=2))
print(f"{'variant':12s} {'batch':>5s}  wall ratio per round      CPU ratio per round", file=sys.stderr)
for v in variants:
    for b in sorted({x["batch"] for x in rows}):
        xs = [x for x in rows if x["variant"] == v and x["batch"] == b]
        wall = " ".join("%.3f" % x["abi_over_facade"] for x in xs)
        cpu = " ".join("%.3f" % x["abi_over_facade_cpu"] for x in xs)
        print(f"{v:12s} {b:5d}  {wall:24s}  {cpu}", file=sys.stderr)
print("load averages: " + "; ".join(sorted({x["load_average"] for x in rows})), file=sys.stderr)
PY
