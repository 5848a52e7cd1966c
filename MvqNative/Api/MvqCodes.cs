// MvqCodes.cs: the discrete codes of a batch of images, with their layout.
namespace MvqNative;

/// <summary>One segment of a code: its name (k1, k2 or w), its position and length in the code, and its vocabulary.</summary>
/// <param name="Name">k1 (primary tokens), k2 (MVQ secondary tokens) or w (MVQ: index of the mask in the evaluation bank).</param>
/// <param name="Start">Offset of the segment's first token in each code.</param>
/// <param name="Length">Tokens in the segment.</param>
/// <param name="Vocabulary">Every token of the segment is in [0, Vocabulary).</param>
public sealed record MvqCodeSegment(string Name, int Start, int Length, int Vocabulary);

/// <summary>
/// Codes of <see cref="Count"/> images: <see cref="Values"/> holds [Count, Length] tokens, row-major, each
/// row the segments of <see cref="Segments"/> one after the other. For MVQ samples drawn with random masks,
/// <see cref="MaskWords"/> [Count] holds each image's mask (it replaces the evaluation-bank mask w points to).
/// </summary>
public sealed class MvqCodes
{
    /// <summary>Wraps codes; the arrays are not copied.</summary>
    /// <exception cref="ArgumentException"><paramref name="values"/> is not a whole number of codes, or a mask-word count differs.</exception>
    public MvqCodes(int[] values, IReadOnlyList<MvqCodeSegment> segments, uint[]? maskWords = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(segments);
        Length = segments.Sum(s => s.Length);
        if (Length < 1 || values.Length % Length != 0)
            throw new ArgumentException($"{values.Length} values are not a whole number of codes of length {Length}", nameof(values));
        if (maskWords is not null && maskWords.Length != values.Length / Length)
            throw new ArgumentException($"{maskWords.Length} mask words for {values.Length / Length} codes", nameof(maskWords));
        Values = values;
        Segments = segments;
        MaskWords = maskWords;
    }

    /// <summary>Tokens [Count, Length], row-major.</summary>
    public int[] Values { get; }

    /// <summary>The layout of one code.</summary>
    public IReadOnlyList<MvqCodeSegment> Segments { get; }

    /// <summary>MVQ random-mask samples: one mask word per code, else null.</summary>
    public uint[]? MaskWords { get; }

    /// <summary>Tokens per code.</summary>
    public int Length { get; }

    /// <summary>Number of codes (images).</summary>
    public int Count => Values.Length / Length;

    /// <summary>The tokens of code <paramref name="index"/>.</summary>
    public ReadOnlySpan<int> this[int index] => Values.AsSpan(checked(index * Length), Length);
}
