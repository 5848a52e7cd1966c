// MaskHash: the formula of its header (recomputed here with BigInteger, as Python would), the
// binary, unscaled masks, and reproducibility from the seed.
using System.Numerics;
using MvqNative.Backends.Cpu;
using MvqNative.Mvq;
using MvqNative.Ops;
using Xunit;

namespace MvqNative.Tests.Mvq;

public class MaskHashTests
{
    private static readonly BigInteger M64 = (BigInteger.One << 64) - 1;

    private static BigInteger Mix(BigInteger z)
    {
        z ^= z >> 30; z = z * 0xBF58476D1CE4E5B9UL & M64;
        z ^= z >> 27; z = z * 0x94D049BB133111EBUL & M64;
        return z ^ (z >> 31);
    }

    /// <summary>The header's Python formula, in arbitrary-precision integers.</summary>
    private static uint PythonHash(ulong seed, ulong step, ulong index, uint bit)
    {
        var h = Mix((seed + (BigInteger)0x9E3779B97F4A7C15UL) & M64);
        foreach (var x in new BigInteger[] { step, index, bit }) h = Mix(h ^ x);
        return (uint)(h >> 32);
    }

    [Fact]
    public void HashMatchesTheDocumentedFormula()
    {
        var r = new Random(5);
        ulong[] edge = [0, 1, ulong.MaxValue, ulong.MaxValue - 1, 0x8000000000000000UL];
        for (int t = 0; t < 300; t++)
        {
            ulong seed = t < 5 ? edge[t] : (ulong)r.NextInt64() * 3, step = t % 7 == 0 ? ulong.MaxValue : (ulong)r.Next(1000);
            ulong index = (ulong)r.Next(1 << 20); uint bit = (uint)r.Next(32);
            Assert.Equal(PythonHash(seed, step, index, bit), MaskHash.HashU32(seed, step, index, bit));
        }
    }

    [Fact]
    public void MaskWordFollowsTheThresholdRule()
    {
        foreach (float p in new[] { 0f, 0.25f, 0.5f, 0.9f })
        {
            ulong thr = (ulong)Math.Ceiling(p * 4294967296.0);
            for (ulong i = 0; i < 50; i++)
            {
                uint w = MaskHash.MaskWord(11, 3, i, 13, p);
                for (int b = 0; b < 32; b++)
                {
                    bool expected = b < 13 && MaskHash.HashU32(11, 3, i, (uint)b) >= thr;
                    Assert.Equal(expected, ((w >> b) & 1) != 0);
                }
            }
        }
        Assert.Equal((1u << 7) - 1, MaskHash.MaskWord(1, 2, 3, 7, 0f));
        Assert.Equal(uint.MaxValue, MaskHash.MaskWord(1, 2, 3, 32, 0f));
    }

    [Fact]
    public void KeepRateIsOneMinusP()
    {
        const int n = 4000, d2 = 16;
        foreach (float p in new[] { 0.5f, 0.2f })
        {
            var w = new uint[n];
            MaskHash.TrainWords(w, 3, 17, d2, p);
            double kept = w.Sum(x => (double)BitOperations.PopCount(x)) / (n * d2);
            // 64000 Bernoulli draws: the standard error is below 0.002.
            Assert.InRange(kept, 1 - p - 0.01, 1 - p + 0.01);
        }
    }

    [Fact]
    public void MasksAreReproducibleFromTheSeedAndDifferPerStep()
    {
        var a = new uint[64]; var b = new uint[64]; var c = new uint[64]; var d = new uint[64];
        MaskHash.TrainWords(a, 42, 5, 16, 0.5f);
        MaskHash.TrainWords(b, 42, 5, 16, 0.5f);
        MaskHash.TrainWords(c, 42, 6, 16, 0.5f);
        MaskHash.TrainWords(d, 43, 5, 16, 0.5f);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.NotEqual(a, d);
        Assert.Equal(MaskHash.EvalBank(7, 20, 16, 0.5f), MaskHash.EvalBank(7, 20, 16, 0.5f));
        Assert.Equal(MaskHash.Bank(7, MaskHash.EvalStep, 20, 16, 0.5f), MaskHash.EvalBank(7, 20, 16, 0.5f));
        // A bank of 30 is the bank of 20 extended: word j depends only on j.
        Assert.Equal(MaskHash.EvalBank(7, 20, 16, 0.5f), MaskHash.EvalBank(7, 30, 16, 0.5f)[..20]);
    }

    [Fact]
    public void AppliedMasksAreBinaryAndNeverRescaled()
    {
        var cpu = CpuBackend.Instance;
        var r = new Random(1);
        int b = 4, l = 3, d2 = 9;
        var g = Enumerable.Range(0, b * l * d2).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var words = new uint[b];
        MaskHash.TrainWords(words, 9, 0, d2, 0.5f);
        using var tg = cpu.FromArray(g, b, l, d2);
        using var tw = cpu.FromArray(words.Select(x => (int)x).ToArray(), b);
        using var y = cpu.Empty(b, l, d2);
        MvqOps.MaskApply.Run(cpu, [tg, tw], [y]);
        var ya = y.ToArray();
        for (int i = 0; i < ya.Length; i++)
        {
            int bi = i / (l * d2), dim = i % d2;
            bool keep = ((words[bi] >> dim) & 1) != 0;
            Assert.Equal(keep ? g[i] : 0f, ya[i]);
        }
    }

    /// <summary>
    /// The fast generator (prefix hashed once, eight bits per vector, threads for large batches) gives
    /// MaskWord's bits at every width 1..32 (vector body and scalar tail), several drop rates and seeds,
    /// and over a batch large enough to be split across threads.
    /// </summary>
    [Theory]
    [InlineData(0.5f, 3L, 0UL)]
    [InlineData(0.25f, -7L, 12345UL)]
    [InlineData(0f, 0L, ulong.MaxValue)]
    [InlineData(0.9f, long.MinValue, ulong.MaxValue - 1)]
    public void FastWordsEqualMaskWordAtEveryWidth(float p, long seed, ulong step)
    {
        for (int d2 = 1; d2 <= 32; d2++)
        {
            int n = d2 == 16 ? 20000 : 300; // 20000 x 16 bits is above the threshold for threads
            var fast = new uint[n];
            MaskHash.TrainWords(fast, seed, step, d2, p);
            for (int i = 0; i < n; i++)
                Assert.True(MaskHash.MaskWord(MaskHash.Seed(seed), step, (ulong)i, d2, p) == fast[i], $"d2 {d2}, word {i}");
        }
        Assert.Equal(Enumerable.Range(0, 50).Select(j => MaskHash.MaskWord(MaskHash.Seed(seed), step, (ulong)j, 13, p)), MaskHash.Bank(seed, step, 50, 13, p));
    }
}
