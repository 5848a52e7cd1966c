// FuzzTests.cs: seeded mutations of valid safetensors, IDX (raw and gzip), codes.json and image files. Every mutant
// must load or be refused with MvqInputException: no other exception, no hang, no allocation past a bound.
// MVQ_FUZZ_ITERATIONS (mutants per loader, default 150) and MVQ_FUZZ_SEED (default 1) make a longer run of the same
// fuzzer (docs/guarantees.md).
using System.Globalization;
using System.Text;
using MvqNative.Backends.Cpu;
using MvqNative.Checkpoints;
using MvqNative.Cli;
using MvqNative.Data;
using MvqNative.IO;
using MvqNative.Models;
using Xunit;

namespace MvqNative.Tests.Hostile;

public sealed class FuzzTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static int Iterations => int.TryParse(Environment.GetEnvironmentVariable("MVQ_FUZZ_ITERATIONS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 150;
    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("MVQ_FUZZ_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 1;

    /// <summary>Managed bytes one load may allocate: a 64-megapixel frame (the pixel limit) as RGB plus its resize, with room.</summary>
    private const long AllocationBound = 320L << 20;

    /// <summary>A load that takes this long is a hang (valid inputs here load in milliseconds).</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    public static TheoryData<string> Loaders() => new("safetensors", "idx", "idx.gz", "codes", "png", "jpeg", "bmp", "gif");

    [Theory]
    [MemberData(nameof(Loaders))]
    public void MutantsLoadOrAreRefused(string kind)
    {
        var (valid, load) = Make(kind);
        load(Write("valid", valid)); // the unmutated file loads
        var rng = new Random(HashCode.Combine(Seed, kind.GetHashCode(StringComparison.Ordinal) & 0xFFFF));
        int refused = 0, loaded = 0;
        for (int i = 0; i < Iterations; i++)
        {
            var mutant = Mutate(valid, rng, kind == "codes");
            var path = Write("m" + (i % 4), mutant);
            Exception? error = null;
            long allocated = 0;
            var t = new Thread(() =>
            {
                long a0 = GC.GetAllocatedBytesForCurrentThread();
                try { load(path); }
                catch (Exception e) { error = e; }
                allocated = GC.GetAllocatedBytesForCurrentThread() - a0;
            }, 16 << 20);
            t.Start();
            Assert.True(t.Join(HangGuard), $"{kind} mutant {i} (seed {Seed}) hung");
            if (error is MvqInputException) refused++;
            else if (error is null) loaded++;
            else Assert.Fail($"{kind} mutant {i} (seed {Seed}): {error.GetType().Name}: {error.Message}\n{error.StackTrace}");
            Assert.True(allocated < AllocationBound, $"{kind} mutant {i} (seed {Seed}) allocated {allocated >> 20} MiB");
        }
        Assert.Equal(Iterations, refused + loaded);
        Assert.True(refused > 0, $"no {kind} mutant was refused: the mutations do not reach the checks");
    }

    private string Write(string name, byte[] b)
    {
        var p = _tmp.File(name);
        File.WriteAllBytes(p, b);
        return p;
    }

    private (byte[] Valid, Action<string> Load) Make(string kind)
    {
        switch (kind)
        {
            case "safetensors":
            {
                var p = _tmp.File("seed.safetensors");
                SafeTensorsFile.Write(p, [
                    SafeTensor.FromFloats("a.weight", [3, 4], Enumerable.Range(0, 12).Select(i => i * 0.5f).ToArray()),
                    SafeTensor.FromInt32s("b", [5], [1, 2, 3, 4, 5]),
                    SafeTensor.FromInt64s("c", [], [7]),
                ], new Dictionary<string, string> { ["format"] = "mvqnative/1", ["step"] = "12" });
                return (File.ReadAllBytes(p), path => SafeTensorsFile.Read(path));
            }
            case "idx":
            case "idx.gz":
            {
                var p = _tmp.File("seed-idx3-ubyte");
                var data = new byte[6 * 8 * 8];
                new Random(3).NextBytes(data);
                new IdxFile([6, 8, 8], data).Write(p, gzip: kind == "idx.gz");
                return (File.ReadAllBytes(p), path => IdxDataset.Load("fuzz", path, null));
            }
            case "codes":
            {
                var model = new Autoencoder(CpuBackend.Instance, EndToEnd.TrainingTests.SmallVq(HeadKind.Global), 1);
                var p = _tmp.File("seed-codes.json");
                int len = model.Bottleneck.CodeLength, k = model.Bottleneck.Segments[0].Vocabulary;
                CodesFile.Write(p, model, ["a.png", "b.png", "c.png"], Enumerable.Range(0, 3 * len).Select(i => (i * 7) % k).ToArray());
                return (File.ReadAllBytes(p), path => CodesFile.Read(path, model));
            }
            case "png": return (HostileKit.Png(12, 10), path => ImageFile.Load(path, 1, 8, 8, convert: true));
            case "jpeg": return (HostileKit.Jpeg(24, 16), path => ImageFile.Load(path, 1, 8, 8, convert: true));
            case "bmp": return (HostileKit.Bmp(12, 10), path => ImageFile.Load(path, 1, 8, 8, convert: true));
            case "gif": return (HostileKit.Gif(12, 10), path => ImageFile.Load(path, 1, 8, 8, convert: true));
            default: throw new ArgumentException(kind);
        }
    }

    private static readonly byte[] Interesting = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0x20, (byte)'{', (byte)'"', (byte)'9'];
    private static readonly int[] InterestingInts = [0, -1, int.MaxValue, int.MinValue, 0x7FFFFF, 65535, 1 << 30, 8];
    private static readonly string[] JsonValues = ["null", "-1", "1e308", "2147483648", "\"x\"", "[]", "{}", "true", "0.5", "99999999999999999999"];

    /// <summary>One to four random mutations of <paramref name="src"/>.</summary>
    internal static byte[] Mutate(byte[] src, Random rng, bool json)
    {
        var b = new List<byte>(src);
        int n = 1 + rng.Next(4);
        for (int m = 0; m < n && b.Count > 0; m++)
        {
            int at = rng.Next(b.Count);
            switch (rng.Next(json ? 8 : 7))
            {
                case 0: b[at] ^= (byte)(1 << rng.Next(8)); break;                          // bit flip
                case 1: b[at] = Interesting[rng.Next(Interesting.Length)]; break;          // interesting byte
                case 2:                                                                    // 4-byte field, either endianness
                {
                    int v = InterestingInts[rng.Next(InterestingInts.Length)];
                    var bytes = BitConverter.GetBytes(v);
                    if (rng.Next(2) == 0) Array.Reverse(bytes);
                    for (int i = 0; i < 4 && at + i < b.Count; i++) b[at + i] = bytes[i];
                    break;
                }
                case 3: b.RemoveRange(at, b.Count - at); break;                            // truncate
                case 4: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(64))); break; // cut out
                case 5:                                                                    // insert random bytes
                {
                    var ins = new byte[1 + rng.Next(32)];
                    rng.NextBytes(ins);
                    b.InsertRange(at, ins);
                    break;
                }
                case 6:                                                                    // duplicate a slice
                {
                    int len = Math.Min(b.Count - at, 1 + rng.Next(256));
                    b.InsertRange(rng.Next(b.Count), b.GetRange(at, len));
                    break;
                }
                case 7:                                                                    // JSON: a number becomes another value
                {
                    var text = Encoding.UTF8.GetString(b.ToArray());
                    var nums = System.Text.RegularExpressions.Regex.Matches(text, @"-?\d+(\.\d+)?");
                    if (nums.Count == 0) break;
                    var hit = nums[rng.Next(nums.Count)];
                    text = text[..hit.Index] + JsonValues[rng.Next(JsonValues.Length)] + text[(hit.Index + hit.Length)..];
                    b = [.. Encoding.UTF8.GetBytes(text)];
                    break;
                }
            }
        }
        return b.ToArray();
    }
}
