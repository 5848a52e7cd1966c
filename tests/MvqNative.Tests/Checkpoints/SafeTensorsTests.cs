// SafeTensorsTests.cs: safetensors round trips, the byte layout against the spec, validation errors, atomic writes.
using System.Buffers.Binary;
using System.Text;
using MvqNative.Checkpoints;
using Xunit;

namespace MvqNative.Tests.Checkpoints;

public class SafeTensorsTests
{
    private static readonly Dictionary<string, string> NoMetadata = new();

    /// <summary>A file built by hand: u64 LE header length, the header text as given, then the data bytes.</summary>
    private static void WriteRaw(string path, string header, byte[] data, ulong? lengthOverride = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, lengthOverride ?? (ulong)h.Length);
        File.WriteAllBytes(path, [.. len, .. h, .. data]);
    }

    [Fact]
    public void RoundTripsTensorsAndMetadata()
    {
        using var dir = new TempDir();
        var path = dir.File("model.safetensors");
        var rng = new Random(1);
        var w = Enumerable.Range(0, 6).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var tensors = new[]
        {
            SafeTensor.FromFloats("encoder.conv.weight", [2, 3], w),
            SafeTensor.FromInt32s("codes", [4], [1, -2, 3, int.MaxValue]),
            SafeTensor.FromInt64s("step", [], [123456789012L]),
            new SafeTensor("mask", SafeDType.U8, [3], [0, 1, 255]),
            SafeTensor.FromFloats("empty", [0, 5], []),
            SafeTensor.FromFloats("bias", [1], [float.NegativeInfinity]),
        };
        var meta = new Dictionary<string, string> { ["format"] = "mvq", ["config"] = "{\"k\": 512}", ["名前"] = "ü\n" };
        SafeTensorsFile.Write(path, tensors, meta);

        var back = SafeTensorsFile.Read(path);
        Assert.Equal(tensors.Select(t => t.Name), back.Tensors.Select(t => t.Name));
        foreach (var t in tensors)
        {
            var b = back[t.Name];
            Assert.Equal(t.DType, b.DType);
            Assert.Equal(t.Shape, b.Shape);
            Assert.Equal(t.Data, b.Data);
        }
        Assert.Equal(w, back["encoder.conv.weight"].ToFloats());
        Assert.Equal([1, -2, 3, int.MaxValue], back["codes"].ToInt32s());
        Assert.Equal([123456789012L], back["step"].ToInt64s());
        Assert.Equal(meta.OrderBy(kv => kv.Key), back.Metadata.OrderBy(kv => kv.Key));
        Assert.Throws<InvalidOperationException>(() => back["codes"].ToFloats());
    }

    [Fact]
    public void HeaderLayoutMatchesTheSpecByteForByte()
    {
        using var dir = new TempDir();
        var path = dir.File("w.safetensors");
        SafeTensorsFile.Write(path, [SafeTensor.FromFloats("w", [2], [1f, -2f])], new Dictionary<string, string> { ["a"] = "b" });

        // Built by hand from the spec: 79 bytes of JSON padded with one space to 80 (a multiple of 8),
        // __metadata__ first as the reference implementation writes it, then 1.0f and -2.0f little-endian.
        const string json = "{\"__metadata__\":{\"a\":\"b\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} ";
        var expected = new List<byte> { 80, 0, 0, 0, 0, 0, 0, 0 };
        expected.AddRange(Encoding.ASCII.GetBytes(json));
        expected.AddRange(new byte[] { 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0 });
        Assert.Equal(expected.ToArray(), File.ReadAllBytes(path));
    }

    [Fact]
    public void ReadsHandBuiltFilesWithAnyKeyOrder()
    {
        using var dir = new TempDir();
        var path = dir.File("h.safetensors");
        // Keys not in data order, no metadata, no padding (padding is optional for readers), an empty tensor.
        WriteRaw(path, "{\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[4,12]},\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[12,12]},\"a\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}",
            [7, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
        var r = SafeTensorsFile.Read(path);
        Assert.Equal(["a", "b", "z"], r.Tensors.Select(t => t.Name));
        Assert.Equal([7], r["a"].ToInt32s());
        Assert.Equal([-1L], r["b"].ToInt64s());
        Assert.Empty(r["z"].Data);
        Assert.Empty(r.Metadata);
    }

    private static void Rejects(string path, string expect)
    {
        var e = Assert.Throws<MvqInputException>(() => SafeTensorsFile.Read(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(expect, e.Message);
    }

    [Fact]
    public void TruncatedFilesAreRejected()
    {
        using var dir = new TempDir();
        var path = dir.File("t.safetensors");
        SafeTensorsFile.Write(path, [SafeTensor.FromFloats("w", [4, 4], new float[16])], NoMetadata);
        var b = File.ReadAllBytes(path);
        File.WriteAllBytes(path, b[..^3]);
        Rejects(path, "past the");
        File.WriteAllBytes(path, b[..30]);
        Rejects(path, "header length");
        File.WriteAllBytes(path, b[..5]);
        Rejects(path, "8-byte header length");
        File.WriteAllBytes(path, [.. b, 0]);
        Rejects(path, "trailing");
    }

    [Theory]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", "JSON")]
    [InlineData("[1,2,3]                                 ", "start with '{'")]
    [InlineData("{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", "F16")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "span 4")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "non-negative")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", "end before begin")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", "data_offsets")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "twice")]
    [InlineData("{\"__metadata__\":{\"a\":1},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "not a string")]
    [InlineData("{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", "overlap")]
    [InlineData("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", "hole")]
    [InlineData("{\"w\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "past the")]
    public void BadHeadersAreRejected(string header, string expect)
    {
        using var dir = new TempDir();
        var path = dir.File("bad.safetensors");
        WriteRaw(path, header, [1, 2, 3, 4]);
        Rejects(path, expect);
    }

    [Fact]
    public void AbsurdHeaderLengthIsRejectedBeforeAllocating()
    {
        using var dir = new TempDir();
        var path = dir.File("len.safetensors");
        WriteRaw(path, "{}", [], ulong.MaxValue);
        Rejects(path, "header length");
        WriteRaw(path, "{}", [], 1000);
        Rejects(path, "runs past the end");
        WriteRaw(path, "{\"w\":1 \xff}", []);
        Rejects(path, "header");
    }

    private static IEnumerable<SafeTensor> ThrowsMidway()
    {
        yield return SafeTensor.FromFloats("a", [2], [1f, 2f]);
        throw new InvalidOperationException("enumerator failed");
    }

    [Fact]
    public void FailedWriteLeavesThePreviousFileIntact()
    {
        using var dir = new TempDir();
        var path = dir.File("ckpt.safetensors");
        SafeTensorsFile.Write(path, [SafeTensor.FromFloats("a", [1], [42f])], new Dictionary<string, string> { ["step"] = "1" });
        var before = File.ReadAllBytes(path);

        var e = Assert.Throws<InvalidOperationException>(() => SafeTensorsFile.Write(path, ThrowsMidway(), NoMetadata));
        Assert.Equal("enumerator failed", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([42f], SafeTensorsFile.Read(path)["a"].ToFloats());
        Assert.Equal([path], Directory.GetFiles(dir.Path)); // the temp file is gone

        // Duplicate names fail after the temp file exists: same guarantee.
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(path,
            [SafeTensor.FromFloats("a", [1], [1f]), SafeTensor.FromFloats("a", [1], [2f])], NoMetadata));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void TensorConstructorChecksShapeAgainstBytes()
    {
        Assert.Throws<ArgumentException>(() => new SafeTensor("x", SafeDType.F32, [3], new byte[8]));
        Assert.Throws<ArgumentException>(() => new SafeTensor("__metadata__", SafeDType.U8, [0], []));
    }
}
