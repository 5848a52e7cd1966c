using System.CommandLine;
using System.CommandLine.Invocation;
using System.Text.Json;
using System.Text.Json.Nodes;
using MvqNative.Backends;
using MvqNative.Backends.Cpu;

namespace MvqNative.Cli;

/// <summary>Options shared by many subcommands, parsing helpers, and the error boundary.</summary>
internal static class Cli
{
    public static Option<string> Device() => new("--device") { Description = "cpu | cuda | cuda-emu", DefaultValueFactory = _ => "cpu" };
    public static Option<bool> Json() => new("--json") { Description = "print one JSON object instead of a table" };
    /// <summary>An on|off switch whose default depends on the device (null when not given).</summary>
    public static Option<string?> Switch(string name, string description) =>
        new(name) { Description = description + " (on | off)", CustomParser = r =>
        {
            var v = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
            if (v is "on" or "off") return v;
            r.AddError($"{name} must be on or off, got '{v}'");
            return null;
        } };

    /// <summary>The value of a <see cref="Switch"/>, or <paramref name="dflt"/> when it was not given.</summary>
    public static bool On(string? value, bool dflt) => value is null ? dflt : value == "on";
    public static Option<int?> Seed() => new("--seed") { Description = "random seed" };

    /// <summary>--convert gray|rgb: the channel conversion of images whose channels differ from the model's.</summary>
    public static Option<string?> Convert() => new("--convert") { Description = "gray | rgb: convert colour images to luminance for a 1-channel model (gray), or gray images to RGB for a 3-channel model (rgb)" };

    /// <summary>Checks a --convert value against the model's channels; true when conversion is asked for.</summary>
    public static bool ConvertFlag(string? value, int channels) => value switch
    {
        null => false,
        "gray" when channels == 1 => true,
        "rgb" when channels == 3 => true,
        "gray" or "rgb" => throw new MvqUsageException($"--convert {value} does not fit this model, which takes {channels} channel{(channels == 1 ? "" : "s")} (use --convert {(channels == 1 ? "gray" : "rgb")})"),
        _ => throw new MvqUsageException($"--convert takes gray or rgb, not '{value}'"),
    };

    /// <summary>Full path with a final symlink resolved, to compare outputs with inputs.</summary>
    public static string RealPath(string path)
    {
        var full = Path.GetFullPath(path);
        try { return new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full; }
        catch (IOException) { return full; }
    }

    /// <summary>Refuses an output path that is one of the command's inputs (an input file, a file in an input folder, the model).</summary>
    public static void RefuseInputAsOutput(string output, string input, string model)
    {
        var o = RealPath(output);
        var ins = new List<string> { RealPath(model) };
        if (File.Exists(input)) ins.Add(RealPath(input));
        else if (Directory.Exists(input)) ins.AddRange(Directory.EnumerateFiles(input).Select(RealPath));
        else if (input.StartsWith("idx:", StringComparison.Ordinal)) ins.AddRange(input[4..].Split(',').Select(RealPath));
        else if (input.StartsWith("folder:", StringComparison.Ordinal) && Directory.Exists(input[7..])) ins.AddRange(Directory.EnumerateFiles(input[7..]).Select(RealPath));
        if (ins.Contains(o, StringComparer.Ordinal))
            throw new MvqInputException(output, "is an input of this command; refusing to write over it (choose another --output)");
    }

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
            var parsed = root.Parse(args);
            if (parsed.Errors.Count > 0)
            {
                // One line, in words (the parser's own text names .NET types and is followed by the whole usage).
                Console.Error.WriteLine("error: " + ParseError(parsed.Errors[0].Message));
                return 1;
            }
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
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

    private static readonly System.Text.RegularExpressions.Regex CannotParse =
        new(@"^Cannot parse argument '(?<v>.*)' for option '(?<o>[^']*)' as expected type '(?<t>[^']*)'", System.Text.RegularExpressions.RegexOptions.Singleline);

    internal static string ParseError(string message)
    {
        var m = CannotParse.Match(message);
        if (!m.Success) return message.ReplaceLineEndings(" ").Trim();
        string t = m.Groups["t"].Value;
        string kind = t.Contains("Int32") ? $"a whole number from {int.MinValue} to {int.MaxValue}"
            : t.Contains("Int64") ? "a whole number"
            : t.Contains("Single") || t.Contains("Double") ? "a number"
            : t.Contains("Boolean") ? "true or false"
            : t.Contains("FileInfo") || t.Contains("DirectoryInfo") ? "a path" : "a value of another kind";
        return $"{m.Groups["o"].Value}: '{m.Groups["v"].Value}' is not {kind}";
    }

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

    /// <summary>Writes the peak resident set (VmHWM from /proc/self/status, in bytes) to <paramref name="path"/>.</summary>
    internal static void WritePeakMemory(string path)
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            long kb = line is null ? -1 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            File.WriteAllText(path, (kb < 0 ? -1 : kb * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (IOException) { }
    }

    /// <summary>Writes a JSON object to stdout, indented.</summary>
    public static void PrintJson(JsonNode node) => Console.WriteLine(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));

    /// <summary>Interactive progress bars only on a terminal; plain log lines otherwise (CI, pipes).</summary>
    public static bool Interactive => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("CI") is null;
}
