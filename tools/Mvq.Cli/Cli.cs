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

    /// <summary>--convert gray|rgb: the channel conversion of images whose channels differ from the model's.</summary>
    public static Option<string?> Convert() => new("--convert") { Description = "gray | rgb: convert colour images to luminance for a 1-channel model (gray), or gray images to RGB for a 3-channel model (rgb)" };

    /// <summary>Checks a --convert value against the model's channels; true when conversion is asked for.</summary>
    public static bool ConvertFlag(string? value, int channels) => value switch
    {
        null => false,
        "gray" when channels == 1 => true,
        "rgb" when channels == 3 => true,
        "gray" or "rgb" => throw new ArgumentException($"--convert {value} does not fit this model, which takes {channels} channel{(channels == 1 ? "" : "s")} (use --convert {(channels == 1 ? "gray" : "rgb")})"),
        _ => throw new ArgumentException($"--convert takes gray or rgb, not '{value}'"),
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

    /// <summary>Runs the parsed command; every expected failure becomes "error: ..." and exit code 1.</summary>
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
    }

    internal static bool IsUserError(Exception e) => e is MvqInputException or ArgumentException or IOException or UnauthorizedAccessException
        or NotSupportedException or InvalidOperationException or OutOfMemoryException or KeyNotFoundException or FormatException
        or Training.TrainingDivergedException || e.GetType().Namespace?.StartsWith("MvqNative.Bindings", StringComparison.Ordinal) == true;

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
