// Limits.cs: every resource limit applied to untrusted input, in one place, each raisable by an environment variable.
using System.Globalization;

namespace MvqNative.IO;

/// <summary>
/// Limits on what one input may cost before it is trusted: file sizes, decoded pixels, dataset memory, model memory.
/// Each is read from its environment variable (a number in the unit named) when set, else the default; a refusal
/// message names the variable so a user with a bigger machine knows how to raise it. docs/guarantees.md lists them.
/// </summary>
internal static class Limits
{
    /// <summary>MVQ_MAX_IMAGE_MB: largest image file read (MiB; default 256).</summary>
    public static long ImageFileBytes => Mib("MVQ_MAX_IMAGE_MB", 256);

    /// <summary>MVQ_MAX_IMAGE_MEGAPIXELS: largest decoded image, width x height of the one frame decoded (default 64).</summary>
    public static long ImagePixels => Mega("MVQ_MAX_IMAGE_MEGAPIXELS", 64);

    /// <summary>MVQ_MAX_DATASET_MB: largest dataset held in memory as float pixels (MiB; default 2048).</summary>
    public static long DatasetBytes => Mib("MVQ_MAX_DATASET_MB", 2048);

    /// <summary>MVQ_MAX_MODEL_MB: largest estimated memory of a model with its optimiser and one batch of activations (MiB; default 4096).</summary>
    public static long ModelBytes => Mib("MVQ_MAX_MODEL_MB", 4096);

    /// <summary>MVQ_MAX_JSON_MB: largest config or codes JSON file (MiB; default 256).</summary>
    public static long JsonBytes => Mib("MVQ_MAX_JSON_MB", 256);

    /// <summary>MVQ_MAX_CHECKPOINT_MB: largest checkpoint file (MiB; default 4096).</summary>
    public static long CheckpointBytes => Mib("MVQ_MAX_CHECKPOINT_MB", 4096);

    /// <summary>The environment variable that sets a limit, for messages.</summary>
    public const string ImageFileVar = "MVQ_MAX_IMAGE_MB", ImagePixelsVar = "MVQ_MAX_IMAGE_MEGAPIXELS",
        DatasetVar = "MVQ_MAX_DATASET_MB", ModelVar = "MVQ_MAX_MODEL_MB", JsonVar = "MVQ_MAX_JSON_MB", CheckpointVar = "MVQ_MAX_CHECKPOINT_MB";

    /// <summary>A byte count for people: "3.2 GiB", "512 MiB", "700 bytes".</summary>
    public static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => (bytes / (double)(1L << 30)).ToString("0.#", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("0.#", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (bytes / (double)(1L << 10)).ToString("0.#", CultureInfo.InvariantCulture) + " KiB",
        _ => bytes + " bytes",
    };

    private static long Mib(string name, long dflt) => Read(name, dflt) << 20;

    private static long Mega(string name, long dflt) => Read(name, dflt) * 1_000_000L;

    private static long Read(string name, long dflt)
    {
        var s = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(s)) return dflt;
        if (!long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < 1 || v > (1L << 40))
            throw new MvqInputException("$" + name, $"'{s}' is not a positive whole number");
        return v;
    }
}
