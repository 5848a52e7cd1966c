// CliFacadeRuleTests.cs: the user commands of `mvq` run on the public facade only (issue 12). Their source files may
// use the facade (namespace MvqNative), the CLI's own helpers and the library's file plumbing (MvqNative.IO,
// MvqNative.Imaging, MvqNative.Data: reading image files and folders, writing PNGs and files atomically), but none of
// the model internals. Developer commands (bench, selftest, doctor, features, report) may; docs/api.md lists them.
using System.Text.RegularExpressions;
using Xunit;

namespace MvqNative.Tests.Api;

public class CliFacadeRuleTests
{
    /// <summary>The user commands' files (and the helper they share), relative to tools/Mvq.Cli.</summary>
    public static readonly string[] UserCommandFiles =
    [
        "Commands/EncodeCommand.cs", "Commands/DecodeCommand.cs", "Commands/ReconstructCommand.cs", "Commands/EvalCommand.cs",
        "Commands/SampleCommand.cs", "Commands/PriorCommand.cs", "Commands/TraverseCommand.cs", "InputImages.cs",
    ];

    /// <summary>Namespaces of the library's internals: ops, kernels, backends, layers, models, trainers, checkpoints, metrics, the prior.</summary>
    private static readonly string[] Internal =
        ["Backends", "Benchmarks", "Checkpoints", "Conformance", "Layers", "Metrics", "Models", "Mvq", "Ops", "Optim", "Prior", "Quantizers", "Tensors", "Training"];

    [Fact]
    public void User_commands_reach_no_library_internals()
    {
        var cli = Path.Combine(RepoRoot(), "tools", "Mvq.Cli");
        var names = string.Join("|", Internal);
        // A using directive or a (partly) qualified name: inside namespace MvqNative.Cli.Commands, "Models.X" resolves to MvqNative.Models.X.
        var reference = new Regex($@"\b(?:MvqNative\.)?(?:{names})\.[A-Z]|using\s+MvqNative\.(?:{names})\b");
        var problems = new List<string>();
        foreach (var f in UserCommandFiles)
        {
            var lines = File.ReadAllLines(Path.Combine(cli, f));
            for (int i = 0; i < lines.Length; i++)
            {
                if (reference.Match(lines[i]) is { Success: true } m) problems.Add($"{f}:{i + 1}: {m.Value} in: {lines[i].Trim()}");
                // Cli.OpenDevice hands out a Backend; the facade opens devices itself.
                if (lines[i].Contains("Cli.OpenDevice", StringComparison.Ordinal)) problems.Add($"{f}:{i + 1}: Cli.OpenDevice (a Backend)");
            }
        }
        Assert.True(problems.Count == 0, "user commands must use the facade only:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void The_rule_catches_an_internal_reference()
    {
        // The check above is only as good as its pattern: these lines must all be caught.
        var names = string.Join("|", Internal);
        var reference = new Regex($@"\b(?:MvqNative\.)?(?:{names})\.[A-Z]|using\s+MvqNative\.(?:{names})\b");
        foreach (var line in new[] { "using MvqNative.Models;", "var s = new Models.InferenceSession(m, 1);", "MvqNative.Prior.ImageGenerator.Run(a, b)", "using MvqNative.Backends.Cpu;" })
            Assert.Matches(reference, line);
        foreach (var line in new[] { "using MvqNative.IO;", "MaskSource = opt.RandomMasks;", "var m = MvqModel.Load(p);", "ImageGrid.Save(path)" })
            Assert.DoesNotMatch(reference, line);
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "MvqNative.sln"))) return d.FullName;
        throw new InvalidOperationException("MvqNative.sln not found above " + AppContext.BaseDirectory);
    }
}
