// A look at the real CUDA driver for `mvq doctor` that does not bind it for the process.
using System.Runtime.InteropServices;

namespace MvqNative.Bindings;

/// <summary>What a look at the real driver found, without binding it for the process.</summary>
public sealed record DriverProbe(string? File, int Version, int DeviceCount, string? Error);

/// <summary>Side-effect-free checks for `mvq doctor`: the driver is loaded on its own and freed again.</summary>
public static unsafe class CudaProbe
{
    /// <summary>Loads libcuda.so.1 by itself, reads its version and device count, unloads it.</summary>
    public static DriverProbe Driver()
    {
        foreach (var file in CudaLibraries.Candidates(CudaLibraries.Cuda))
        {
            if (!NativeLibrary.TryLoad(file, out var h)) continue;
            try
            {
                var init = (delegate* unmanaged<uint, int>)NativeLibrary.GetExport(h, "cuInit");
                var ver = (delegate* unmanaged<int*, int>)NativeLibrary.GetExport(h, "cuDriverGetVersion");
                var count = (delegate* unmanaged<int*, int>)NativeLibrary.GetExport(h, "cuDeviceGetCount");
                int v = 0, n = 0;
                ver(&v);
                int rc = init(0);
                if (rc != 0) return new DriverProbe(file, v, 0, $"cuInit failed with CUresult {rc}");
                rc = count(&n);
                return new DriverProbe(file, v, n, rc == 0 ? null : $"cuDeviceGetCount failed with CUresult {rc}");
            }
            catch (EntryPointNotFoundException e) { return new DriverProbe(file, 0, 0, e.Message); }
            finally { NativeLibrary.Free(h); }
        }
        return new DriverProbe(null, 0, 0, "no CUDA driver found (libcuda.so.1)");
    }
}
