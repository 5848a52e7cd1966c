// The MVQ mask word convention (docs/model.md, "MVQ bottleneck"): a counter-based hash that
// gives every (seed, step, index, bit) its own 32-bit value, reproducible in CUDA C and Python.
//
// Exact formula (all arithmetic modulo 2^64, >> logical):
//   mix(z)   = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^ (z >> 31)
//              (the splitmix64 finaliser, a bijection of 64-bit words)
//   h        = mix(seed + 0x9E3779B97F4A7C15)
//   h        = mix(h ^ step); h = mix(h ^ index); h = mix(h ^ bit)
//   HashU32  = (uint)(h >> 32)
//   threshold(p) = ceil(double(float p) * 2^32)            (an integer in [0, 2^32])
//   bit i of MaskWord(seed, step, index, d2, p) is set (keep dimension i) iff
//       i < d2 and HashU32(seed, step, index, i) >= threshold(p)     (an integer compare)
// Training masks of step s: word[b, j] = MaskWord(seed, s, b*J + j, D2, p).
// Evaluation bank of J_eval words: word[j] = MaskWord(bank_seed, 2^64 - 1, j, D2, p).
// Fixed training bank (MvqConfig.FixedTrainBank): word[j] = MaskWord(seed, 2^64 - 2, j, D2, p).
// An int seed s enters as the 64-bit two's complement pattern of (long)s.
// Python:
//   M = (1 << 64) - 1
//   def mix(z): z ^= z >> 30; z = z * 0xBF58476D1CE4E5B9 & M; z ^= z >> 27; z = z * 0x94D049BB133111EB & M; return z ^ (z >> 31)
//   def hash_u32(seed, step, index, bit):
//       h = mix((seed + 0x9E3779B97F4A7C15) & M)
//       for x in (step, index, bit): h = mix(h ^ x)
//       return h >> 32
// Generation: TrainWords/Bank hash the (seed, step) prefix once and each index once, then the D2 bits
// eight at a time in 64-bit vector lanes (Vector512), splitting the words over threads for large
// batches. Every word is MaskWord's bit for bit (MaskHashTests compares them at every D2).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MvqNative.Backends.Cpu;

namespace MvqNative.Mvq;

/// <summary>
/// Mask words for Multiple-Hypotheses Dropout: D2-bit integers, bit i (value 1 &lt;&lt; i) set =
/// keep dimension i (no rescaling). Stateless and reproducible: the same inputs give the same
/// words on every platform (formula in this file's header).
/// </summary>
internal static class MaskHash
{
    /// <summary>Step value of the evaluation bank (never reached by training).</summary>
    public const ulong EvalStep = ulong.MaxValue;

    /// <summary>Step value of the fixed training bank (<see cref="Models.MvqConfig.FixedTrainBank"/>).</summary>
    public const ulong FixedTrainStep = ulong.MaxValue - 1;

    /// <summary>The splitmix64 finaliser: the one 64-bit mixer of the project's counter-based generators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Mix(ulong z)
    {
        unchecked
        {
            z ^= z >> 30; z *= 0xBF58476D1CE4E5B9UL;
            z ^= z >> 27; z *= 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    /// <summary>The 32-bit hash of (seed, step, index, bit).</summary>
    public static uint HashU32(ulong seed, ulong step, ulong index, uint bit)
    {
        ulong h = Mix(unchecked(seed + 0x9E3779B97F4A7C15UL));
        h = Mix(h ^ step);
        h = Mix(h ^ index);
        h = Mix(h ^ bit);
        return (uint)(h >> 32);
    }

    /// <summary>A seed as the hash takes it: the two's complement bits of a signed value.</summary>
    public static ulong Seed(long seed) => unchecked((ulong)seed);

    /// <summary>ceil(p * 2^32): a hash value at or above it keeps its bit.</summary>
    public static ulong Threshold(float dropRate)
    {
        if (!(dropRate >= 0 && dropRate < 1)) throw new ArgumentOutOfRangeException(nameof(dropRate), $"drop rate must be in [0, 1), got {dropRate}");
        return (ulong)Math.Ceiling((double)dropRate * 4294967296.0);
    }

    /// <summary>A D2-bit mask word: bit i set iff HashU32(seed, step, index, i) &gt;= ceil(p 2^32).</summary>
    /// <param name="seed">Seed of the mask stream.</param>
    /// <param name="step">Training step (or <see cref="EvalStep"/> / <see cref="FixedTrainStep"/> for banks).</param>
    /// <param name="index">Which mask of the step: b*J + j for training masks, j for banks.</param>
    /// <param name="d2">Number of bits, 1..32.</param>
    /// <param name="dropRate">p, the probability that a bit is cleared, in [0, 1).</param>
    public static uint MaskWord(ulong seed, ulong step, ulong index, int d2, float dropRate)
    {
        if (d2 is < 1 or > 32) throw new ArgumentOutOfRangeException(nameof(d2), $"mask width must be 1..32, got {d2}");
        ulong thr = Threshold(dropRate);
        uint w = 0;
        for (int i = 0; i < d2; i++)
            if (HashU32(seed, step, index, (uint)i) >= thr) w |= 1u << i;
        return w;
    }

    /// <summary>Training masks of one step: words[b*J + j] = MaskWord(seed, step, b*J + j, d2, p), [B*J].</summary>
    public static void TrainWords(Span<uint> words, long seed, ulong step, int d2, float dropRate) =>
        Words(words, Seed(seed), step, d2, dropRate);

    /// <summary>Words below this many hashed bits are generated on the calling thread.</summary>
    private const int ParallelBits = 1 << 16;

    /// <summary>words[i] = MaskWord(seed, step, i, d2, p) for every i: the same bits, about D2+1 mixes per word instead of 4 D2.</summary>
    public static unsafe void Words(Span<uint> words, ulong seed, ulong step, int d2, float dropRate)
    {
        if (d2 is < 1 or > 32) throw new ArgumentOutOfRangeException(nameof(d2), $"mask width must be 1..32, got {d2}");
        ulong thr = Threshold(dropRate);
        ulong prefix = Mix(Mix(unchecked(seed + 0x9E3779B97F4A7C15UL)) ^ step);
        int n = words.Length;
        fixed (uint* pw = words)
        {
            if ((long)n * d2 < ParallelBits || CpuParallel.Threads <= 1)
            {
                Range(pw, 0, n, prefix, d2, thr);
                return;
            }
            uint* p = pw; // a pointer the lambda can capture; the span stays fixed until For returns
            int grain = Math.Max(1, ParallelBits / d2);
            CpuParallel.For(n, grain, (s, e) => Range(p, s, e, prefix, d2, thr));
        }
    }

    private static unsafe void Range(uint* words, int start, int end, ulong prefix, int d2, ulong thr)
    {
        for (int i = start; i < end; i++) words[i] = WordAfterPrefix(Mix(prefix ^ (ulong)i), d2, thr);
    }

    /// <summary>The word whose index has hashed to <paramref name="h"/>: bit i set iff (mix(h ^ i) &gt;&gt; 32) &gt;= thr.</summary>
    private static uint WordAfterPrefix(ulong h, int d2, ulong thr)
    {
        uint w = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated && d2 >= 8)
        {
            var vh = Vector512.Create(h) ^ Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
            var vt = Vector512.Create(thr);
            for (; i + 8 <= d2; i += 8)
            {
                var z = vh ^ Vector512.Create((ulong)i);
                z ^= Vector512.ShiftRightLogical(z, 30); z *= Vector512.Create(0xBF58476D1CE4E5B9UL);
                z ^= Vector512.ShiftRightLogical(z, 27); z *= Vector512.Create(0x94D049BB133111EBUL);
                z ^= Vector512.ShiftRightLogical(z, 31);
                var keep = Vector512.GreaterThanOrEqual(Vector512.ShiftRightLogical(z, 32), vt);
                w |= (uint)keep.ExtractMostSignificantBits() << i;
            }
        }
        for (; i < d2; i++)
            if ((Mix(h ^ (ulong)i) >> 32) >= thr) w |= 1u << i;
        return w;
    }

    /// <summary>The evaluation bank: J words, word j = MaskWord(seed, <see cref="EvalStep"/>, j, d2, p).</summary>
    public static uint[] EvalBank(int seed, int j, int d2, float p) => Bank(seed, EvalStep, j, d2, p);

    /// <summary>J words drawn at a fixed step: word j = MaskWord(seed, step, j, d2, p).</summary>
    public static uint[] Bank(long seed, ulong step, int j, int d2, float p)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(j);
        var bank = new uint[j];
        Words(bank, Seed(seed), step, d2, p);
        return bank;
    }
}
