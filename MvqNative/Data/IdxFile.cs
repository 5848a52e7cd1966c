// IdxFile.cs: reader and writer for IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
using System.Buffers.Binary;
using System.IO.Compression;

namespace MvqNative.Data;

/// <summary>
/// One IDX file: magic <c>00 00 TYPE NDIM</c>, NDIM big-endian int32 dimensions, then the elements in
/// row-major order. Only the unsigned-byte type (0x08) is supported, which is what MNIST-style datasets use.
/// </summary>
public sealed class IdxFile
{
    /// <summary>IDX type code for unsigned bytes.</summary>
    public const byte UByte = 0x08;

    // 2 GiB of decompressed data is far above any image dataset this library trains on; it bounds a gzip bomb.
    private const long MaxBytes = int.MaxValue - 64;

    /// <param name="dims">Dimensions, outermost first (e.g. [N, 28, 28]).</param>
    /// <param name="data">Elements, row-major; length must equal the product of <paramref name="dims"/>.</param>
    public IdxFile(int[] dims, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(dims);
        ArgumentNullException.ThrowIfNull(data);
        if (dims.Length is < 1 or > 255) throw new ArgumentException("an IDX file has 1..255 dimensions", nameof(dims));
        long n = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new ArgumentException("dimensions must be non-negative", nameof(dims));
            n *= d;
            if (n > MaxBytes) throw new ArgumentException("IDX data too large", nameof(dims));
        }
        if (n != data.Length) throw new ArgumentException($"data has {data.Length} bytes, dims say {n}", nameof(data));
        Dims = dims;
        Data = data;
    }

    /// <summary>Dimensions, outermost first.</summary>
    public int[] Dims { get; }

    /// <summary>Elements (unsigned bytes), row-major.</summary>
    public byte[] Data { get; }

    /// <summary>
    /// Reads an IDX file, raw or gzip (detected by the gzip magic bytes, whatever the extension).
    /// Checks the magic, the type (ubyte), the dimensions, and that the data is exactly as long as the header says.
    /// </summary>
    /// <exception cref="MvqInputException">The file is missing, unreadable, truncated, corrupt or not ubyte IDX.</exception>
    public static IdxFile Read(string path)
    {
        byte[] bytes = ReadAllDecompressed(path);
        return Parse(path, bytes);
    }

    /// <summary>Writes an IDX ubyte file atomically; gzip-compressed when <paramref name="gzip"/> is true.</summary>
    public void Write(string path, bool gzip = false)
    {
        IO.AtomicFile.Write(path, fs =>
        {
            using var z = gzip ? new GZipStream(fs, CompressionLevel.Fastest, leaveOpen: true) : null;
            Stream s = (Stream?)z ?? fs;
            Span<byte> head = stackalloc byte[4];
            head[0] = 0; head[1] = 0; head[2] = UByte; head[3] = (byte)Dims.Length;
            s.Write(head);
            foreach (var d in Dims)
            {
                BinaryPrimitives.WriteInt32BigEndian(head, d);
                s.Write(head);
            }
            s.Write(Data);
        });
    }

    private static byte[] ReadAllDecompressed(string path)
    {
        if (!File.Exists(path)) throw new MvqInputException(path, "file not found");
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            Span<byte> magic = stackalloc byte[2];
            int got = fs.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
            fs.Position = 0;
            bool gz = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
            if (!gz)
            {
                if (fs.Length > MaxBytes) throw new MvqInputException(path, $"file is {fs.Length} bytes, too large for an IDX dataset");
                var raw = new byte[fs.Length];
                fs.ReadExactly(raw);
                return raw;
            }
            using var z = new GZipStream(fs, CompressionMode.Decompress);
            using var ms = new MemoryStream();
            var buf = new byte[1 << 16];
            int n;
            while ((n = z.Read(buf)) > 0)
            {
                if (ms.Length + n > MaxBytes) throw new MvqInputException(path, "gzip data decompresses to more than 2 GiB");
                ms.Write(buf, 0, n);
            }
            return ms.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new MvqInputException(path, $"corrupt gzip data ({e.Message})", e);
        }
        catch (EndOfStreamException e)
        {
            throw new MvqInputException(path, "file ended early (truncated)", e);
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            throw new MvqInputException(path, $"cannot read ({e.Message})", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new MvqInputException(path, "permission denied", e);
        }
    }

    private static IdxFile Parse(string path, byte[] b)
    {
        if (b.Length < 4) throw new MvqInputException(path, $"only {b.Length} bytes; an IDX file starts with a 4-byte magic (truncated or not IDX)");
        if (b[0] != 0 || b[1] != 0)
            throw new MvqInputException(path, $"bad IDX magic {b[0]:x2} {b[1]:x2} {b[2]:x2} {b[3]:x2} (expected 00 00 08 NDIM)");
        if (b[2] != UByte)
            throw new MvqInputException(path, $"IDX element type 0x{b[2]:x2} is not supported (only unsigned byte, 0x08)");
        int ndim = b[3];
        if (ndim == 0) throw new MvqInputException(path, "IDX header has 0 dimensions");
        long headerLen = 4 + 4L * ndim;
        if (b.Length < headerLen)
            throw new MvqInputException(path, $"truncated header: {ndim} dimensions need {headerLen} bytes, file has {b.Length}");
        var dims = new int[ndim];
        long count = 1;
        for (int i = 0; i < ndim; i++)
        {
            int d = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(4 + 4 * i));
            if (d < 0) throw new MvqInputException(path, $"dimension {i} is negative ({d})");
            dims[i] = d;
            count *= d;
            if (count > MaxBytes) throw new MvqInputException(path, $"header dimensions [{string.Join(", ", dims[..(i + 1)])}...] are too large");
        }
        long have = b.Length - headerLen;
        if (have < count)
            throw new MvqInputException(path, $"truncated: header [{string.Join(", ", dims)}] needs {count} data bytes, file has {have}");
        if (have > count)
            throw new MvqInputException(path, $"{have - count} unexpected bytes after the data of [{string.Join(", ", dims)}] (corrupt header?)");
        var data = b.AsSpan((int)headerLen).ToArray();
        return new IdxFile(dims, data);
    }
}
