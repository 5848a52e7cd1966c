// A developer command: it may reach library internals (docs/api.md, "Which commands use the facade").
// BenchApiCommand.cs: `mvq bench api`: encode throughput of the C ABI (libmvqnative.so, NativeAOT, called through
// function pointers from this process) against the managed facade (MvqModel.Encode), side by side in one run;
// single-image latency; and start-up to the first code of a fresh process through each.
using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using MvqNative.Backends.Cpu;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

internal static unsafe class BenchApiCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo?>("--model") { Description = "checkpoint to encode with (default: a fresh fmnist-vq model, saved to a temporary file)" };
        var abi = new Option<string?>("--abi") { Description = "libmvqnative.so (default: $MVQ_ABI_LIB, else build/abi/libmvqnative.so of this repository)" };
        var startupExe = new Option<string?>("--startup-exe") { Description = "the C start-up probe (default: build/native/examples/abi_first_encode of this repository)" };
        var batches = new Option<int[]>("--batches") { Description = "images per encode call", DefaultValueFactory = _ => [1, 64, 1024], AllowMultipleArgumentsPerToken = true };
        var runs = new Option<int>("--runs") { Description = "timed runs per side and batch (medians reported); the side that goes first alternates", DefaultValueFactory = _ => 5 };
        var seconds = new Option<double>("--seconds") { Description = "target length of one timed run, seconds", DefaultValueFactory = _ => 0.5 };
        var warmup = new Option<int>("--warmup") { Description = "untimed forward passes (of 64 images at most) per side and batch before timing (.NET tiered JIT needs tens)", DefaultValueFactory = _ => 40 };
        var startupRuns = new Option<int>("--startup-runs") { Description = "fresh processes per side for the start-up figure (0: skip)", DefaultValueFactory = _ => 5 };
        var firstEncode = new Option<string?>("--first-encode") { Description = "(internal) load this model, encode one image, print the time since process start", Hidden = true };
        var json = Cli.Json();
        var cmd = new Command("api", "Encode throughput of the C ABI (NativeAOT) against the managed facade, latency and start-up.\nExample: mvq bench api --json")
        { model, abi, startupExe, batches, runs, seconds, warmup, startupRuns, firstEncode, json };
        cmd.SetAction(r =>
        {
            if (r.GetValue(firstEncode) is string fe) return FirstEncode(fe);
            var bs = r.GetValue(batches)!;
            if (bs.Length == 0 || bs.Any(b => b < 1 || b > 4096)) throw new MvqUsageException("--batches takes sizes from 1 to 4096");
            int nRuns = Math.Max(1, r.GetValue(runs));
            string? tmp = null;
            try
            {
                string modelPath;
                if (r.GetValue(model) is { } f) modelPath = f.FullName;
                else
                {
                    tmp = Path.Combine(Path.GetTempPath(), $"mvq-bench-api-{Environment.ProcessId}.safetensors");
                    using var fresh = MvqModel.Create(MvqRecipe.Preset("fmnist-vq"), "cpu", seed: 1);
                    fresh.Save(tmp);
                    modelPath = tmp;
                }
                var libPath = r.GetValue(abi) ?? Environment.GetEnvironmentVariable("MVQ_ABI_LIB") ?? RepoFile("build/abi/libmvqnative.so");
                if (!File.Exists(libPath)) throw new MvqInputException(libPath, "libmvqnative.so not found; build it with bash tools/scripts/build-native.sh (or pass --abi)");
                var o = Run(modelPath, libPath, bs, nRuns, r.GetValue(seconds), Math.Max(1, r.GetValue(warmup)), r.GetValue(json));
                int sr = r.GetValue(startupRuns);
                if (sr > 0) o["startup"] = Startup(modelPath, r.GetValue(startupExe) ?? RepoFile("build/native/examples/abi_first_encode"), sr);
                if (r.GetValue(json)) Cli.PrintJson(o);
                PrintTable(o);
                return 0;
            }
            finally { if (tmp != null) File.Delete(tmp); }
        });
        return cmd;
    }

    private static JsonObject Run(string modelPath, string libPath, int[] batches, int runs, double seconds, int warmup, bool json)
    {
        int maxB = batches.Max();
        using var facade = MvqModel.Load(modelPath, "cpu");
        int per = facade.ImageSize, cl = facade.CodeLength;
        var images = new float[(long)maxB * per];
        string data;
        try
        {
            var d = MvqImages.Load("fashion-mnist:test", facade.Channels, facade.Height, facade.Width, limit: maxB);
            for (int k = 0; k < maxB; k++) d.Pixels.Slice(k % d.Count * per, per).CopyTo(images.AsSpan(k * per));
            data = "fashion-mnist:test";
        }
        catch (MvqInputException)
        {
            var rng = new Random(1);
            for (int k = 0; k < images.Length; k++) images[k] = rng.NextSingle();
            data = "uniform noise (FashionMNIST not found)";
        }

        var lib = NativeLibrary.Load(libPath);
        var load = (delegate* unmanaged<byte*, byte*, ulong*, int>)NativeLibrary.GetExport(lib, "mvq_load");
        var encode = (delegate* unmanaged<ulong, float*, long, int, int, int, int*, long, int>)NativeLibrary.GetExport(lib, "mvq_encode");
        var free = (delegate* unmanaged<ulong, int>)NativeLibrary.GetExport(lib, "mvq_free");
        var lastError = (delegate* unmanaged<byte*>)NativeLibrary.GetExport(lib, "mvq_last_error");
        var version = (delegate* unmanaged<byte*>)NativeLibrary.GetExport(lib, "mvq_version");
        ulong h;
        var pathBytes = System.Text.Encoding.UTF8.GetBytes(modelPath + "\0");
        var cpu = "cpu\0"u8.ToArray();
        fixed (byte* p = pathBytes) fixed (byte* d = cpu)
            if (load(p, d, &h) != 0) throw new MvqInputException(libPath, "mvq_load failed: " + Marshal.PtrToStringUTF8((nint)lastError()));
        var codesA = new int[maxB * cl];
        var codesM = new int[maxB * cl];
        var rows = new JsonArray();
        var latency = new JsonObject();
        try
        {
            foreach (int b in batches)
            {
                // The two sides must agree before they are timed.
                EncodeAbi(encode, lastError, h, images, b, facade, codesA);
                facade.Encode(images.AsSpan(0, b * per), codesM);
                if (!codesA.AsSpan(0, b * cl).SequenceEqual(codesM.AsSpan(0, b * cl)))
                    throw new InvalidOperationException($"the C ABI and the facade give different codes at batch {b}");
                // Warm-up counted in forward passes of MvqModel.InferenceBatch images: a call of 1024 images runs 16.
                int warm = Math.Max(2, (int)Math.Ceiling(warmup / Math.Ceiling(b / (double)MvqModel.InferenceBatch)));
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < warm; i++) facade.Encode(images.AsSpan(0, b * per), codesM);
                for (int i = 0; i < warm; i++) EncodeAbi(encode, lastError, h, images, b, facade, codesA);
                double msPerCall = sw.Elapsed.TotalMilliseconds / (2 * warm);
                int calls = Math.Max(3, (int)(seconds * 1000 / Math.Max(msPerCall, 1e-3)));
                var rateM = new List<double>(); var rateA = new List<double>();
                var callsM = new List<double>(); var callsA = new List<double>();
                // Process CPU time per call of each timed run: the sides alternate, so the process's CPU time during a run is
                // that side's (the idle runtime's threads sleep). Less sensitive to a loaded machine than wall time.
                var cpuM = new List<double>(); var cpuA = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    for (int side = 0; side < 2; side++)
                    {
                        bool abiSide = (side == 1) ^ (run % 2 == 1);
                        var each = abiSide ? callsA : callsM;
                        var cpu0 = Environment.CpuUsage.TotalTime;
                        var t = Stopwatch.StartNew();
                        for (int i = 0; i < calls; i++)
                        {
                            long c0 = Stopwatch.GetTimestamp();
                            if (abiSide) EncodeAbi(encode, lastError, h, images, b, facade, codesA);
                            else facade.Encode(images.AsSpan(0, b * per), codesM);
                            each.Add(Stopwatch.GetElapsedTime(c0).TotalMilliseconds);
                        }
                        (abiSide ? rateA : rateM).Add(calls * (double)b / t.Elapsed.TotalSeconds);
                        (abiSide ? cpuA : cpuM).Add((Environment.CpuUsage.TotalTime - cpu0).TotalMilliseconds / calls);
                    }
                    if (!json) Console.Error.Write($"\rbatch {b}: run {run + 1}/{runs}");
                }
                if (!json) Console.Error.WriteLine();
                double mM = Median(rateM), mA = Median(rateA);
                rows.Add(new JsonObject
                {
                    ["batch"] = b, ["calls_per_run"] = calls,
                    ["facade_images_per_s"] = mM, ["abi_images_per_s"] = mA, ["abi_over_facade"] = mA / mM,
                    ["facade_ms_per_call_median"] = Median(callsM), ["abi_ms_per_call_median"] = Median(callsA),
                    ["facade_cpu_ms_per_call_median"] = Median(cpuM), ["abi_cpu_ms_per_call_median"] = Median(cpuA),
                    ["abi_over_facade_cpu"] = Median(cpuM) / Median(cpuA),
                    ["facade_runs"] = new JsonArray(rateM.Select(x => (JsonNode)x).ToArray()),
                    ["abi_runs"] = new JsonArray(rateA.Select(x => (JsonNode)x).ToArray()),
                });
                if (b == 1) latency = new JsonObject { ["facade_ms_median"] = Median(callsM), ["abi_ms_median"] = Median(callsA), ["facade_ms_p90"] = Quantile(callsM, 0.9), ["abi_ms_p90"] = Quantile(callsA, 0.9) };
            }
        }
        finally { free(h); }
        return new JsonObject
        {
            ["model"] = modelPath, ["abi"] = libPath, ["abi_version"] = Marshal.PtrToStringUTF8((nint)version()),
            ["data"] = data, ["threads"] = CpuParallel.Threads, ["load_average"] = LoadAverage(),
            ["statistic"] = "images/s of each timed run (calls x batch / wall time), median over runs; ratio of the medians",
            ["encode"] = rows, ["latency_batch1"] = latency,
        };
    }

    private static void EncodeAbi(delegate* unmanaged<ulong, float*, long, int, int, int, int*, long, int> encode, delegate* unmanaged<byte*> lastError,
        ulong h, float[] images, int b, MvqModel m, int[] codes)
    {
        int rc;
        fixed (float* x = images) fixed (int* c = codes)
            rc = encode(h, x, b, m.Channels, m.Height, m.Width, c, codes.Length);
        if (rc != 0) throw new InvalidOperationException("mvq_encode failed: " + Marshal.PtrToStringUTF8((nint)lastError()));
    }

    /// <summary>Fresh processes to the first code: the C probe through libmvqnative.so, and this CLI through the facade (JIT).</summary>
    private static JsonObject Startup(string modelPath, string probe, int runs)
    {
        if (!File.Exists(probe)) throw new MvqInputException(probe, "the start-up probe is not built (bash tools/scripts/build-native.sh), or pass --startup-exe");
        var dll = typeof(BenchApiCommand).Assembly.Location;
        var aot = new List<double>(); var aotIn = new List<double>(); var jit = new List<double>(); var jitIn = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            for (int side = 0; side < 2; side++)
            {
                bool aotSide = (side == 0) ^ (i % 2 == 1);
                var psi = aotSide ? new ProcessStartInfo(probe, [modelPath]) : new ProcessStartInfo("dotnet", [dll, "bench", "api", "--first-encode", modelPath]);
                psi.RedirectStandardOutput = true;
                var t = Stopwatch.StartNew();
                using var p = Process.Start(psi)!;
                var text = p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                double wall = t.Elapsed.TotalMilliseconds;
                if (p.ExitCode != 0) throw new InvalidOperationException($"{psi.FileName} exited with {p.ExitCode}");
                var inside = JsonNode.Parse(text)!["first_encode_ms"]!.GetValue<double>();
                (aotSide ? aot : jit).Add(wall);
                (aotSide ? aotIn : jitIn).Add(inside);
            }
        }
        return new JsonObject
        {
            ["statistic"] = "median over fresh processes; process = wall time from spawn to exit, in_process = main() (or process start) to the first code",
            ["aot_process_ms"] = Median(aot), ["aot_in_process_ms"] = Median(aotIn),
            ["managed_process_ms"] = Median(jit), ["managed_in_process_ms"] = Median(jitIn),
            ["managed_over_aot_process"] = Median(jit) / Median(aot),
        };
    }

    private static int FirstEncode(string modelPath)
    {
        using var m = MvqModel.Load(modelPath, "cpu");
        m.Encode(new float[m.ImageSize]);
        double ms = (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds;
        Console.WriteLine($"{{\"first_encode_ms\": {ms.ToString("F3", System.Globalization.CultureInfo.InvariantCulture)}}}");
        return 0;
    }

    private static void PrintTable(JsonObject o)
    {
        var t = new Table().AddColumns("batch", "facade img/s", "C ABI img/s", "C ABI / facade", "facade ms/call", "C ABI ms/call", "CPU ms/call facade / C ABI", "C ABI / facade (CPU)");
        foreach (var row in o["encode"]!.AsArray())
            t.AddRow(row!["batch"]!.ToString(), $"{row["facade_images_per_s"]!.GetValue<double>():F0}", $"{row["abi_images_per_s"]!.GetValue<double>():F0}",
                $"{row["abi_over_facade"]!.GetValue<double>():F3}", $"{row["facade_ms_per_call_median"]!.GetValue<double>():F3}", $"{row["abi_ms_per_call_median"]!.GetValue<double>():F3}",
                $"{row["facade_cpu_ms_per_call_median"]!.GetValue<double>():F2} / {row["abi_cpu_ms_per_call_median"]!.GetValue<double>():F2}", $"{row["abi_over_facade_cpu"]!.GetValue<double>():F3}");
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Write(t);
        if (o["startup"] is JsonObject s)
            Console.Error.WriteLine($"start-up to the first code: NativeAOT process {s["aot_process_ms"]!.GetValue<double>():F0} ms (in process {s["aot_in_process_ms"]!.GetValue<double>():F0} ms), " +
                                    $"managed CLI process {s["managed_process_ms"]!.GetValue<double>():F0} ms (in process {s["managed_in_process_ms"]!.GetValue<double>():F0} ms)");
        Console.Error.WriteLine($"load average {o["load_average"]}, {o["threads"]} threads, data {o["data"]}");
    }

    private static string RepoFile(string rel)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "MvqNative.sln"))) return Path.Combine(d.FullName, rel);
        return Path.GetFullPath(rel);
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "unknown"; }
    }

    private static double Median(List<double> xs) => Quantile(xs, 0.5);

    private static double Quantile(List<double> xs, double q)
    {
        var s = xs.Order().ToArray();
        double pos = q * (s.Length - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return s[lo] + (s[hi] - s[lo]) * (pos - lo);
    }
}
