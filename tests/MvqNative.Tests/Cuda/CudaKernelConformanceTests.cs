using MvqNative.Ops;
using Xunit;

namespace MvqNative.Tests.Cuda;

/// <summary>CUDA reductions beyond the conformance table (whose cases cover sum_squares and vq_lookup).</summary>
public sealed class CudaKernelConformanceTests
{
    [Theory]
    [MemberData(nameof(CudaDeviceTests.Devices), MemberType = typeof(CudaDeviceTests))]
    public void SumSquaresIsBitwiseReproducible(string device)
    {
        if (device == "none") { Assert.False(TestDevices.EmulatorRequired || TestDevices.CudaRequested); return; }
        var b = TestDevices.Get(device);
        var rng = new Random(7);
        var data = new float[50_001];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
        using var x = b.FromArray(data, data.Length);
        var results = new float[3];
        for (int t = 0; t < results.Length; t++)
        {
            using var s = b.Zeros(1);
            ReduceOps.SumSquares.Run(b, [x], [s]);
            results[t] = s.ToArray()[0];
        }
        Assert.All(results, v => Assert.Equal(BitConverter.SingleToInt32Bits(results[0]), BitConverter.SingleToInt32Bits(v)));
    }
}
