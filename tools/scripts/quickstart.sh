#!/usr/bin/env bash
# README command 1: set up a fresh machine and train the fmnist-vq preset on the CPU.
# Writes runs/fmnist-vq/{model.safetensors,metrics.json,reconstructions.png,loss.png}.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/scripts/install-deps.sh
dotnet build tools/Mvq.Cli -c Release -v q -nologo
dotnet tools/Mvq.Cli/bin/Release/net10.0/mvq.dll train --preset fmnist-vq --data fashion-mnist:train --out runs/fmnist-vq "$@"
dotnet tools/Mvq.Cli/bin/Release/net10.0/mvq.dll eval --model runs/fmnist-vq/model.safetensors --data fashion-mnist:test --json
