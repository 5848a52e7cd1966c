using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Backends.Cuda;
using MvqNative.Bindings;

namespace MvqNative.Tests;

/// <summary>
/// Backends the test run covers: cpu always; cuda-emu when the emulator library is found (and
/// always when MVQ_REQUIRE_EMU=1, so a missing emulator fails tests instead of skipping them);
/// cuda when MVQ_TEST_CUDA=1. A process binds either the real driver or the emulator, so
/// MVQ_TEST_CUDA=1 runs cuda instead of cuda-emu.
/// </summary>
public static class TestDevices
{
    private static readonly Lazy<Backend> Emu = new(() => CudaBackend.Create(emulator: true));
    private static readonly Lazy<Backend> Real = new(() => CudaBackend.Create(emulator: false));

    /// <summary>MVQ_REQUIRE_EMU=1 (set by CI): the emulator must be present.</summary>
    public static bool EmulatorRequired => Environment.GetEnvironmentVariable("MVQ_REQUIRE_EMU") == "1";
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
            else if (EmulatorRequired || CudaLibraries.FindEmulator() is not null) yield return "cuda-emu";
        }
    }

    public static Backend Get(string name) => name switch
    {
        "cpu" => CpuBackend.Instance,
        "cuda-emu" => Emu.Value,
        "cuda" => Real.Value,
        _ => throw new ArgumentException($"unknown test device {name}"),
    };
}
