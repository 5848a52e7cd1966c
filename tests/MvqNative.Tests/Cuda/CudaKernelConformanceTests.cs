using System.Diagnostics;
using MvqNative.Backends.Cuda.Kernels;
using MvqNative.Conformance;
using MvqNative.Ops;
using Xunit;
using Xunit.Abstractions;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Tests.Cuda;

/// <summary>
/// Conformance of the CUDA launchers whose OpDefs live on another branch (sum_squares,
/// vq_lookup): local OpDefs with float64 references, run through ConformanceRunner.RunCase.
/// </summary>
public sealed class CudaKernelConformanceTests(ITestOutputHelper output)
{
    /// <summary>s(1) += sum x^2.</summary>
    internal static readonly OpDef SumSquares = new("sum_squares")
    {
        Cuda = CudaReduce.SumSquares,
        Reference = r => { double s = 0; foreach (var v in r.In[0]) s += v * v; r.Out[0][0] += s; },
        Cases = [
            new OpCase("odd", [F(7, 13)], [F(1)]),
            new OpCase("size1", [F(1)], [F(1)]),
            new OpCase("multi-block", [F(100_003)], [F(1)]) { Tolerance = 1e-10 },
            new OpCase("beyond max blocks", [F(3, 1000, 1001)], [F(1)]) { Tolerance = 1e-10 },
        ],
    };

    /// <summary>idx[n] = argmin_k |z_n - c_k|^2 (smallest k on ties), q[n] = c[idx[n]].</summary>
    internal static readonly OpDef VqLookup = new("vq_lookup")
    {
        Cuda = CudaVq.Lookup,
        Reference = RefVq,
        Cases = [
            new OpCase("odd", [F(37, 5), F(19, 5)], [I(0, 1, 37), F(37, 5)]),
            new OpCase("size1", [F(1, 1), F(1, 1)], [I(0, 1, 1), F(1, 1)]),
            new OpCase("one code", [F(9, 3), F(1, 3)], [I(0, 1, 9), F(9, 3)]),
            new OpCase("tiles", [F(260, 24), F(50, 24)], [I(0, 1, 260), F(260, 24)]),
            new OpCase("d beyond chunk", [F(130, 600), F(17, 600)], [I(0, 1, 130), F(130, 600)]),
            new OpCase("ties smallest", [F(40, 6), F(33, 6)], [I(0, 1, 40), F(40, 6)]) { Prepare = MakeTies },
        ],
    };

    // Codes 4, 20 and 31 duplicate code 2, and every third z row equals code 2 exactly:
    // distance 0 to four codes, and the answer must be 2.
    private static void MakeTies(float[][] ins)
    {
        const int d = 6;
        var z = ins[0]; var c = ins[1];
        foreach (var k in new[] { 4, 20, 31 }) Array.Copy(c, 2 * d, c, k * d, d);
        for (int n = 0; n < z.Length / d; n += 3) Array.Copy(c, 2 * d, z, n * d, d);
    }

    private static void RefVq(RefCall r)
    {
        int n = r.InShapes[0][0], d = r.InShapes[0][1], k = r.InShapes[1][0];
        var z = r.In[0]; var c = r.In[1];
        for (int i = 0; i < n; i++)
        {
            int best = 0; double bestD = double.PositiveInfinity;
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int e = 0; e < d; e++) { double t = z[i * d + e] - c[j * d + e]; s += t * t; }
                if (s < bestD) { bestD = s; best = j; }
            }
            r.Out[0][i] = best;
            for (int e = 0; e < d; e++) r.Out[1][i * d + e] = c[best * d + e];
        }
    }

    public static IEnumerable<object[]> Cases() =>
        from device in CudaDeviceTests.Devices().Select(a => (string)a[0])
        from op in new[] { SumSquares, VqLookup }
        from c in op.Cases
        select new object[] { device, op.Name, c.Label };

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelMatchesFloat64Reference(string device, string opName, string caseLabel)
    {
        if (device == "none")
        {
            Assert.False(TestDevices.EmulatorRequired || TestDevices.CudaRequested);
            output.WriteLine("no CUDA device or emulator here");
            return;
        }
        var backend = TestDevices.Get(device);
        var op = opName == SumSquares.Name ? SumSquares : VqLookup;
        var c = op.Cases.Single(x => x.Label == caseLabel);
        var sw = Stopwatch.StartNew();
        var r = ConformanceRunner.RunCase(backend, op, c);
        output.WriteLine($"{device} {opName} {caseLabel}: nmse {r.WorstNmse:E2} {r.Message} ({sw.Elapsed.TotalMilliseconds:F0} ms)");
        Assert.True(r.Passed, $"{device} {opName} [{caseLabel}]: {r.Message}");
    }

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
            SumSquares.Run(b, [x], [s]);
            results[t] = s.ToArray()[0];
        }
        Assert.All(results, v => Assert.Equal(BitConverter.SingleToInt32Bits(results[0]), BitConverter.SingleToInt32Bits(v)));
    }
}
