// Compiles the embedded kernel sources (native/kernels/*.cu) with NVRTC, through the disk cache.
using System.Collections.Concurrent;
using System.Reflection;
using MvqNative.Bindings;

namespace MvqNative.Backends.Cuda;

/// <summary>A compiled kernel file: a cubin for Arch, or PTX for a compute_XY target.</summary>
/// <param name="File">Source file name, e.g. vq.cu.</param>
/// <param name="Arch">Requested device arch, e.g. sm_80.</param>
/// <param name="Target">What was compiled for: sm_XY (cubin) or compute_XY (PTX).</param>
/// <param name="Image">The module image for cuModuleLoadData (PTX is NUL-terminated).</param>
/// <param name="IsCubin">True for a cubin, false for PTX.</param>
/// <param name="FromCache">Whether NVRTC was skipped.</param>
/// <param name="Key">The cache key (hex SHA-256).</param>
internal sealed record CompiledKernel(string File, string Arch, string Target, byte[] Image, bool IsCubin, bool FromCache, string Key);

/// <summary>
/// NVRTC front end for the kernel sources embedded in this assembly (resources kernels/NAME).
/// Options: -lineinfo --std=c++17 -arch=sm_XY (cubin) when NVRTC knows the arch, else
/// -arch=compute_XY (PTX, JIT-compiled by the driver) for the newest arch NVRTC knows not above it.
/// </summary>
internal static class KernelCompiler
{
    private const string Prefix = "kernels/";
    private static readonly ConcurrentDictionary<string, string> Sources = new();
    private static KernelCache? _cache;
    private static (int, int)? _nvrtcVersion;
    private static int[]? _archs;

    /// <summary>The process-wide cache ($MVQ_CACHE or ~/.cache/mvqnative/kernels).</summary>
    public static KernelCache Cache => _cache ??= new KernelCache(KernelCache.DefaultFolder());

    /// <summary>Options every kernel is compiled with (the arch option is added per target).</summary>
    public static IReadOnlyList<string> BaseOptions { get; } = ["-lineinfo", "--std=c++17"];

    private static Assembly Asm => typeof(KernelCompiler).Assembly;

    /// <summary>Embedded kernel files (*.cu), sorted.</summary>
    public static IReadOnlyList<string> KernelFiles =>
        Asm.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".cu", StringComparison.Ordinal))
           .Select(n => n[Prefix.Length..]).Order(StringComparer.Ordinal).ToList();

    /// <summary>Embedded headers (*.cuh) as (include name, text), passed to every program.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Headers =>
        Asm.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".cuh", StringComparison.Ordinal))
           .Order(StringComparer.Ordinal).Select(n => KeyValuePair.Create(n[Prefix.Length..], Source(n[Prefix.Length..]))).ToList();

    /// <summary>Text of an embedded kernel file or header.</summary>
    /// <exception cref="FileNotFoundException">No such embedded file.</exception>
    public static string Source(string file) => Sources.GetOrAdd(file, f =>
    {
        using var s = Asm.GetManifestResourceStream(Prefix + f) ?? throw new FileNotFoundException($"no embedded kernel file {f} (have: {string.Join(", ", KernelFiles)})", f);
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    });

    /// <summary>NVRTC's version, "major.minor".</summary>
    public static string NvrtcVersion
    {
        get
        {
            _nvrtcVersion ??= NvrtcProgram.Version();
            return $"{_nvrtcVersion.Value.Item1}.{_nvrtcVersion.Value.Item2}";
        }
    }

    /// <summary>Archs NVRTC can emit cubins for (numbers like 80).</summary>
    public static IReadOnlyList<int> SupportedArchs => _archs ??= NvrtcProgram.SupportedArchs();

    /// <summary>The compile target for a device arch "sm_XY": (target, cubin?).</summary>
    public static (string Target, bool Cubin) TargetFor(string arch)
    {
        int cc = ParseArch(arch);
        var archs = SupportedArchs;
        if (archs.Contains(cc)) return ($"sm_{cc}", true);
        var below = archs.Where(a => a <= cc).DefaultIfEmpty(cc).Max();
        return ($"compute_{below}", false);
    }

    /// <summary>"sm_86" -> 86.</summary>
    public static int ParseArch(string arch)
    {
        var s = arch.StartsWith("sm_", StringComparison.Ordinal) ? arch[3..] : arch.StartsWith("compute_", StringComparison.Ordinal) ? arch[8..] : arch;
        if (!int.TryParse(s.TrimEnd('a', 'f'), out var cc) || cc < 10) throw new ArgumentException($"not a CUDA arch: {arch} (expected e.g. sm_80)", nameof(arch));
        return cc;
    }

    /// <summary>Compiles an embedded kernel file for <paramref name="arch"/> (e.g. sm_80), using the cache.</summary>
    public static CompiledKernel Compile(string file, string arch, KernelCache? cache = null, IReadOnlyList<string>? extraOptions = null)
        => CompileSource(file, Source(file), arch, cache, extraOptions);

    /// <summary>Compiles any source (with the embedded headers available), using the cache.</summary>
    /// <exception cref="NvrtcException">The compile failed; the message holds the NVRTC log.</exception>
    public static CompiledKernel CompileSource(string name, string source, string arch, KernelCache? cache = null, IReadOnlyList<string>? extraOptions = null)
    {
        cache ??= Cache;
        var (target, cubin) = TargetFor(arch);
        var options = BaseOptions.Concat(extraOptions ?? []).Append($"-arch={target}").ToList();
        var headers = Headers;
        var key = KernelCache.Key(name, source, headers, options, target, NvrtcVersion, cubin);
        if (cache.TryGet(key, cubin, out var image)) return new CompiledKernel(name, arch, target, image, cubin, true, key);
        var output = NvrtcProgram.Compile(source, name, headers, options, target, cubin);
        cache.Put(key, cubin, output.Image);
        return new CompiledKernel(name, arch, target, output.Image, cubin, false, key);
    }

    /// <summary>Compiles every embedded .cu for <paramref name="arch"/>.</summary>
    public static IReadOnlyList<CompiledKernel> CompileAll(string arch, KernelCache? cache = null) =>
        KernelFiles.Select(f => Compile(f, arch, cache)).ToList();
}
