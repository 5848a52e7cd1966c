#!/usr/bin/env bash
# CTest c_abi_example_matches_cli: trains a small checkpoint with the mvq CLI, reconstructs the first 100
# FashionMNIST test images with `mvq reconstruct --raw` and with the C example (through libmvqnative.so), and
# requires the two float32 files to be equal byte for byte; then runs the C ABI's contract checks on it, and the
# README's C example as written.
# First, the functions libmvqnative.so exports must be exactly those mvq.h declares.
#   check_example.sh EXAMPLE ABI_CHECKS REPO WORKDIR LIBMVQNATIVE
set -euo pipefail
example=$1 checks=$2 repo=$3 work=$4 lib=$5
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}' | grep '^mvq_' | sort)
declared=$(grep -E '^[A-Za-z].*\bmvq_[a-z_]+\(' "$repo/native/include/mvq.h" | grep -oE 'mvq_[a-z_]+\(' | tr -d '(' | sort)
if [ "$exported" != "$declared" ]; then
  echo "error: $lib exports [$(echo $exported)] but mvq.h declares [$(echo $declared)]" >&2; exit 1
fi
echo "exports = mvq.h: $(echo "$exported" | wc -l) functions"
mvq=(dotnet "$repo/tools/Mvq.Cli/bin/Release/net10.0/mvq.dll")
[ -f "${mvq[1]}" ] || { echo "error: ${mvq[1]}: not built (dotnet build tools/Mvq.Cli -c Release)" >&2; exit 1; }
data="${MVQ_DATA:-/usr/share/datasets/fashion-mnist}"
[ -d "$data/fashion-mnist" ] && data="$data/fashion-mnist"
idx="$data/t10k-images-idx3-ubyte.gz"
[ -f "$idx" ] || { echo "error: $idx: FashionMNIST is missing (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work"
export MVQ_THREADS="${MVQ_THREADS:-2}"
"${mvq[@]}" train --preset fmnist-vq --steps 30 --batch 32 --limit 1024 --out "$work/run" --json > "$work/train.json"
model="$work/run/model.safetensors"
"${mvq[@]}" reconstruct --model "$model" --input fashion-mnist:test --limit 100 --output "$work/cli" --raw "$work/cli.f32"
"$example" "$model" "$idx" 100 "$work/c"
cmp "$work/cli.f32" "$work/c/reconstructions.f32"
bytes=$(stat -c %s "$work/c/reconstructions.f32")
[ "$bytes" = $((100 * 784 * 4)) ] || { echo "error: $work/c/reconstructions.f32 has $bytes bytes, expected $((100 * 784 * 4))" >&2; exit 1; }
echo "C example == mvq reconstruct: 100 images, $bytes bytes of float32, identical"
# A tiny prior for the sampling checks (4 steps; it is only sampled from, not judged).
"${mvq[@]}" prior train --model "$model" --limit 256 --steps 4 --batch 16 --layers 1 --heads 2 --width 16 --out "$work/prior" --json > "$work/prior.json"
"$checks" "$model" "$work/prior/prior.safetensors"
# The README's C example, as written (README.md, "Using it from a program": its first c block), compiled against
# mvq.h and libmvqnative.so and run on this checkpoint (saved as model.safetensors, the name the example opens).
mkdir -p "$work/readme"
{
  printf '#include <stdio.h>\n#include <stdlib.h>\n#include "mvq.h"\n\nint main(void)\n{\n'
  printf '    const long n = 8;\n    float *images = malloc(n * 784 * sizeof(float)), *out = malloc(n * 784 * sizeof(float));\n'
  printf '    int *codes = malloc(n * 49 * sizeof(int));\n'
  printf '    for (long i = 0; i < n * 784; i++) images[i] = (float)(i %% 256) / 255.0f;\n'
  printf '    for (long i = 0; i < n * 49; i++) codes[i] = -1;\n'
  printf '    for (long i = 0; i < n * 784; i++) out[i] = -1.0f;\n'
  printf '    /* README.md, verbatim: */\n'
  awk '/^```c$/ {f = 1; next} f && /^```$/ {exit} f {print "    " $0}' "$repo/README.md"
  printf '    /* The example wrote every code and every pixel. */\n'
  printf '    for (long i = 0; i < n * 49; i++) if (codes[i] < 0) { fprintf(stderr, "code %%ld not written\\n", i); return 2; }\n'
  printf '    for (long i = 0; i < n * 784; i++) if (out[i] == -1.0f) { fprintf(stderr, "pixel %%ld not written\\n", i); return 2; }\n'
  printf '    free(images); free(out); free(codes);\n    printf("README C example: %%ld images encoded and reconstructed\\n", n);\n    return 0;\n}\n'
} > "$work/readme/readme_example.c"
grep -q 'mvq_load(' "$work/readme/readme_example.c" || { echo "error: README.md: no C example found (a \`\`\`c block)" >&2; exit 1; }
cc -std=c99 -Wall -Werror -I "$repo/native/include" -o "$work/readme/readme_example" "$work/readme/readme_example.c" \
   "$lib" -Wl,-rpath,"$(dirname "$lib")"
ln -sf "$model" "$work/readme/model.safetensors"
(cd "$work/readme" && ./readme_example)
