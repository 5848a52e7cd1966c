#!/usr/bin/env bash
# Builds native/ (the CUDA host emulator libmvq_emu.so and the native tests) into build/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
