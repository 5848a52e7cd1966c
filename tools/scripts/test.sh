#!/usr/bin/env bash
# README command 2: every test. Native tests (CTest: the emulator's, and the C ABI example against the CLI), then the C# suite on cpu and
# cuda-emu (NVRTC compiles every kernel; every kernel runs under the emulator's sanitizer), then
# the quick kernel mutation test. Ends with one "N passed, M failed" line.
set -uo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/install-deps.sh || exit 1
bash tools/scripts/build-native.sh || exit 1
# The C# projects once, before CTest: its C ABI test compares the C example with the mvq CLI.
dotnet build MvqNative.sln -c Release -v quiet -nologo || exit 1
mkdir -p build
# Every process that loads the emulator appends its launch counts here at exit (see below).
export MVQ_EMU_STATS="$PWD/build/emu-stats.txt"
rm -f "$MVQ_EMU_STATS"
ctest --test-dir build --output-on-failure 2>&1 | tee build/ctest.log
ctest_rc=${PIPESTATUS[0]}
export MVQ_REQUIRE_EMU=1   # the emulator must be found: a missing one fails, never skips
export MVQ_EMU_LIB="$PWD/build/native/libmvq_emu.so"
dotnet test MvqNative.sln -c Release --no-build --logger "console;verbosity=normal" "$@" 2>&1 | tee build/dotnet-test.log
dotnet_rc=${PIPESTATUS[0]}
# Totals from the C# runner's summary ("Total tests: N" then "Passed: P" / "Failed: F") and CTest's.
p=$(grep -E "^ +Passed: +[0-9]+$" build/dotnet-test.log | awk '{s+=$2} END {print s+0}')
f=$(grep -E "^ +Failed: +[0-9]+$" build/dotnet-test.log | awk '{s+=$2} END {print s+0}')
read -r cp cf < <(grep -E "tests passed, [0-9]+ tests failed out of" build/ctest.log | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1 \2/' | awk '{print $2-$1, $1}')
p=$((p + ${cp:-0})); f=$((f + ${cf:-0}))
# What ran on the CUDA side: kernels compiled by the real NVRTC, and test cases run on cuda-emu.
dotnet tools/Mvq.Cli/bin/Release/net10.0/mvq.dll doctor --compile sm_80 sm_90 || dotnet_rc=1
emu_cases=$(grep -cE '^\s+Passed .*(cuda-emu|MvqNative\.Tests\.Cuda\.)' build/dotnet-test.log || true)
echo "CUDA test cases passed on cuda-emu: $emu_cases"
# Kernel launches on cuda-emu, and how many ran under the sanitizer's checkers (MVQ_EMU_CHECKS).
read -r launches checked < <(awk '{l+=$2; c+=$4} END {print l+0, c+0}' "$MVQ_EMU_STATS" 2>/dev/null || echo "0 0")
echo "Kernel launches on cuda-emu: ${launches:-0}, under the checkers (${MVQ_EMU_CHECKS:-memcheck,initcheck,racecheck,synccheck,shuffle}): ${checked:-0}"
# The quick subset of the kernel mutation test: each planted kernel bug must be caught on
# cuda-emu (python3 tools/mutation/run.py runs every mutant).
python3 tools/mutation/run.py --quick 2>&1 | tee build/mutation.log
mutation_rc=${PIPESTATUS[0]}
echo "$p passed, $f failed"
if [ "$ctest_rc" != 0 ] || [ "$dotnet_rc" != 0 ] || [ "$mutation_rc" != 0 ] || [ "$p" = 0 ] || [ "$f" != 0 ]; then
  echo "test run failed (ctest exit $ctest_rc, dotnet test exit $dotnet_rc, mutation test exit $mutation_rc)" >&2
  exit 1
fi
