#!/usr/bin/env bash
# The package-consumption test: packs MvqNative and MvqNative.Bindings (dotnet pack, from the Release build) into a
# folder feed, then builds and runs a fresh console project (Program.cs here) that references only the MvqNative
# package. Offline: the sources are that feed and the machine's NuGet cache, and packages are restored into a fresh
# folder, so nothing of the build tree leaks in and no stale MvqNative package is reused.
# The README's C# example is compiled into the same project, as written.
#   bash tools/package-test/run.sh [WORKDIR]   (needs `dotnet build MvqNative.sln -c Release` first)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$repo/build/package-test}"
rm -rf "$work"; mkdir -p "$work/feed" "$work/app" "$work/packages"
start=$(date +%s)
for p in bindings/MvqNative.Bindings.csproj MvqNative/MvqNative.csproj; do
  dotnet pack "$repo/$p" -c Release --no-build -o "$work/feed" -nologo -v quiet
done
version=$(ls "$work/feed" | sed -nE 's/^MvqNative\.([0-9][0-9.]*[0-9])\.nupkg$/\1/p')
[ -n "$version" ] || { echo "error: $work/feed: no MvqNative package was made" >&2; exit 1; }
packed=$(date +%s)
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
cp "$repo/tools/package-test/Program.cs" "$work/app/"
# The README's C# example (README.md, "Using it from a program": its first csharp block) must compile as written
# against the package: it goes verbatim into a method of the consumer (not run here: it trains 1200 steps).
{
  printf 'using MvqNative;\n\n// README.md, verbatim.\ninternal static class ReadmeExample\n{\n    public static void Run()\n    {\n'
  awk '/^```csharp$/ {f = 1; next} f && /^```$/ {exit} f {print "        " $0}' "$repo/README.md"
  printf '    }\n}\n'
} > "$work/app/ReadmeExample.cs"
grep -q 'MvqModel' "$work/app/ReadmeExample.cs" || { echo "error: README.md: no C# example found (a \`\`\`csharp block)" >&2; exit 1; }
sed "s/@VERSION@/$version/" "$repo/tools/package-test/Consumer.csproj.in" > "$work/app/Consumer.csproj"
cat > "$work/app/NuGet.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="mvq-feed" value="$work/feed" />
    <add key="machine-cache" value="$cache" />
  </packageSources>
</configuration>
XML
# The package must carry what a consumer needs: its README, licence, docs and the kernel sources it embeds.
python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$work/feed/MvqNative.$version.nupkg" > "$work/nupkg.txt"
for f in README.md lib/net10.0/MvqNative.dll lib/net10.0/MvqNative.xml; do
  grep -qx "$f" "$work/nupkg.txt" || { echo "error: MvqNative.$version.nupkg lacks $f" >&2; exit 1; }
done
(cd "$work/app" && NUGET_PACKAGES="$work/packages" dotnet build -c Release -nologo -v quiet && \
  NUGET_PACKAGES="$work/packages" MVQ_THREADS="${MVQ_THREADS:-2}" dotnet bin/Release/net10.0/Consumer.dll)
echo "package test: pack $((packed - start)) s, restore+build+run $(( $(date +%s) - packed )) s, packages $(cd "$work/feed" && ls | tr '\n' ' ')"
