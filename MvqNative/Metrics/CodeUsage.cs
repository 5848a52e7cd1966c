namespace MvqNative.Metrics;

/// <summary>How a vocabulary of codes is used over a split: fraction of entries used, perplexity exp(H).</summary>
internal sealed class CodeUsage
{
    private readonly long[] _counts;

    public CodeUsage(int vocabulary) => _counts = new long[vocabulary];

    public int Vocabulary => _counts.Length;
    public long Total { get; private set; }

    public void Add(int code)
    {
        if ((uint)code >= (uint)_counts.Length) throw new ArgumentOutOfRangeException(nameof(code), $"code {code} outside [0, {_counts.Length})");
        _counts[code]++;
        Total++;
    }

    public ReadOnlySpan<long> Counts => _counts;

    /// <summary>Fraction of entries used at least once.</summary>
    public double UsedFraction => _counts.Count(c => c > 0) / (double)_counts.Length;

    /// <summary>exp of the entropy (nats) of the empirical code distribution: 1 (one code) .. Vocabulary (uniform).</summary>
    public double Perplexity
    {
        get
        {
            if (Total == 0) return 0;
            double h = 0;
            foreach (var c in _counts) if (c > 0) { double p = c / (double)Total; h -= p * Math.Log(p); }
            return Math.Exp(h);
        }
    }
}
