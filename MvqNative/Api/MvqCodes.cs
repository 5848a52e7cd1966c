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

    /// <summary>Where each code came from (a file name, "SPEC#INDEX", ...), [Count], or null: written to and read from codes files.</summary>
    /// <exception cref="ArgumentException">Set to a list whose length is not <see cref="Count"/>.</exception>
    public IReadOnlyList<string>? Sources
    {
        get => _sources;
        init
        {
            if (value is not null && value.Count != Count) throw new ArgumentException($"{value.Count} sources for {Count} codes", nameof(Sources));
            _sources = value;
        }
    }

    private readonly IReadOnlyList<string>? _sources;

    /// <summary>
    /// Writes the codes to a codes file (JSON, <c>mvqnative-codes/1</c>: the model's kind and config hash, the
    /// segments, and per code its source and tokens, and its mask word when there is one), atomically. Sources
    /// default to "#INDEX". <c>mvq decode</c> and <see cref="Load"/> read it back.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="model">The model that made (and can decode) the codes.</param>
    /// <exception cref="ArgumentException">The codes' layout is not the model's.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void Save(string path, MvqModel model)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        if (Length != model.CodeLength || !Segments.SequenceEqual(model.Segments))
            throw new ArgumentException($"codes of layout {string.Join(", ", Segments.Select(s => $"{s.Name} [{s.Length}] of {s.Vocabulary}"))} are not this model's", nameof(model));
        var names = Sources ?? Enumerable.Range(0, Count).Select(i => $"#{i}").ToArray();
        lock (model.Gate)
        {
            model.ThrowIfDisposed();
            IO.CodesFile.Write(path, model.Net, names, Values, MaskWords);
        }
    }

    /// <summary>
    /// Reads a codes file written by <see cref="Save"/> or <c>mvq encode</c> / <c>mvq sample</c>, checked against
    /// <paramref name="model"/>: format, config hash, segments, code lengths, token ranges and mask words.
    /// </summary>
    /// <returns>The codes, with their <see cref="Sources"/> and, when the file has them, <see cref="MaskWords"/>.</returns>
    /// <exception cref="MvqInputException">Missing, too large or malformed, or made by another model: "FILE: problem".</exception>
    public static MvqCodes Load(string path, MvqModel model)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        lock (model.Gate)
        {
            model.ThrowIfDisposed();
            var (names, codes, masks) = IO.CodesFile.ReadWithMasks(path, model.Net);
            return new MvqCodes(codes, model.Segments, masks) { Sources = names };
        }
    }

    /// <summary>
    /// Writes the codes to a binary cache (safetensors: an I32 tensor [Count, Length], the model's kind, config and
    /// weights hashes, the layout, and <paramref name="key"/>, the name of the data they encode), for
    /// <see cref="LoadCache"/>. Sources and mask words are not kept.
    /// </summary>
    /// <exception cref="ArgumentException">The codes' layout is not the model's.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void SaveCache(string path, MvqModel model, string key)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(key);
        if (Length != model.CodeLength || !Segments.SequenceEqual(model.Segments))
            throw new ArgumentException("the codes' layout is not this model's", nameof(model));
        lock (model.Gate)
        {
            model.ThrowIfDisposed();
            var ae = model.Net;
            Prior.CodesCache.Save(path, Values, new Prior.CodeLayout(ae.Bottleneck.Segments), Prior.AutoencoderRef.Of(ae), key);
        }
    }

    /// <summary>
    /// The codes of a cache written by <see cref="SaveCache"/> for the same model (same config and weights) and key,
    /// or null when <paramref name="path"/> does not exist.
    /// </summary>
    /// <exception cref="MvqInputException">The file is not a codes cache, or holds another model's or another key's codes: "FILE: problem".</exception>
    public static MvqCodes? LoadCache(string path, MvqModel model, string key)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(key);
        lock (model.Gate)
        {
            model.ThrowIfDisposed();
            var ae = model.Net;
            var codes = Prior.CodesCache.TryLoad(path, new Prior.CodeLayout(ae.Bottleneck.Segments), Prior.AutoencoderRef.Of(ae), key);
            return codes is null ? null : new MvqCodes(codes, model.Segments);
        }
    }

    /// <summary>The tokens of code <paramref name="index"/>.</summary>
    public ReadOnlySpan<int> this[int index] => Values.AsSpan(checked(index * Length), Length);
}
