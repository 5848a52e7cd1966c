// CodeLayout.cs: how an autoencoder's code becomes the prior's token sequence (segments, vocabulary ranges, start token).
using MvqNative.Models;

namespace MvqNative.Prior;

/// <summary>
/// The sequence of one image: the code's segments in order (VQ: k1 [L1]; MVQ: k1 [L1], k2 [L2], w [1]),
/// T = sum of lengths tokens. Segment s owns the global token ids [Offset_s, Offset_s + V_s), so the output
/// vocabulary is V = sum V_s; the start token is id V (input only, never a target). Position t of the
/// sequence predicts token t from the start token and tokens 0..t-1; its valid logits are its segment's range.
/// </summary>
internal sealed class CodeLayout
{
    public CodeLayout(IReadOnlyList<CodeSegment> segments)
    {
        if (segments.Count == 0) throw new ArgumentException("code layout: no segments");
        Segments = segments;
        Offsets = new int[segments.Count];
        int off = 0, pos = 0;
        foreach (var (s, i) in segments.Select((s, i) => (s, i)))
        {
            if (s.Start != pos || s.Length < 1 || s.Vocabulary < 1) throw new ArgumentException($"code layout: segment {s.Name} (start {s.Start}, length {s.Length}, vocabulary {s.Vocabulary}) does not follow the previous one");
            Offsets[i] = off;
            off += s.Vocabulary;
            pos += s.Length;
        }
        Vocabulary = off;
        Length = pos;
        _lo = new int[Length]; _hi = new int[Length];
        for (int i = 0; i < segments.Count; i++)
            for (int t = segments[i].Start; t < segments[i].Start + segments[i].Length; t++)
            {
                _lo[t] = Offsets[i];
                _hi[t] = Offsets[i] + segments[i].Vocabulary;
            }
    }

    private readonly int[] _lo, _hi;

    public IReadOnlyList<CodeSegment> Segments { get; }
    /// <summary>First global id of each segment.</summary>
    public int[] Offsets { get; }
    /// <summary>Output vocabulary V (sum of segment vocabularies).</summary>
    public int Vocabulary { get; }
    /// <summary>Input vocabulary: V + 1 (the start token).</summary>
    public int InputVocabulary => Vocabulary + 1;
    public int StartToken => Vocabulary;
    /// <summary>Tokens per image T.</summary>
    public int Length { get; }

    /// <summary>Valid global ids [Lo, Hi) at position t.</summary>
    public (int Lo, int Hi) Bounds(int t) => (_lo[t], _hi[t]);

    /// <summary>Bounds of <paramref name="batch"/> sequences, [B*T, 2] row-major.</summary>
    public int[] BoundsArray(int batch)
    {
        var b = new int[batch * Length * 2];
        for (int i = 0; i < batch; i++)
            for (int t = 0; t < Length; t++) { b[(i * Length + t) * 2] = _lo[t]; b[(i * Length + t) * 2 + 1] = _hi[t]; }
        return b;
    }

    /// <summary>Codes [B, T] (each token local to its segment) -> inputs (start, shifted global ids) and targets (global ids), [B, T] each.</summary>
    public void ToInputsTargets(ReadOnlySpan<int> codes, Span<int> inputs, Span<int> targets)
    {
        int b = codes.Length / Length;
        for (int i = 0; i < b; i++)
        {
            inputs[i * Length] = StartToken;
            for (int t = 0; t < Length; t++)
            {
                int c = codes[i * Length + t];
                if ((uint)c >= (uint)(_hi[t] - _lo[t])) throw new ArgumentOutOfRangeException(nameof(codes), $"code {c} at position {t} of instance {i} is outside [0, {_hi[t] - _lo[t]})");
                targets[i * Length + t] = _lo[t] + c;
                if (t + 1 < Length) inputs[i * Length + t + 1] = _lo[t] + c;
            }
        }
    }

    /// <summary>"k1 [2] of 64, k2 [2] of 64, w [1] of 256".</summary>
    public override string ToString() => string.Join(", ", Segments.Select(s => $"{s.Name} [{s.Length}] of {s.Vocabulary}"));

    /// <summary>Same segments (names, lengths, vocabularies).</summary>
    public bool SameAs(CodeLayout o) => Segments.Count == o.Segments.Count && Segments.Zip(o.Segments).All(p => p.First == p.Second);
}
