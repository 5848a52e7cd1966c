// Tokens and bits per instance of a model's code. Comparisons between models state bits, not only
// tokens: MVQ's winner index w is one token but carries log2(J) bits, and it is counted.
using MvqNative.Models;

namespace MvqNative.Metrics;

/// <summary>Tokens per instance and bits per instance = sum over the code's integers of log2(vocabulary).</summary>
internal sealed record CodeBudget(int Tokens, double Bits, IReadOnlyDictionary<string, double> BitsPerSegment)
{
    public static CodeBudget Of(IReadOnlyList<CodeSegment> segments)
    {
        var per = segments.ToDictionary(s => s.Name, s => s.Length * Math.Log2(s.Vocabulary));
        return new CodeBudget(segments.Sum(s => s.Length), per.Values.Sum(), per);
    }
}
