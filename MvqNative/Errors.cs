// Errors.cs: the one exception type for bad input files (datasets, images, checkpoints, data specs).
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
