// A developer command: it may reach library internals (docs/api.md, "Which commands use the facade").
using System.CommandLine;
using System.Runtime.Intrinsics.X86;
using System.Text.Json.Nodes;
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Backends.Cuda;
using MvqNative.Bindings;
using MvqNative.Ops;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq doctor`: what this machine offers (devices, driver, NVRTC, kernel cache, emulator, CPU GEMM).</summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var json = Cli.Json();
        var compile = new Option<string[]>("--compile") { Description = "also compile every kernel file with NVRTC for these archs (e.g. sm_80 sm_90), bypassing the cache", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("doctor", "List devices, CUDA driver and NVRTC versions, the kernel cache folder, the emulator and the CPU GEMM provider.\nExample: mvq doctor --json\nExample: mvq doctor --compile sm_80 sm_90") { json, compile };
        cmd.SetAction(r =>
        {
            if (r.GetValue(compile) is { Length: > 0 } archs) return CompileKernels(archs, r.GetValue(json));
            var items = Devices.Probe();
            var devices = new JsonArray
            {
                new JsonObject
                {
                    ["name"] = "cpu", ["available"] = true, ["threads"] = CpuParallel.Threads,
                    ["simd"] = Avx512F.IsSupported ? "avx512" : Avx2.IsSupported && Fma.IsSupported ? "avx2+fma" : System.Numerics.Vector.IsHardwareAccelerated ? "vector" : "scalar",
                    ["gemm"] = CpuGemm.ProviderDescription,
                },
            };
            // A process binds either the real driver or the emulator: describe the real GPU if there is one, else the emulator.
            bool haveGpu = items.Any(i => i.Item == "device cuda" && i.Ok);
            bool haveEmu = items.Any(i => i.Item == "device cuda-emu" && i.Ok);
            devices.Add(DeviceJson("cuda", haveGpu, haveGpu ? "cuda" : null));
            devices.Add(DeviceJson("cuda-emu", haveEmu, !haveGpu && haveEmu ? "cuda-emu" : null));
            var o = new JsonObject
            {
                ["devices"] = devices,
                ["driver"] = items.FirstOrDefault(i => i.Item == "cuda driver")?.Value,
                ["nvrtc"] = items.FirstOrDefault(i => i.Item == "nvrtc")?.Value,
                ["nvrtc_archs"] = items.FirstOrDefault(i => i.Item == "nvrtc archs")?.Value,
                ["cublas"] = items.FirstOrDefault(i => i.Item == "cublas")?.Value,
                ["kernel_cache"] = KernelCompiler.Cache.Folder,
                ["emulator"] = new JsonObject { ["available"] = haveEmu, ["path"] = CudaLibraries.FindEmulator() },
                ["ops"] = OpRegistry.All.Count,
                ["ops_with_cuda"] = OpRegistry.All.Count(op => op.Cuda != null),
                ["checks"] = new JsonArray(items.Select(i => (JsonNode)new JsonObject { ["item"] = i.Item, ["value"] = i.Value, ["ok"] = i.Ok }).ToArray()),
            };
            if (r.GetValue(json)) Cli.PrintJson(o);
            else
            {
                var t = new Table().AddColumns("check", "value", "ok");
                foreach (var i in items) t.AddRow(Markup.Escape(i.Item), Markup.Escape(i.Value), i.Ok ? "[green]yes[/]" : "[yellow]no[/]");
                t.AddRow("cpu gemm", Markup.Escape(CpuGemm.ProviderDescription), "[green]yes[/]");
                foreach (var d in devices.Skip(1))
                    if (d?["compute_capability"] is JsonNode cc)
                        t.AddRow(Markup.Escape($"{d["name"]}"), Markup.Escape($"{d["device_name"]}, sm_{cc}, {d["memory_bytes"]!.GetValue<long>() / (1 << 20)} MiB, {d["multiprocessors"]} SMs" +
                            (d["sanitizer"] is JsonNode san ? $", sanitizer: {san}" : "")), "[green]yes[/]");
                t.AddRow("ops with a CUDA kernel", $"{o["ops_with_cuda"]} of {o["ops"]}", (int)o["ops_with_cuda"]! == (int)o["ops"]! ? "[green]yes[/]" : "[yellow]no[/]");
                AnsiConsole.Write(t);
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Compiles every embedded kernel file for each arch into a throwaway cache and counts files and kernels.</summary>
    private static int CompileKernels(string[] archs, bool json)
    {
        var tmp = Directory.CreateTempSubdirectory("mvq-nvrtc");
        try
        {
            int kernels = KernelCompiler.KernelFiles.Sum(f =>
                System.Text.RegularExpressions.Regex.Matches(KernelCompiler.Source(f), @"extern\s+""C""\s+__global__").Count);
            var rows = new JsonArray();
            foreach (var arch in archs)
            {
                var res = KernelCompiler.CompileAll(arch, new KernelCache(Path.Combine(tmp.FullName, arch)));
                rows.Add(new JsonObject { ["arch"] = arch, ["files"] = res.Count, ["target"] = res.FirstOrDefault()?.Target, ["bytes"] = res.Sum(x => (long)x.Image.Length) });
                if (!json) Console.WriteLine($"NVRTC {KernelCompiler.NvrtcVersion}: compiled {res.Count} kernel files ({kernels} kernels) for {arch} -> {res.FirstOrDefault()?.Target}");
            }
            if (json) Cli.PrintJson(new JsonObject { ["nvrtc"] = KernelCompiler.NvrtcVersion, ["kernel_files"] = KernelCompiler.KernelFiles.Count, ["kernels"] = kernels, ["compiled"] = rows });
            return 0;
        }
        finally { tmp.Delete(true); }
    }

    private static JsonObject DeviceJson(string name, bool available, string? open)
    {
        var o = new JsonObject { ["name"] = name, ["available"] = available };
        if (open is null) return o;
        try
        {
            using var b = (CudaBackend)Devices.Open(open);
            var i = b.Info;
            o["device_name"] = i.Name;
            o["compute_capability"] = $"{i.Major}{i.Minor}";
            o["memory_bytes"] = i.TotalMemory;
            o["multiprocessors"] = i.SmCount;
            o["driver_version"] = i.DriverVersion;
            if (b.IsEmulator)
            {
                // The card the emulator imitates (MVQ_EMU_CARD) and the sanitizer's checkers (MVQ_EMU_CHECKS).
                o["emulated_card"] = MvqEmu.Card();
                o["sanitizer"] = MvqEmu.Checkers();
            }
        }
        catch (Exception e) when (Cli.IsUserError(e) || e is DllNotFoundException or EntryPointNotFoundException)
        {
            o["available"] = false;
            o["error"] = Cli.OneLine(e);
        }
        return o;
    }
}
