#!/usr/bin/env bash
# Installs what MvqNative needs from Debian on a fresh machine (idempotent; needs root or sudo):
# FashionMNIST, OpenBLAS (the GEMM comparison), NVRTC 11.8 from non-free (compiles kernels
# without a GPU), CMake and g++ (the CUDA host emulator; also the linker NativeAOT uses for
# libmvqnative.so), zlib headers (the C example reads gzip IDX files). The .NET 10 SDK must be present.
set -euo pipefail
pkgs=(dataset-fashion-mnist libopenblas0-pthread libnvrtc11.2 cmake g++ make python3 zlib1g-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  # libnvrtc11.2 lives in Debian's non-free component.
  if [ -f /etc/apt/sources.list.d/debian.sources ] && ! grep -q "non-free" /etc/apt/sources.list.d/debian.sources; then
    $SUDO sed -i 's/^Components: main$/Components: main contrib non-free/' /etc/apt/sources.list.d/debian.sources
  elif [ -f /etc/apt/sources.list ] && ! grep -q "non-free" /etc/apt/sources.list; then
    $SUDO sed -i 's/ main$/ main contrib non-free/' /etc/apt/sources.list
  fi
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "error: the .NET 10 SDK (dotnet) is required: https://dot.net" >&2; exit 1; }
