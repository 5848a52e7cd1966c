using MvqNative.Backends;
using MvqNative.Backends.Cpu;

namespace MvqNative.Tests;

/// <summary>Backends the test run covers: cpu always; cuda-emu when the emulator is built; cuda when MVQ_TEST_CUDA=1.</summary>
public static class TestDevices
{
    public static IEnumerable<string> All
    {
        get
        {
            yield return "cpu";
        }
    }

    public static Backend Get(string name) => name switch
    {
        "cpu" => CpuBackend.Instance,
        _ => throw new ArgumentException($"unknown test device {name}"),
    };
}
