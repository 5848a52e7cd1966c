using MvqNative.Backends;
using MvqNative.Backends.Cuda;
using MvqNative.Bindings;
using MvqNative.Ops;
using MvqNative.Tensors;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Cuda;

/// <summary>The CUDA backend on cuda-emu (or cuda): error paths, guard regions, launches, no per-launch allocation.</summary>
public sealed class CudaDeviceTests(ITestOutputHelper output)
{
    private static readonly KernelRef Oob = new("testing.cu", "testing_oob_write");
    private static readonly KernelRef Iota = new("testing.cu", "testing_iota");

    /// <summary>The CUDA devices of this run; "none" when there is none (and none was required).</summary>
    public static IEnumerable<object[]> Devices()
    {
        var list = TestDevices.Cuda.ToList();
        if (list.Count == 0) return [["none"]];
        return list.Select(d => new object[] { d });
    }

    private CudaBackend? Open(string device) => TestDevices.OpenCuda(device, output);

    [Fact]
    public void EmulatorIsFoundUnlessExplicitlySkipped()
    {
        if (TestDevices.CudaRequested) { Assert.False(TestDevices.EmulatorRequired, "MVQ_REQUIRE_EMU=1 and MVQ_TEST_CUDA=1 cannot share one process"); return; }
        if (TestDevices.EmulatorSkipped) { output.WriteLine("MVQ_SKIP_EMU=1: no CUDA test runs"); return; }
        Assert.True(CudaLibraries.FindEmulator() is not null,
            "libmvq_emu.so was not found (MVQ_EMU_LIB, beside the assembly, or build/native/): build it with bash tools/scripts/build-native.sh, or set MVQ_SKIP_EMU=1 to skip the CUDA tests");
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void DeviceInfoIsSane(string device)
    {
        if (Open(device) is not { } b) return;
        output.WriteLine(b.ToString());
        Assert.Equal(device, b.Name);
        Assert.True(b.Info.Major >= 3 && b.Info.SmCount > 0 && b.Info.TotalMemory > 0, b.ToString());
        Assert.Equal(device == "cuda-emu", MvqEmu.IsEmulator());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void FreeingAnInvalidPointerThrowsCudaException(string device)
    {
        if (Open(device) is not { } b) return;
        b.MakeCurrent();
        var e = Assert.Throws<CudaException>(() => Check.Cu(CudaDriver.cuMemFree_v2(0xdead0000UL)));
        output.WriteLine(e.Message);
        Assert.NotEqual(CUresult.Success, e.Code);
        Assert.Contains("cuMemFree_v2", e.Message);
        Assert.StartsWith("CUDA_ERROR_", e.CodeName);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void CopyFromAnInvalidPointerThrowsCudaException(string device)
    {
        if (Open(device) is not { } b) return;
        b.MakeCurrent();
        var e = Assert.Throws<CudaException>(() => CopyFromBadPointer());
        output.WriteLine(e.Message);
        Assert.Contains("cuMemcpyDtoH_v2", e.Call);
    }

    private static unsafe void CopyFromBadPointer()
    {
        var host = new float[4];
        fixed (float* p = host) Check.Cu(CudaDriver.cuMemcpyDtoH_v2(p, 0x10UL, 16));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void LaunchWritesAndBuffersAreFreed(string device)
    {
        if (Open(device) is null) return;
        // A private backend: its live-buffer counter sees only this test, not classes running in parallel.
        using var b = CudaBackend.Create(emulator: device == "cuda-emu");
        long live = b.LiveBuffers;
        using (var y = b.Empty(1000))
        {
            b.Kernel(Iota).Launch(b.Blocks(1000), CudaBackend.Threads, 0, CudaBackend.Ptr(y), 1000);
            var got = y.ToArray();
            for (int i = 0; i < got.Length; i++) Assert.Equal(i, got[i]);
        }
        Assert.Equal(live, b.LiveBuffers);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void OutOfBoundsWriteIsCaughtByTheGuardWithTheKernelName(string device)
    {
        if (Open(device) is not { } b) return;
        if (!b.IsEmulator) { output.WriteLine("guard regions exist only on the emulator"); return; }
        using var y = b.Empty(17);
        var e = Assert.ThrowsAny<CudaException>(() =>
        {
            b.Kernel(Oob).Launch(1, 32, 0, CudaBackend.Ptr(y), 17);
            b.Synchronize();
        });
        output.WriteLine(e.Message);
        Assert.Contains("testing_oob_write", e.Message);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void LaunchThroughTheRegistryAllocatesNothing(string device)
    {
        if (Open(device) is not { } b) return;
        using var x = b.FromArray(new float[] { 1, 2, 3, 4, 5 }, 5);
        using var y = b.Empty(5);
        Tensor[] ins = [x, x];
        Tensor[] outs = [y];
        var attrs = new AxpbyAttrs(2f, -0.5f);
        ElementwiseOps.Axpby.Run(b, ins, outs, attrs); // first call resolves and loads the module
        b.Synchronize();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) ElementwiseOps.Axpby.Run(b, ins, outs, attrs);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        b.Synchronize();
        Assert.Equal(0, allocated);
        Assert.Equal([1.5f, 3f, 4.5f, 6f, 7.5f], y.ToArray());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public unsafe void SgemmOnTheBackendStreamMatchesTheHostProduct(string device)
    {
        if (Open(device) is not { } b) return;
        // Row-major C[2,4] = A[2,3] B[3,4]; cuBLAS is column-major, so compute C^T = B^T A^T.
        float[] a = [1, 2, 3, -4, 5, 0.5f];
        float[] bm = [1, 0, 2, -1, 0.25f, 3, 1, 2, -2, 1, 0, 4];
        using var ta = b.FromArray(a, 2, 3);
        using var tb = b.FromArray(bm, 3, 4);
        using var tc = b.Zeros(2, 4);
        float alpha = 1, beta = 0;
        Check.Cublas(Cublas.cublasSgemm_v2(b.Blas, CublasOperation.N, CublasOperation.N, 4, 2, 3,
            &alpha, CudaBackend.Ptr(tb), 4, CudaBackend.Ptr(ta), 3, &beta, CudaBackend.Ptr(tc), 4));
        var got = tc.ToArray();
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++)
            {
                double want = 0;
                for (int k = 0; k < 3; k++) want += a[i * 3 + k] * bm[k * 4 + j];
                Assert.Equal(want, got[i * 4 + j], 5);
            }
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void EventsTimeTheStream(string device)
    {
        if (Open(device) is not { } b) return;
        var ctx = PrimaryContextHandle.Retain(b.Info.Ordinal);
        try
        {
            using var start = EventHandle.Create(ctx);
            using var end = EventHandle.Create(ctx);
            using var stream = StreamHandle.Create(ctx);
            start.Record(stream);
            end.Record(stream);
            end.Synchronize();
            Assert.True(end.ElapsedSince(start) >= 0);
        }
        finally { ctx.Dispose(); }
    }

    [Fact]
    public void OpeningAnUnknownDeviceNamesTheChoices()
    {
        var e = Assert.Throws<MvqUsageException>(() => MvqNative.Backends.Devices.Open("tpu"));
        Assert.Contains("cuda-emu", e.Message);
    }

    [Fact]
    public void ProbeReportsNvrtcCacheAndEmulator()
    {
        var items = MvqNative.Backends.Devices.Probe();
        foreach (var i in items) output.WriteLine($"{i.Item,-16} {(i.Ok ? "ok " : "-- ")} {i.Value}");
        Assert.Contains(items, i => i.Item == "nvrtc" && i.Ok);
        Assert.Contains(items, i => i.Item == "kernel cache");
        Assert.Contains(items, i => i.Item == "device cuda-emu" && i.Ok == (CudaLibraries.FindEmulator() is not null));
    }
}
