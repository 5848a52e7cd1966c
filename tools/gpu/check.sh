#!/usr/bin/env bash
# The one GPU check, run ON the lent GPU machine (no .NET, no network) with the mvq build that
# tools/gpu/build.sh left in .gpu/: doctor, conformance on cuda, kernel benchmarks, training-step
# benchmarks, and the PyTorch reference (eager and torch.compile) at the same configs; then one
# JSON report, $OUT/gpu-report.json, plus $OUT/check.log and $OUT/logs.tar.gz (raw output).
# Every step has its own timeout and the whole run a budget, so one failure costs only its step.
#
#   bash tools/gpu/check.sh                       # on the GPU machine (device cuda, python3)
#   bash tools/gpu/check.sh --device cuda-emu --python /usr/bin/python3   # rehearsal here, small sizes
set -u
cd "$(dirname "$0")/../.."
DEVICE=cuda PY=python3 BUDGET=450
while (( $# )); do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$PWD/.gpu/out}
mkdir -p "$OUT"
LOGS=$(mktemp -d /tmp/mvq-gpu-logs.XXXXXX)
MVQ=${MVQ:-$PWD/.gpu/mvq}
START=$(date +%s)
export MVQ_CACHE=/tmp/mvq-kernel-cache DOTNET_CLI_TELEMETRY_OPTOUT=1 PYTHONUNBUFFERED=1 CI=1
REF=tools/reference/mvq_reference.py

if [[ $DEVICE == cuda ]]; then
  TORCH_DEV=cuda BATCH=256 STEPS=20 WARMUP=3 KREP=20 KBATCH="" TSTEPS=20 TWARM=3 J=2048
  # Throughput matrix (issue 15): batch 64 and a large batch per preset (the large one fills an H100/H200).
  TP_SMALL=64 TP_LARGE_VQ=4096 TP_LARGE_MVQ=1024 TP_STEPS=30 TP_WARMUP=10 TP_LIMIT=45
else
  # Rehearsal on the emulator: the same steps at toy sizes; the reference runs on the CPU.
  export MVQ_EMU_LIB=${MVQ_EMU_LIB:-$PWD/build/native/libmvq_emu.so}
  TORCH_DEV=cpu BATCH=4 STEPS=2 WARMUP=1 KREP=2 KBATCH="--batch 2" TSTEPS=1 TWARM=1 J=256
  TP_SMALL=2 TP_LARGE_VQ=8 TP_LARGE_MVQ=4 TP_STEPS=1 TP_WARMUP=3 TP_LIMIT=120
  export MVQ_EMU_CHECKS=${MVQ_EMU_CHECKS:-none}
fi
# ONLY=throughput runs the throughput matrix alone (with nvidia-smi and doctor), e.g. to fit a short device lease.
ONLY=${ONLY:-all}

# NVTX: libnvToolsExt ships with PyTorch's CUDA wheels; put its folder on the search path.
NVTX=$(timeout 20 find /opt /usr/local /usr/lib -name 'libnvToolsExt.so*' 2>/dev/null | head -1)
[[ -n $NVTX ]] && export LD_LIBRARY_PATH="$(dirname "$NVTX")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

printf 'name\trc\tseconds\tcommand\n' > "$LOGS/steps.tsv"
# step NAME TIMEOUT CMD...: stdout to NAME.out, stderr to NAME.err; capped by what is left of the budget.
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  if (( left < 10 )); then
    printf '%s\t%s\t0\t%s\n' "$name" skipped "$*" >> "$LOGS/steps.tsv"; echo "[skip] $name (budget spent)"; return
  fi
  (( limit > left )) && limit=$left
  local t0=$(date +%s%N) rc
  timeout --kill-after=5 "$limit" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err"; rc=$?
  local dt=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$dt" "$*" >> "$LOGS/steps.tsv"
  printf '[%s] %-28s %6s s%s\n' "$([[ $rc == 0 ]] && echo ok || echo "rc $rc")" "$name" "$dt" "$([[ $rc == 124 ]] && echo ' (timed out)')"
}

step nvidia_smi 15 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv
step doctor 60 "$MVQ" doctor --json

# Throughput matrix (issue 15, docs/perf/gpu-throughput.md): ours with CUDA graphs on/off and TF32 on/off,
# PyTorch eager and torch.compile(mode="reduce-overhead") with TF32 on/off, at batch 64 and a large batch,
# same preset, same statistic (median of synchronised steps after warm-up). Ours also reports launches,
# syncs, copies and allocations per step. Names: tp_<side>_<preset>_b<batch>_<variant>; report.py pairs them.
throughput() {
  local p large
  for p in fmnist-vq fmnist-mvq-global; do
    large=$([[ $p == fmnist-vq ]] && echo $TP_LARGE_VQ || echo $TP_LARGE_MVQ)
    for b in $TP_SMALL $large; do
      for g in on off; do
        step "tp_ours_${p}_b${b}_graphs${g}_tf32off" $TP_LIMIT "$MVQ" bench train --device "$DEVICE" --preset $p --batch $b \
          --steps $TP_STEPS --warmup $TP_WARMUP --device-data on --cuda-graphs $g --tf32 off --json
      done
      step "tp_ours_${p}_b${b}_graphson_tf32on" $TP_LIMIT "$MVQ" bench train --device "$DEVICE" --preset $p --batch $b \
        --steps $TP_STEPS --warmup $TP_WARMUP --device-data on --cuda-graphs on --tf32 on --json
      for t in off on; do
        local tf=$([[ $t == on ]] && echo --tf32)
        step "tp_torch_${p}_b${b}_eager_tf32${t}" $TP_LIMIT "$PY" $REF bench --device $TORCH_DEV --preset $p --batch $b \
          --steps $TP_STEPS --warmup $TP_WARMUP --threads 16 $tf --json
        step "tp_torch_${p}_b${b}_compilero_tf32${t}" $(( TP_LIMIT * 2 )) "$PY" $REF bench --device $TORCH_DEV --compile \
          --compile-mode reduce-overhead --preset $p --batch $b --steps $TP_STEPS --warmup $TP_WARMUP --threads 16 $tf --json
      done
    done
  done
}
if [[ $ONLY == throughput ]]; then
  throughput
  "$PY" tools/gpu/report.py --logs "$LOGS" --device "$DEVICE" --nvtx "${NVTX:-}" --seconds $(( $(date +%s) - START )) --out "$OUT/gpu-report.json" | tee "$OUT/check.log"
  tar -czf "$OUT/logs.tar.gz" -C "$LOGS" .
  echo "total $(( $(date +%s) - START )) s; report: $OUT/gpu-report.json"
  exit 0
fi

step selftest 120 "$MVQ" selftest --device "$DEVICE" --json
# NVIDIA's compute-sanitizer (memcheck, racecheck) over the same conformance suite: what the
# emulator's checkers (native/emu/emu_check.cpp) claim to catch, checked on the real card. Its
# findings go to their own log (report.py counts them); a missing tool is recorded, not fatal.
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer /opt/nvidia/*/compute-sanitizer* 2>/dev/null | head -1)
if [[ $DEVICE == cuda && -n $SAN ]]; then
  for tool in memcheck racecheck; do
    step sanitizer_$tool 100 "$SAN" --tool $tool --error-exitcode 99 --print-limit 50 --log-file "$LOGS/sanitizer_$tool.log" \
      "$MVQ" selftest --device cuda --json
  done
else
  printf 'sanitizer_memcheck\tskipped\t0\tcompute-sanitizer %s\n' "$([[ $DEVICE == cuda ]] && echo 'not found' || echo "not run on $DEVICE")" >> "$LOGS/steps.tsv"
fi
step bench_kernels 90 "$MVQ" bench kernels --device "$DEVICE" --json --repeats $KREP $KBATCH
for p in fmnist-vq fmnist-mvq-global; do
  step "train_$p" 60 "$MVQ" bench train --device "$DEVICE" --preset $p --batch $BATCH --steps $STEPS --warmup $WARMUP --json
done
step train_fmnist-mvq-global_j$J 60 "$MVQ" bench train --device "$DEVICE" --preset fmnist-mvq-global --hypotheses $J --batch $BATCH --steps $STEPS --warmup $WARMUP --json
# The prior's sampling step (issue 15, docs/perf/gpu-throughput.md): one decoding step captured as a CUDA graph
# and replayed per position, against the same device step run eagerly; reports ms and launches per step and token.
for p in fmnist-vq fmnist-mvq-global; do
  for g in on off; do
    step "sample_${p}_graphs${g}" 60 "$MVQ" bench sample --device "$DEVICE" --presets $p --count 256 --batch 64 --runs 5 \
      --warmup-seconds 2 --cuda-graphs $g --json
  done
done
step torch_ceilings 40 "$PY" tools/gpu/ceilings.py --device $TORCH_DEV
for p in fmnist-vq fmnist-mvq-global; do
  step "torch_eager_$p" 60 "$PY" $REF bench --device $TORCH_DEV --preset $p --batch $BATCH --steps $TSTEPS --warmup $TWARM --threads 16 --json
done
step torch_eager_bottleneck_j$J 60 "$PY" $REF bench --device $TORCH_DEV --preset fmnist-mvq-global --bottleneck --hypotheses $J --batch $BATCH --steps $TSTEPS --warmup $TWARM --threads 16 --json
for p in fmnist-vq fmnist-mvq-global; do
  step "torch_compile_$p" 120 "$PY" $REF bench --device $TORCH_DEV --compile --preset $p --batch $BATCH --steps $TSTEPS --warmup $TWARM --threads 16 --json
done
step torch_compile_bottleneck_j$J 120 "$PY" $REF bench --device $TORCH_DEV --compile --preset fmnist-mvq-global --bottleneck --hypotheses $J --batch $BATCH --steps $TSTEPS --warmup $TWARM --threads 16 --json
throughput

"$PY" tools/gpu/report.py --logs "$LOGS" --device "$DEVICE" --nvtx "${NVTX:-}" --seconds $(( $(date +%s) - START )) --out "$OUT/gpu-report.json" | tee "$OUT/check.log"
tar -czf "$OUT/logs.tar.gz" -C "$LOGS" .
echo "total $(( $(date +%s) - START )) s; report: $OUT/gpu-report.json"
