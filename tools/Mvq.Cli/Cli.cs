using System.CommandLine;
using System.CommandLine.Invocation;
using System.Text.Json;
using System.Text.Json.Nodes;
using MvqNative.Backends;
using MvqNative.Backends.Cpu;

namespace MvqNative.Cli;

/// <summary>Options shared by many subcommands, parsing helpers, and the error boundary.</summary>
public static class Cli
{
    public static Option<string> Device() => new("--device") { Description = "cpu | cuda | cuda-emu", DefaultValueFactory = _ => "cpu" };
    public static Option<bool> Json() => new("--json") { Description = "print one JSON object instead of a table" };
    public static Option<int?> Seed() => new("--seed") { Description = "random seed" };

    /// <summary>Opens a device by name with a one-line error when it is unavailable.</summary>
    public static Backend OpenDevice(string name) => name == "cpu" ? CpuBackend.Instance : Devices.Open(name);

    /// <summary>Runs the parsed command; every expected failure becomes "error: ..." and exit code 1.</summary>
    public static int Run(RootCommand root, string[] args)
    {
        try
        {
            // Our own boundary below turns expected failures into one line; the library's handler would print a stack trace.
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (IsUserError(e))
        {
            Console.Error.WriteLine("error: " + OneLine(e));
            return 1;
        }
    }

    internal static bool IsUserError(Exception e) => e is MvqInputException or ArgumentException or IOException or UnauthorizedAccessException
        or NotSupportedException or InvalidOperationException or OutOfMemoryException or KeyNotFoundException or FormatException
        or Training.TrainingDivergedException || e.GetType().Namespace?.StartsWith("MvqNative.Bindings", StringComparison.Ordinal) == true;

    internal static string OneLine(Exception e) => e.Message.Replace('\n', ' ').Replace('\r', ' ');

    /// <summary>Writes a JSON object to stdout, indented.</summary>
    public static void PrintJson(JsonNode node) => Console.WriteLine(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>Interactive progress bars only on a terminal; plain log lines otherwise (CI, pipes).</summary>
    public static bool Interactive => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("CI") is null;
}
