#!/usr/bin/env bash
# token-sweep.sh: VQ against MVQ at a few tokens per instance and codebook sizes, global heads,
# FashionMNIST, on the CPU, the same budget per cell (STEPS x BATCH, same seed). Writes one
# folder per cell under OUT, and OUT/results.md (test-split figures of `mvq train`'s held-out evaluation:
# the first 2000 images of fashion-mnist:test, eval mode; `mvq eval --data fashion-mnist:test` gives all 10000).
# Tokens per instance: L1 for VQ, L1 + L2 + 1 for MVQ (docs/model.md), so MVQ has no 2-token cell.
# Usage: tools/experiments/token-sweep.sh [OUT]   (env: STEPS, BATCH, SEED, MVQ="dotnet path/mvq.dll")
set -euo pipefail
OUT=${1:-runs/token-sweep}
STEPS=${STEPS:-150}
BATCH=${BATCH:-64}
SEED=${SEED:-1}
MVQ=${MVQ:-"dotnet tools/Mvq.Cli/bin/Release/net10.0/mvq.dll"}
mkdir -p "$OUT"

vq_cfg() { # K L1
  echo "{\"model\": {\"kind\": \"vq\", \"head\": \"global\", \"tokens\": $2, \"codes\": $1, \"codeDim\": 16}}"
}
mvq_cfg() { # K L1 L2 (fmnist-mvq-global otherwise: D1 = D2 = 16, J = J_eval = 256, F = 64)
  echo "{\"model\": {\"kind\": \"mvq\", \"head\": \"global\", \"tokens\": $2, \"codes\": $1, \"codeDim\": 16,
    \"secondary\": {\"tokens\": $3, \"codeDim\": 16, \"codes\": $1},
    \"mvq\": {\"hypotheses\": 256, \"evalHypotheses\": 256, \"fHidden\": 64, \"chunk\": 256}}}"
}

run_cell() { # NAME CONFIG_JSON
  local dir="$OUT/$1"
  mkdir -p "$dir"
  echo "$2" > "$dir/config.json"
  if ! jq -e .eval.mse "$dir/train.json" > /dev/null 2>&1; then
    $MVQ train --config "$dir/config.json" --data fashion-mnist:train --steps "$STEPS" --batch "$BATCH" --seed "$SEED" --out "$dir" --json > "$dir/train.json"
  fi
  echo "$1 mse $(jq .eval.mse "$dir/train.json")"
}

for K in 16 64; do
  for L in 2 3 5; do run_cell "vq-k$K-t$L" "$(vq_cfg $K $L)"; done
  run_cell "mvq-k$K-t3-l1_1-l2_1" "$(mvq_cfg $K 1 1)"
  run_cell "mvq-k$K-t5-l1_2-l2_2" "$(mvq_cfg $K 2 2)"
  # Equal total codebook entries (the MVQ paper's baseline rule): VQ with 2K entries at MVQ's token counts.
  for L in 3 5; do run_cell "vq-k$((2 * K))-t$L" "$(vq_cfg $((2 * K)) $L)"; done
done

{
  echo "| cell | kind | K | tokens/instance | L1 | L2 | test mse | psnr | k1 used | bank win fraction | train s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for d in "$OUT"/*/; do
    n=$(basename "$d"); jq -e .eval.mse "$d/train.json" > /dev/null 2>&1 || continue
    jq -r --arg n "$n" --slurpfile c "$d/config.json" '.seconds as $s | .eval |
      "| \($n) | \($c[0].model.kind) | \($c[0].model.codes) | \(if $c[0].model.kind == "mvq" then $c[0].model.tokens + $c[0].model.secondary.tokens + 1 else $c[0].model.tokens end) | \($c[0].model.tokens) | \($c[0].model.secondary.tokens // "-") | \(.mse * 100000 | round / 100000) | \(.psnr * 100 | round / 100) | \(.codes.k1.used_fraction * 1000 | round / 10)% | \(if .bank_win_fraction then (.bank_win_fraction * 1000 | round / 10 | tostring) + "%" else "-" end) | \($s | round) |"' "$d/train.json"
  done
} > "$OUT/results.md"
cat "$OUT/results.md"
