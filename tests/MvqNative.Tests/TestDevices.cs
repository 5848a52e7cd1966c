using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Backends.Cuda;
using MvqNative.Bindings;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests;

/// <summary>
/// Backends the test run covers: cpu always; cuda-emu always, so a missing emulator fails the
/// CUDA tests with a message saying how to build it (`dotnet test` also stops before running
/// when it is missing: tests/MvqNative.Tests/MvqNative.Tests.csproj, target RequireEmulator), unless the named
/// opt-out MVQ_SKIP_EMU=1 is set (the build prints a warning then); cuda instead of cuda-emu
/// when MVQ_TEST_CUDA=1 (a process binds either the real driver or the emulator).
/// </summary>
internal static class TestDevices
{
    private static readonly Lazy<Backend> Emu = new(() => CudaBackend.Create(emulator: true));
    private static readonly Lazy<Backend> Real = new(() => CudaBackend.Create(emulator: false));

    /// <summary>MVQ_REQUIRE_EMU=1 (set by CI): the emulator must be present, whatever MVQ_SKIP_EMU says.</summary>
    public static bool EmulatorRequired => Environment.GetEnvironmentVariable("MVQ_REQUIRE_EMU") == "1";
    /// <summary>MVQ_SKIP_EMU=1: the explicit opt-out that runs no CUDA test (cpu only).</summary>
    public static bool EmulatorSkipped => !EmulatorRequired && Environment.GetEnvironmentVariable("MVQ_SKIP_EMU") == "1";
    /// <summary>MVQ_TEST_CUDA=1: test the real GPU.</summary>
    public static bool CudaRequested => Environment.GetEnvironmentVariable("MVQ_TEST_CUDA") == "1";

    public static IEnumerable<string> All
    {
        get
        {
            yield return "cpu";
            foreach (var d in Cuda) yield return d;
        }
    }

    /// <summary>The CUDA-kind devices covered here (cuda or cuda-emu), possibly none.</summary>
    public static IEnumerable<string> Cuda
    {
        get
        {
            if (CudaRequested) yield return "cuda";
            else if (!EmulatorSkipped) yield return "cuda-emu";
        }
    }

    /// <summary>
    /// The CUDA backend of a CUDA test case, or null for the "none" case (allowed only with MVQ_SKIP_EMU=1). With
    /// <paramref name="own"/> a backend of the test's own (a capture records everything queued on the stream, so
    /// graph and pinned-copy tests may not share one); otherwise the shared one of <see cref="Get"/>.
    /// </summary>
    public static CudaBackend? OpenCuda(string device, ITestOutputHelper output, bool own = false)
    {
        if (device == "none")
        {
            Assert.True(EmulatorSkipped, "no CUDA device here: only with the opt-out MVQ_SKIP_EMU=1");
            output.WriteLine("no CUDA device or emulator here: nothing to run (CI sets MVQ_REQUIRE_EMU=1)");
            return null;
        }
        var shared = (CudaBackend)Get(device);
        return own ? CudaBackend.Create(emulator: device == "cuda-emu") : shared;
    }

    public static Backend Get(string name) => name switch
    {
        "cpu" => CpuBackend.Instance,
        "cuda-emu" => Emu.Value,
        "cuda" => Real.Value,
        _ => throw new ArgumentException($"unknown test device {name}"),
    };
}
