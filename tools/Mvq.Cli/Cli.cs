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

    /// <summary>Exit code of an internal error (a bug), distinct from bad input (1): BSD's EX_SOFTWARE.</summary>
    public const int InternalErrorExit = 70;

    /// <summary>
    /// Runs the parsed command: the one error boundary. Bad input (files, options, config,
    /// devices, divergence) prints one "error: ..." line and exits 1. Any other exception is a
    /// bug: one line names the exception and a file holding its full stack trace; exit code 70.
    /// </summary>
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
        catch (Exception e)
        {
            Console.Error.WriteLine("error: " + InternalError(e, args));
            return InternalErrorExit;
        }
    }

    /// <summary>
    /// Expected failures: bad input files, bad options or config values, the file system,
    /// memory, the CUDA driver/NVRTC/cuBLAS (MvqNative.Bindings), and divergence. Not
    /// ArgumentException, InvalidOperationException and the like: from inside the library those are bugs.
    /// </summary>
    internal static bool IsUserError(Exception e) => e is MvqInputException or MvqUsageException or IOException or UnauthorizedAccessException
        or OutOfMemoryException or Training.TrainingDivergedException || e.GetType().Namespace?.StartsWith("MvqNative.Bindings", StringComparison.Ordinal) == true;

    internal static string OneLine(Exception e) => e.Message.Replace('\n', ' ').Replace('\r', ' ');

    /// <summary>Writes the exception's full text (with the command line) to a file in the temp folder; returns the one line naming it.</summary>
    internal static string InternalError(Exception e, string[] args)
    {
        string head = $"internal error (a bug in mvq): {e.GetType().FullName}: {OneLine(e)}";
        try
        {
            string path = Path.Combine(Path.GetTempPath(), $"mvq-error-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.txt");
            File.WriteAllText(path, $"mvq {string.Join(' ', args)}\n{DateTime.UtcNow:O}\n\n{e}\n");
            return $"{head} (stack trace in {path})";
        }
        catch (Exception io) when (io is IOException or UnauthorizedAccessException)
        {
            return $"{head} (stack trace could not be written: {OneLine(io)}) {e.StackTrace?.ReplaceLineEndings(" | ")}";
        }
    }

    /// <summary>Writes a JSON object to stdout, indented.</summary>
    public static void PrintJson(JsonNode node) => Console.WriteLine(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));

    /// <summary>Interactive progress bars only on a terminal; plain log lines otherwise (CI, pipes).</summary>
    public static bool Interactive => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("CI") is null;
}
