// HashSampler.cs: the counter-based batch order of training with data on the device (device_step.cu's
// gather_batch computes the same indices on the GPU; the CPU uses this copy when asked for that order).
//
// Exact formula (64-bit unsigned arithmetic, mix = the splitmix64 finaliser of MaskHash.cs):
//   global image counter g = epoch * n + pos; image of (seed, epoch, pos):
//   bits = the smallest even number >= 2 with 2^bits >= n; half = bits / 2; mask = 2^half - 1
//   key = mix(mix(seed + 0x9E3779B97F4A7C15) ^ epoch)
//   x = pos; repeat { l = x >> half; r = x & mask;
//                     4 rounds: t = l ^ (mix(key ^ (round << 32 | r)) & mask); l = r; r = t;
//                     x = l << half | r } until x < n
// A balanced Feistel network is a bijection of [0, 2^bits), and walking its cycle until the value falls
// in [0, n) restricts it to a bijection of [0, n): each epoch visits every image once (expected walk < 4).
namespace MvqNative.Data;

/// <summary>The per-epoch keyed permutation used when batches are drawn on the device (formula in this file's header).</summary>
internal static class HashSampler
{
    private static ulong Mix(ulong z) => Mvq.MaskHash.Mix(z);

    /// <summary>The dataset index of position <paramref name="pos"/> of epoch <paramref name="epoch"/> (0 &lt;= pos &lt; n).</summary>
    public static int Index(int seed, long epoch, long pos, int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        if (pos < 0 || pos >= n) throw new ArgumentOutOfRangeException(nameof(pos), $"position {pos} outside [0, {n})");
        int bits = 2;
        while ((1UL << bits) < (ulong)n) bits += 2;
        int half = bits / 2;
        ulong mask = (1UL << half) - 1;
        ulong key = Mix(Mix(unchecked((ulong)(long)seed + 0x9E3779B97F4A7C15UL)) ^ unchecked((ulong)epoch));
        ulong x = (ulong)pos;
        do
        {
            ulong l = x >> half, r = x & mask;
            for (ulong round = 0; round < 4; round++)
            {
                ulong t = l ^ (Mix(key ^ ((round << 32) | r)) & mask);
                l = r; r = t;
            }
            x = (l << half) | r;
        } while (x >= (ulong)n);
        return (int)x;
    }

    /// <summary>The seed as the device kernel takes it (the 64-bit two's complement of the int seed).</summary>
    public static ulong DeviceSeed(int seed) => unchecked((ulong)(long)seed);
}
