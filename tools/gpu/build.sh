#!/usr/bin/env bash
# Builds, here, what the lent GPU machine lacks: a self-contained linux-x64 `mvq` (no .NET there)
# in .gpu/ (ignored by git, carried by the device tool). Usage: bash tools/gpu/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .gpu/app && mkdir -p .gpu/app
# Trimming (partial: only the framework and trimmable assemblies) and a compressed single file
# keep the carried tree under the tool's 64 MiB; the library and the CLI keep all their code.
dotnet publish tools/Mvq.Cli -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true \
  -p:PublishTrimmed=true -p:TrimMode=partial -p:TreatWarningsAsErrors=false \
  -p:DebugType=none -p:GenerateDocumentationFile=false -p:SatelliteResourceLanguages=en \
  -o .gpu/app
# SkiaSharp/HarfBuzz only draw loss plots (mvq train --plot), which the GPU check does not use.
rm -f .gpu/app/*.xml .gpu/app/libSkiaSharp.so .gpu/app/libHarfBuzzSharp.so
mv .gpu/app/mvq .gpu/mvq && rm -rf .gpu/app
./.gpu/mvq --help > /dev/null
tree_kib=$(git ls-files -z | xargs -0 du -cb | tail -1 | awk '{print int($1/1024)}')
gpu_kib=$(du -sk .gpu | awk '{print $1}')
echo "built .gpu/mvq: $(du -h .gpu/mvq | cut -f1); carried .gpu ${gpu_kib} KiB + tracked tree ${tree_kib} KiB (limit 65536 KiB)"
if (( gpu_kib + tree_kib > 60000 )); then echo "too large to carry" >&2; exit 1; fi
