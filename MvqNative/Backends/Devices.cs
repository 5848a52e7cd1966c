// Opens a backend by its command-line name and probes what this machine offers (for `mvq doctor`).
using MvqNative.Backends.Cpu;
using MvqNative.Backends.Cuda;
using MvqNative.Bindings;

namespace MvqNative.Backends;

/// <summary>One line of the doctor report: what was checked, what was found, and whether it is usable.</summary>
internal sealed record ProbeItem(string Item, string Value, bool Ok);

/// <summary>Device names cpu | cuda[:N] | cuda-emu[:N] to backends.</summary>
internal static class Devices
{
    /// <summary>The names <see cref="Open"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["cpu", "cuda", "cuda-emu"];

    /// <summary>
    /// Opens a backend: "cpu" (the shared CPU backend), "cuda" (device 0, or "cuda:N"), or
    /// "cuda-emu" (the host emulator). The caller disposes CUDA backends.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    /// <exception cref="InvalidOperationException">The device cannot be opened here; the message says why.</exception>
    public static Backend Open(string name)
    {
        var (kind, ordinal) = Parse(name);
        try
        {
            return kind switch
            {
                "cpu" => CpuBackend.Instance,
                "cuda" => CudaBackend.Create(emulator: false, ordinal),
                "cuda-emu" => CudaBackend.Create(emulator: true, ordinal),
                _ => throw new MvqUsageException($"unknown device '{name}' (expected one of: {string.Join(", ", Names)})"),
            };
        }
        catch (DllNotFoundException e) { throw new MvqUsageException($"cannot open device {name}: {e.Message}", e); }
        catch (CudaException e) { throw new MvqUsageException($"cannot open device {name}: {e.Message}", e); }
    }

    private static (string Kind, int Ordinal) Parse(string name)
    {
        var parts = name.Trim().ToLowerInvariant().Split(':', 2);
        if (parts.Length == 1) return (parts[0], 0);
        if (!int.TryParse(parts[1], out var n) || n < 0) throw new MvqUsageException($"bad device ordinal in '{name}'");
        return (parts[0], n);
    }

    /// <summary>
    /// What this machine offers: CUDA driver and devices (checked without binding the driver for
    /// the process), NVRTC version and archs, the kernel cache folder, the emulator library.
    /// </summary>
    public static IReadOnlyList<ProbeItem> Probe()
    {
        var items = new List<ProbeItem> { new("device cpu", $"{Environment.ProcessorCount} threads", true) };

        var drv = CudaProbe.Driver();
        if (drv.File is null) items.Add(new("cuda driver", drv.Error ?? "not found", false));
        else
        {
            items.Add(new("cuda driver", $"{drv.File}, version {drv.Version / 1000}.{drv.Version % 1000 / 10}", drv.Error is null));
            items.Add(new("device cuda", drv.Error ?? $"{drv.DeviceCount} device(s)", drv.Error is null && drv.DeviceCount > 0));
        }

        try
        {
            var archs = KernelCompiler.SupportedArchs;
            items.Add(new("nvrtc", $"{CudaLibraries.Probe(CudaLibraries.Nvrtc)}, version {KernelCompiler.NvrtcVersion}", true));
            items.Add(new("nvrtc archs", string.Join(' ', archs.Select(a => $"sm_{a}")), archs.Count > 0));
        }
        catch (DllNotFoundException) { items.Add(new("nvrtc", "not found (libnvrtc.so.13/.12/.11.2)", false)); }

        items.Add(new("cublas", CudaLibraries.Probe(CudaLibraries.Cublas) ?? "not found (libcublas.so.13/.12/.11)", CudaLibraries.Probe(CudaLibraries.Cublas) is not null));
        items.Add(new("kernel cache", KernelCompiler.Cache.Folder, true));

        var emu = CudaLibraries.FindEmulator();
        items.Add(new("device cuda-emu", emu ?? "emulator library not found; build it with cmake -S . -B build && cmake --build build", emu is not null));
        items.Add(new("cuda binding", CudaLibraries.IsCudaBound ? (CudaLibraries.IsEmulator ? $"emulator ({CudaLibraries.EmulatorPath})" : "real driver") : "not bound yet", true));
        return items;
    }
}
