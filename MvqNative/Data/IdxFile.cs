// IdxFile.cs: reader and writer for IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
using System.Buffers.Binary;
using System.IO.Compression;

namespace MvqNative.Data;

/// <summary>
/// One IDX file: magic <c>00 00 TYPE NDIM</c>, NDIM big-endian int32 dimensions, then the elements in
/// row-major order. Only the unsigned-byte type (0x08) is supported, which is what MNIST-style datasets use.
/// </summary>
internal sealed class IdxFile
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
        return ReadAllDecompressed(path);
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

    /// <summary>Largest dataset an IDX file may declare, in pixels (bytes): a quarter of the dataset limit, which holds floats.</summary>
    private static long MaxElements => Math.Min(MaxBytes, IO.Limits.DatasetBytes / 4);

    private static IdxFile ReadAllDecompressed(string path)
    {
        long size = IO.InputFile.RequireRegular(path, "IDX file");
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            Span<byte> magic = stackalloc byte[2];
            int got = fs.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
            fs.Position = 0;
            bool gz = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
            using var z = gz ? new GZipStream(fs, CompressionMode.Decompress) : null;
            Stream s = (Stream?)z ?? fs;
            // Header first (magic and up to 255 dimensions), so the data's size is known, checked against the limit
            // and allocated exactly once: a gzip bomb is refused from its header, never inflated into memory.
            var head = new byte[4];
            int h = s.ReadAtLeast(head, 4, throwOnEndOfStream: false);
            if (h < 4) throw new MvqInputException(path, $"only {h} bytes; an IDX file starts with a 4-byte magic (truncated or not IDX)");
            if (head[0] != 0 || head[1] != 0)
                throw new MvqInputException(path, $"bad IDX magic {head[0]:x2} {head[1]:x2} {head[2]:x2} {head[3]:x2} (expected 00 00 08 NDIM)");
            if (head[2] != UByte)
                throw new MvqInputException(path, $"IDX element type 0x{head[2]:x2} is not supported (only unsigned byte, 0x08)");
            int ndim = head[3];
            if (ndim == 0) throw new MvqInputException(path, "IDX header has 0 dimensions");
            var dimBytes = new byte[4 * ndim];
            int d = s.ReadAtLeast(dimBytes, dimBytes.Length, throwOnEndOfStream: false);
            if (d < dimBytes.Length)
                throw new MvqInputException(path, $"truncated header: {ndim} dimensions need {4 + 4 * ndim} bytes, file has {4 + d}");
            long count = 1;
            for (int i = 0; i < ndim; i++)
            {
                int v = BinaryPrimitives.ReadInt32BigEndian(dimBytes.AsSpan(4 * i));
                if (v < 0) throw new MvqInputException(path, $"dimension {i} is negative ({v})");
                count *= v;
                if (count > MaxElements)
                    throw new MvqInputException(path, $"too large: header declares {(count > MaxBytes ? "more than " + MaxBytes : count.ToString())} data bytes, over the limit of {MaxElements} ({IO.Limits.Size(MaxElements * 4)} as float pixels; raise it with {IO.Limits.DatasetVar})");
            }
            if (!gz && 4 + dimBytes.Length + count > size)
                throw new MvqInputException(path, $"truncated: header needs {count} data bytes, file has {size - 4 - dimBytes.Length}");
            var dims = new int[ndim];
            for (int i = 0; i < ndim; i++) dims[i] = BinaryPrimitives.ReadInt32BigEndian(dimBytes.AsSpan(4 * i));
            // Raw files were checked against their length above, so their data is allocated at once. Compressed data
            // is collected as it inflates (growing by doubling up to the declared size): a small file that declares a
            // large dataset costs what it really holds, not what it claims.
            byte[] data;
            int have;
            if (!gz)
            {
                data = new byte[count];
                have = s.ReadAtLeast(data, (int)count, throwOnEndOfStream: false);
            }
            else
            {
                data = new byte[Math.Min(count, 1 << 20)];
                have = 0;
                while (true)
                {
                    if (have == data.Length)
                    {
                        if (have == count) break;
                        Array.Resize(ref data, (int)Math.Min(count, (long)data.Length * 2));
                    }
                    int got2 = s.Read(data, have, data.Length - have);
                    if (got2 == 0) break;
                    have += got2;
                }
            }
            if (have < count)
                throw new MvqInputException(path, $"truncated: header [{string.Join(", ", dims)}] needs {count} data bytes, file has {have}");
            // One byte more than declared means trailing data; nothing past that byte is ever read.
            if (s.Read(new byte[1]) > 0)
                throw new MvqInputException(path, $"unexpected bytes after the data of [{string.Join(", ", dims)}] (corrupt header?)");
            return new IdxFile(dims, data);
        }
        catch (InvalidDataException e)
        {
            throw new MvqInputException(path, $"corrupt gzip data ({IO.InputFile.Reason(e, path)})", e);
        }
        catch (EndOfStreamException e)
        {
            throw new MvqInputException(path, "file ended early (truncated)", e);
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            throw new MvqInputException(path, $"cannot read ({IO.InputFile.Reason(e, path)})", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new MvqInputException(path, "permission denied", e);
        }
    }
}
