using MvqNative.Backends.Cuda;
using MvqNative.Bindings;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Cuda;

/// <summary>NVRTC compiles every embedded kernel; errors carry the log; the disk cache hits and misses correctly.</summary>
public sealed class KernelCompilerTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mvq-kcache-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Theory]
    [InlineData("sm_80")]
    [InlineData("sm_90")]
    public void EveryEmbeddedKernelCompiles(string arch)
    {
        var cache = new KernelCache(_folder);
        var results = KernelCompiler.CompileAll(arch, cache);
        output.WriteLine($"NVRTC {KernelCompiler.NvrtcVersion}: compiled {results.Count} kernel files for {arch}: {string.Join(", ", results.Select(r => $"{r.File} ({r.Image.Length} B {r.Target})"))}");
        Assert.Equal(KernelCompiler.KernelFiles.Count, results.Count);
        Assert.Contains("vq.cu", KernelCompiler.KernelFiles);
        Assert.True(results.Count >= 5, $"expected at least 5 kernel files, found {results.Count}");
        foreach (var r in results)
        {
            Assert.False(r.FromCache);
            Assert.True(r.Image.Length > 100, $"{r.File}: image of {r.Image.Length} bytes");
            Assert.Equal(KernelCompiler.TargetFor(arch).Cubin, r.IsCubin);
        }
        Assert.Equal(results.Count, cache.Misses);
    }

    [Fact]
    public void SyntaxErrorThrowsWithTheNvrtcLog()
    {
        const string bad = "#include \"common.cuh\"\nextern \"C\" __global__ void broken_forward(float* y) { y[0] = undeclared_name + ; }\n";
        var e = Assert.Throws<NvrtcException>(() => KernelCompiler.CompileSource("broken.cu", bad, "sm_80", new KernelCache(_folder)));
        output.WriteLine(e.Message);
        Assert.Equal(NvrtcResult.Compilation, e.Code);
        Assert.Contains("undeclared_name", e.Log);
        Assert.Contains(e.Log.Trim(), e.Message);
        Assert.Contains("broken.cu", e.Message);
        Assert.Contains("-lineinfo", e.Options);
        Assert.Equal(KernelCompiler.TargetFor("sm_80").Target, e.Arch);
    }

    [Fact]
    public void CacheHitsOnSecondCompileAndMissesWhenOptionsChange()
    {
        var cache = new KernelCache(_folder);
        var first = KernelCompiler.Compile("elementwise.cu", "sm_80", cache);
        Assert.False(first.FromCache);
        Assert.Equal((0L, 1L), (cache.Hits, cache.Misses));

        var second = KernelCompiler.Compile("elementwise.cu", "sm_80", cache);
        Assert.True(second.FromCache);
        Assert.Equal(first.Image, second.Image);
        Assert.Equal((1L, 1L), (cache.Hits, cache.Misses));

        var other = KernelCompiler.Compile("elementwise.cu", "sm_80", cache, ["-DMVQ_CACHE_TEST=1"]);
        Assert.False(other.FromCache);
        Assert.NotEqual(first.Key, other.Key);
        Assert.Equal((1L, 2L), (cache.Hits, cache.Misses));

        var otherArch = KernelCompiler.Compile("elementwise.cu", "sm_90", cache);
        Assert.False(otherArch.FromCache);
        Assert.Equal(2 + 1, Directory.GetFiles(_folder).Length);
    }

    [Fact]
    public void UnknownArchFallsBackToPtxOfTheNewestArchBelow()
    {
        var archs = KernelCompiler.SupportedArchs;
        Assert.NotEmpty(archs);
        int newest = archs.Max();
        var (target, cubin) = KernelCompiler.TargetFor($"sm_{newest + 1}");
        Assert.False(cubin);
        Assert.Equal($"compute_{newest}", target);
        var r = KernelCompiler.Compile("elementwise.cu", $"sm_{newest + 1}", new KernelCache(_folder));
        var ptx = System.Text.Encoding.ASCII.GetString(r.Image);
        Assert.Equal(0, r.Image[^1]); // cuModuleLoadData needs NUL-terminated PTX
        Assert.Contains(".entry add_forward", ptx);
    }

    [Fact]
    public void MalformedArchIsRejected() => Assert.Throws<ArgumentException>(() => KernelCompiler.TargetFor("gpu80"));
}
