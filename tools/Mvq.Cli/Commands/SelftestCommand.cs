// A developer command: it may reach library internals (docs/api.md, "Which commands use the facade").
// `mvq selftest`: the conformance suite (every registered op's cases against the float64
// reference) on one device; JSON or a table; exit code 1 when a case failed or an op is uncovered.
using System.CommandLine;
using System.Text.Json.Nodes;
using MvqNative.Conformance;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq selftest --device cpu|cuda|cuda-emu [--json] [--filter OP] [--list]`.</summary>
internal static class SelftestCommand
{
    public static Command Create()
    {
        var device = Cli.Device(); var json = Cli.Json();
        var filter = new Option<string[]>("--filter")
        {
            Description = "only ops whose name contains one of these substrings (case-insensitive)",
            AllowMultipleArgumentsPerToken = true,
        };
        var list = new Option<bool>("--list") { Description = "list the registered ops (signature and math) instead of running their cases" };
        var cmd = new Command("selftest",
            "Run every op's conformance cases on a device against the float64 reference. Exit code 1 when a case fails or an op has no case or no implementation on the device.\n" +
            "Example: mvq selftest --device cuda --json")
        { device, json, filter, list };
        cmd.SetAction(r =>
        {
            var names = r.GetValue(filter) ?? [];
            if (r.GetValue(list))
            {
                var ops = Ops.OpRegistry.All.Where(op => names.Length == 0 || names.Any(n => op.Name.Contains(n, StringComparison.OrdinalIgnoreCase))).ToList();
                if (ops.Count == 0) throw new MvqUsageException($"--filter {string.Join(' ', names)} matches no op");
                if (r.GetValue(json))
                    Cli.PrintJson(new JsonArray(ops.Select(op => (JsonNode)new JsonObject
                    {
                        ["op"] = op.Name, ["signature"] = op.Signature, ["math"] = op.Doc,
                        ["gradient"] = op.Grad is null ? null : op.Grad.Fused is not null ? "fused" : op.Grad.Op,
                        ["cases"] = op.Cases.Count,
                    }).ToArray()));
                else
                {
                    var t = new Table().AddColumns("signature", "math", "cases");
                    foreach (var op in ops) t.AddRow(Markup.Escape(op.Signature), Markup.Escape(op.Doc), op.Cases.Count.ToString());
                    AnsiConsole.Write(t);
                }
                return 0;
            }
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            var report = ConformanceRunner.Run(backend,
                names.Length == 0 ? null : op => names.Any(n => op.Name.Contains(n, StringComparison.OrdinalIgnoreCase)));
            if (report.Ops == 0) throw new MvqUsageException($"--filter {string.Join(' ', names)} matches no op");
            // CUDA backends describe their card; the CPU backend's ToString is only its type name.
            string description = backend is Backends.Cuda.CudaBackend cb ? cb.ToString() : $"{backend.Name} ({Environment.ProcessorCount} threads)";
            if (r.GetValue(json)) Cli.PrintJson(ToJson(report, description));
            else PrintTable(report, description);
            return report.Failed == 0 && report.Uncovered.Count == 0 ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>The report as JSON: device, ops, cases, passed, failed, uncovered, results.</summary>
    public static JsonObject ToJson(ConformanceReport report, string deviceDescription) => new()
    {
        ["device"] = report.Device,
        ["device_description"] = deviceDescription,
        ["ops"] = report.Ops,
        ["cases"] = report.Cases,
        ["passed"] = report.Passed,
        ["failed"] = report.Failed,
        ["uncovered"] = new JsonArray(report.Uncovered.Select(u => (JsonNode)u).ToArray()),
        ["results"] = new JsonArray(report.Results.Select(c => (JsonNode)new JsonObject
        {
            ["op"] = c.Op,
            ["case"] = c.Case,
            ["passed"] = c.Passed,
            // Infinity (an exception or a non-finite output) is not JSON: null then.
            ["worst_nmse"] = double.IsFinite(c.WorstNmse) ? c.WorstNmse : null,
            ["message"] = c.Message,
        }).ToArray()),
    };

    private static void PrintTable(ConformanceReport report, string deviceDescription)
    {
        var t = new Table().AddColumns("op", "case", "worst nmse", "result");
        foreach (var c in report.Results)
            t.AddRow(Markup.Escape(c.Op), Markup.Escape(c.Case), double.IsFinite(c.WorstNmse) ? c.WorstNmse.ToString("E2") : "-",
                c.Passed ? "[green]pass[/]" : "[red]FAIL[/] " + Markup.Escape(c.Message));
        AnsiConsole.Write(t);
        foreach (var u in report.Uncovered) AnsiConsole.MarkupLine("[yellow]uncovered[/] " + Markup.Escape(u));
        Console.WriteLine($"{deviceDescription}: {report.Ops} ops, {report.Cases} cases, {report.Passed} passed, {report.Failed} failed, {report.Uncovered.Count} uncovered");
    }
}
