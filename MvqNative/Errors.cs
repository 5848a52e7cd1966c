// Errors.cs: the exception types for bad input: files (datasets, images, checkpoints, data specs),
// and options or configuration values. Anything else that escapes the library is a bug.
namespace MvqNative;

/// <summary>
/// A file (or a data spec) given to the library is missing, truncated, corrupt or of the wrong
/// shape. <see cref="Exception.Message"/> is one line, <c>FILE: PROBLEM</c>, so a command-line tool
/// can print it as it is. Readers throw this instead of raw IndexOutOfRange/EndOfStream/format errors.
/// </summary>
public sealed class MvqInputException : Exception
{
    /// <param name="file">Path of the offending file (or the spec text when there is no file).</param>
    /// <param name="problem">What is wrong, one line, no trailing period needed.</param>
    /// <param name="inner">The low-level error that revealed the problem, if any.</param>
    public MvqInputException(string file, string problem, Exception? inner = null)
        : base($"{file}: {OneLine(problem)}", inner)
    {
        File = file;
        Problem = OneLine(problem);
    }

    /// <summary>The offending file (or spec).</summary>
    public string File { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }

    // Messages from inner exceptions may contain newlines; the contract is one line.
    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}

/// <summary>
/// A value given by the user is wrong: an option, a preset or device name, a configuration key
/// or value. <see cref="Exception.Message"/> is one line naming the option or key.
/// </summary>
public class MvqUsageException(string message, Exception? inner = null) : Exception(message.ReplaceLineEndings(" ").Trim(), inner);

/// <summary>A configuration (a --config file, a preset, a checkpoint's model config) is invalid: "SOURCE: problem".</summary>
public sealed class MvqConfigException(string source, string problem, Exception? inner = null) : MvqUsageException($"{source}: {problem}", inner)
{
    /// <summary>The config file, preset or "config".</summary>
    public string ConfigSource { get; } = source;
}
