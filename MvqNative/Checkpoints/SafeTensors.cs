// SafeTensors.cs: reader and atomic writer for the safetensors format (Hugging Face), with strict validation.
//
// Layout: 8-byte little-endian u64 N; N bytes of UTF-8 JSON (padded with spaces to a multiple of 8)
// {"__metadata__": {str: str}, NAME: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...};
// then the data section. Offsets are relative to the start of the data section, tensors are little-endian and
// row-major, and the tensors tile the data section exactly (no holes, no overlaps).
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using MvqNative.IO;

namespace MvqNative.Checkpoints;

/// <summary>Element types this library reads and writes (a subset of the safetensors dtypes).</summary>
internal enum SafeDType
{
    /// <summary>32-bit float, "F32".</summary>
    F32,
    /// <summary>32-bit signed integer, "I32".</summary>
    I32,
    /// <summary>64-bit signed integer, "I64".</summary>
    I64,
    /// <summary>Unsigned byte, "U8".</summary>
    U8,
}

/// <summary>One named tensor: dtype, shape and its little-endian bytes (row-major).</summary>
internal sealed class SafeTensor
{
    /// <param name="name">Key in the file (e.g. "encoder.conv1.weight"); not "__metadata__", not empty.</param>
    /// <param name="dtype">Element type.</param>
    /// <param name="shape">Dimensions (empty for a scalar).</param>
    /// <param name="data">Little-endian bytes; length must be product(shape) * element size.</param>
    public SafeTensor(string name, SafeDType dtype, long[] shape, byte[] data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name == SafeTensorsFile.MetadataKey) throw new ArgumentException("'__metadata__' is reserved", nameof(name));
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        long n = SafeTensorsFile.ElementCount(shape) ?? throw new ArgumentException("shape has a negative or overflowing dimension", nameof(shape));
        long bytes = n * SafeTensorsFile.ElementSize(dtype);
        if (bytes != data.LongLength)
            throw new ArgumentException($"tensor {name}: shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes, got {data.LongLength}", nameof(data));
        Name = name;
        DType = dtype;
        Shape = shape;
        Data = data;
    }

    /// <summary>Key in the file.</summary>
    public string Name { get; }
    /// <summary>Element type.</summary>
    public SafeDType DType { get; }
    /// <summary>Dimensions, outermost first.</summary>
    public long[] Shape { get; }
    /// <summary>Raw little-endian bytes.</summary>
    public byte[] Data { get; }
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Data.LongLength / SafeTensorsFile.ElementSize(DType);

    /// <summary>An F32 tensor holding a copy of <paramref name="values"/>.</summary>
    public static SafeTensor FromFloats(string name, long[] shape, ReadOnlySpan<float> values) =>
        new(name, SafeDType.F32, shape, ToBytes(values));

    /// <summary>An I32 tensor holding a copy of <paramref name="values"/>.</summary>
    public static SafeTensor FromInt32s(string name, long[] shape, ReadOnlySpan<int> values) =>
        new(name, SafeDType.I32, shape, ToBytes(values));

    /// <summary>An I64 tensor holding a copy of <paramref name="values"/>.</summary>
    public static SafeTensor FromInt64s(string name, long[] shape, ReadOnlySpan<long> values) =>
        new(name, SafeDType.I64, shape, ToBytes(values));

    /// <summary>The values of an F32 tensor.</summary>
    public float[] ToFloats() => FromBytes<float>(SafeDType.F32);
    /// <summary>The values of an I32 tensor.</summary>
    public int[] ToInt32s() => FromBytes<int>(SafeDType.I32);
    /// <summary>The values of an I64 tensor.</summary>
    public long[] ToInt64s() => FromBytes<long>(SafeDType.I64);

    public override string ToString() => $"{Name} {DType} [{string.Join(", ", Shape)}]";

    private static byte[] ToBytes<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        if (!BitConverter.IsLittleEndian) ReverseEach(bytes, Unsafe.SizeOf<T>());
        return bytes;
    }

    private T[] FromBytes<T>(SafeDType expected) where T : unmanaged
    {
        if (DType != expected) throw new InvalidOperationException($"tensor {Name} is {DType}, not {expected}");
        var copy = (byte[])Data.Clone();
        if (!BitConverter.IsLittleEndian) ReverseEach(copy, Unsafe.SizeOf<T>());
        return MemoryMarshal.Cast<byte, T>(copy).ToArray();
    }

    private static void ReverseEach(byte[] b, int size)
    {
        for (int i = 0; i + size <= b.Length; i += size) b.AsSpan(i, size).Reverse();
    }
}

/// <summary>The tensors and string metadata of one safetensors file, in file order.</summary>
internal sealed class SafeTensorsContent
{
    internal SafeTensorsContent(IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
        ByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Tensors in the order of their data offsets.</summary>
    public IReadOnlyList<SafeTensor> Tensors { get; }
    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, SafeTensor> ByName { get; }
    /// <summary>The "__metadata__" map (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    public SafeTensor this[string name] => ByName[name];
}

/// <summary>Reads and writes safetensors files (https://github.com/huggingface/safetensors, format section).</summary>
internal static class SafeTensorsFile
{
    /// <summary>The reserved header key of the string-to-string metadata map.</summary>
    public const string MetadataKey = "__metadata__";

    // The reference implementation refuses headers over 100 MB; so do we, before allocating.
    private const long MaxHeaderBytes = 100_000_000;

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // keep names readable; still valid JSON
        Indented = false,
    };

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(SafeDType dtype) => dtype switch
    {
        SafeDType.F32 or SafeDType.I32 => 4,
        SafeDType.I64 => 8,
        SafeDType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>The header spelling of <paramref name="dtype"/> ("F32", "I32", "I64", "U8").</summary>
    public static string DTypeName(SafeDType dtype) => dtype.ToString();

    internal static long? ElementCount(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) return null;
            try { n = checked(n * d); } catch (OverflowException) { return null; }
        }
        return n;
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (in the given order, contiguous) and <paramref name="metadata"/> to
    /// <paramref name="path"/> atomically: a temp file in the same directory is written, flushed to disk and renamed
    /// over the target, so a failure at any point (including <paramref name="tensors"/> throwing while enumerated)
    /// leaves the previous file as it was.
    /// </summary>
    /// <exception cref="ArgumentException">Duplicate tensor names.</exception>
    public static void Write(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(metadata);
        AtomicFile.Write(path, fs =>
        {
            // Enumerated inside the atomic write: an enumerator that throws leaves only a temp file, which is removed.
            var list = tensors.ToList();
            var header = BuildHeader(list, metadata);
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            fs.Write(len);
            fs.Write(header);
            foreach (var t in list) fs.Write(t.Data);
        });
    }

    /// <summary>The JSON header for these tensors, padded with spaces to a multiple of 8 bytes.</summary>
    internal static byte[] BuildHeader(IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartObject();
            if (metadata.Count > 0)
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                if (!seen.Add(t.Name)) throw new ArgumentException($"duplicate tensor name {t.Name}", nameof(tensors));
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", DTypeName(t.DType));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.Data.LongLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Data.LongLength;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    /// <summary>
    /// Reads a safetensors file, validating it completely: header length within the file, valid UTF-8 JSON object,
    /// every entry with a known dtype, a non-negative shape and [begin, end] offsets, shape product * element size
    /// = end - begin, and the tensors tiling the data section exactly (in bounds, no overlap, no hole, no trailing bytes).
    /// </summary>
    /// <exception cref="MvqInputException">Any violation, or the file cannot be read; the message names the file.</exception>
    public static SafeTensorsContent Read(string path) => Read(path, Limits.CheckpointBytes);

    /// <summary>As <see cref="Read(string)"/>, refusing a file over <paramref name="maxBytes"/> before reading it.</summary>
    public static SafeTensorsContent Read(string path, long maxBytes)
    {
        // Regular files only (a FIFO or /dev/zero would block or never end), and within the size limit.
        long size = InputFile.RequireRegular(path, "safetensors file");
        if (size > maxBytes) throw new MvqInputException(path, $"file is {Limits.Size(size)}, over the {Limits.Size(maxBytes)} limit for a checkpoint (raise it with {Limits.CheckpointVar})");
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            long fileLen = fs.Length;
            if (fileLen < 8) throw Bad(path, $"only {fileLen} bytes; a safetensors file starts with an 8-byte header length");
            Span<byte> len = stackalloc byte[8];
            fs.ReadExactly(len);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
            if (n > MaxHeaderBytes) throw Bad(path, $"header length {n} is over the 100 MB limit (corrupt or not safetensors)");
            if ((long)n > fileLen - 8) throw Bad(path, $"header length {n} runs past the end of the {fileLen}-byte file (truncated?)");
            if (n < 2) throw Bad(path, $"header length {n} is too short for a JSON object");
            var header = new byte[n];
            fs.ReadExactly(header);
            long dataLen = fileLen - 8 - (long)n;

            var (entries, metadata) = ParseHeader(path, header);
            CheckLayout(path, entries, dataLen);

            var tensors = new List<SafeTensor>(entries.Count);
            long dataStart = 8 + (long)n;
            foreach (var e in entries)
            {
                var bytes = new byte[e.End - e.Begin];
                fs.Position = dataStart + e.Begin;
                fs.ReadExactly(bytes);
                tensors.Add(new SafeTensor(e.Name, e.DType, e.Shape, bytes));
            }
            return new SafeTensorsContent(tensors, metadata);
        }
        catch (MvqInputException) { throw; }
        catch (EndOfStreamException e) { throw Bad(path, "file ended early (truncated)", e); }
        catch (IOException e) { throw Bad(path, $"cannot read ({InputFile.Reason(e, path)})", e); }
        catch (UnauthorizedAccessException e) { throw Bad(path, "permission denied", e); }
    }

    private sealed record Entry(string Name, SafeDType DType, long[] Shape, long Begin, long End);

    private static MvqInputException Bad(string path, string problem, Exception? inner = null) => new(path, problem, inner);

    private static (List<Entry>, Dictionary<string, string>) ParseHeader(string path, byte[] header)
    {
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (header[0] != (byte)'{') throw Bad(path, "header does not start with '{' (corrupt or not safetensors)");
        JsonDocument doc;
        try
        {
            // The decoder throws on invalid UTF-8, which the spec forbids.
            new UTF8Encoding(false, true).GetCharCount(header);
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException or ArgumentException)
        {
            throw Bad(path, $"header is not valid UTF-8 JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "header is not a JSON object");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!names.Add(prop.Name)) throw Bad(path, $"header has the key '{prop.Name}' twice");
                var v = prop.Value;
                if (prop.Name == MetadataKey)
                {
                    if (v.ValueKind != JsonValueKind.Object) throw Bad(path, "__metadata__ is not an object");
                    foreach (var m in v.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw Bad(path, $"__metadata__ value of '{m.Name}' is not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Bad(path, $"__metadata__ has the key '{m.Name}' twice");
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, prop.Name, v));
            }
        }
        return (entries, metadata);
    }

    private static Entry ParseEntry(string path, string name, JsonElement v)
    {
        string where = $"tensor '{name}'";
        if (v.ValueKind != JsonValueKind.Object) throw Bad(path, $"{where} is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Bad(path, $"{where} has no string dtype");
        var dtype = dt.GetString() switch
        {
            "F32" => SafeDType.F32,
            "I32" => SafeDType.I32,
            "I64" => SafeDType.I64,
            "U8" => SafeDType.U8,
            var other => throw Bad(path, $"{where} has dtype '{other}'; supported: F32, I32, I64, U8"),
        };
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Bad(path, $"{where} has no shape array");
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var x) || x < 0) throw Bad(path, $"{where} has a shape entry that is not a non-negative integer");
            shape[i++] = x;
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad(path, $"{where} has no data_offsets [begin, end]");
        long begin = ReadOffset(path, where, off[0]), end = ReadOffset(path, where, off[1]);
        if (end < begin) throw Bad(path, $"{where} has data_offsets [{begin}, {end}] with end before begin");
        long count = ElementCount(shape) ?? throw Bad(path, $"{where} shape [{string.Join(", ", shape)}] overflows");
        long want;
        try { want = checked(count * ElementSize(dtype)); }
        catch (OverflowException) { throw Bad(path, $"{where} shape [{string.Join(", ", shape)}] overflows"); }
        if (want != end - begin)
            throw Bad(path, $"{where}: shape [{string.Join(", ", shape)}] of {dtype} is {want} bytes but data_offsets [{begin}, {end}] span {end - begin}");
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long ReadOffset(string path, string where, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var x) || x < 0)
            throw Bad(path, $"{where} has a data offset that is not a non-negative integer");
        return x;
    }

    private static void CheckLayout(string path, List<Entry> entries, long dataLen)
    {
        // File order = data order; sorting by (begin, end) puts empty tensors before the tensor that starts there.
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long at = 0;
        foreach (var e in entries)
        {
            if (e.End > dataLen)
                throw Bad(path, $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}] run past the {dataLen}-byte data section (truncated?)");
            if (e.Begin < at)
                throw Bad(path, $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}] overlap the previous tensor (which ends at {at})");
            if (e.Begin > at)
                throw Bad(path, $"hole in the data section: bytes [{at}, {e.Begin}) belong to no tensor");
            at = e.End;
        }
        if (at != dataLen)
            throw Bad(path, $"data section is {dataLen} bytes but the tensors cover {at} (trailing bytes or truncated)");
    }
}
