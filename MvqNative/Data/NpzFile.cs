// NpzFile.cs: reads numpy .npy arrays from .npz archives (np.savez / np.savez_compressed): the subset of the
// format that image batches use (C-order, little-endian or byte-sized integers).
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace MvqNative.Data;

/// <summary>One array of an .npz file: shape and values widened to long (integer dtypes) or the raw bytes (uint8).</summary>
internal sealed record NpyArray(string Name, long[] Shape, string Descr, byte[] Bytes)
{
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The values as long, for integer dtypes |u1 |i1 &lt;u2 &lt;i2 &lt;u4 &lt;i4 &lt;u8 &lt;i8.</summary>
    public long[] ToLongs(string file)
    {
        var n = Count;
        var r = new long[n];
        var b = Bytes.AsSpan();
        for (long i = 0; i < n; i++)
            r[i] = Descr switch
            {
                "|u1" or "<u1" => b[(int)i],
                "|i1" or "<i1" => (sbyte)b[(int)i],
                "<u2" => BinaryPrimitives.ReadUInt16LittleEndian(b[(int)(2 * i)..]),
                "<i2" => BinaryPrimitives.ReadInt16LittleEndian(b[(int)(2 * i)..]),
                "<u4" => BinaryPrimitives.ReadUInt32LittleEndian(b[(int)(4 * i)..]),
                "<i4" => BinaryPrimitives.ReadInt32LittleEndian(b[(int)(4 * i)..]),
                "<u8" => (long)BinaryPrimitives.ReadUInt64LittleEndian(b[(int)(8 * i)..]),
                "<i8" => BinaryPrimitives.ReadInt64LittleEndian(b[(int)(8 * i)..]),
                _ => throw new MvqInputException(file, $"array '{Name}' has dtype {Descr}; integers are expected"),
            };
        return r;
    }
}

/// <summary>Reads the arrays of an .npz archive.</summary>
internal static partial class NpzFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Every array in the archive, by name without the .npy suffix.</summary>
    /// <exception cref="MvqInputException">Not a zip, a member that is not a valid .npy, Fortran order, a big-endian or unsupported dtype.</exception>
    public static IReadOnlyDictionary<string, NpyArray> Read(string path)
    {
        if (!File.Exists(path)) throw new MvqInputException(path, "npz file not found");
        var result = new Dictionary<string, NpyArray>(StringComparer.Ordinal);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            foreach (var e in zip.Entries)
            {
                if (!e.FullName.EndsWith(".npy", StringComparison.Ordinal)) continue;
                var name = e.FullName[..^4];
                using var s = e.Open();
                using var ms = new MemoryStream();
                s.CopyTo(ms);
                result[name] = ParseNpy(path, name, ms.ToArray());
            }
        }
        catch (InvalidDataException ex) { throw new MvqInputException(path, "not a valid npz (zip) archive: " + ex.Message); }
        if (result.Count == 0) throw new MvqInputException(path, "the npz archive holds no .npy arrays");
        return result;
    }

    internal static NpyArray ParseNpy(string file, string name, byte[] b)
    {
        if (b.Length < 10 || !b.AsSpan(0, 6).SequenceEqual(Magic)) throw new MvqInputException(file, $"member {name}.npy is not a .npy array (bad magic)");
        int major = b[6];
        int headerLen, start;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8)); start = 10; }
        else if (major is 2 or 3 && b.Length >= 12) { headerLen = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8))); start = 12; }
        else throw new MvqInputException(file, $"member {name}.npy has unsupported format version {major}");
        if (start + headerLen > b.Length) throw new MvqInputException(file, $"member {name}.npy is truncated (header)");
        var header = Encoding.ASCII.GetString(b, start, headerLen);
        var descr = DescrRe().Match(header);
        var fortran = FortranRe().Match(header);
        var shape = ShapeRe().Match(header);
        if (!descr.Success || !fortran.Success || !shape.Success) throw new MvqInputException(file, $"member {name}.npy has an unreadable header: {header.Trim()}");
        if (fortran.Groups[1].Value == "True") throw new MvqInputException(file, $"member {name}.npy is in Fortran order; save it C-ordered");
        var dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        string d = descr.Groups[1].Value;
        int size = d.Length >= 3 && int.TryParse(d[2..], out var sz) ? sz : throw new MvqInputException(file, $"member {name}.npy has dtype {d}");
        if (d[0] == '>' && size > 1) throw new MvqInputException(file, $"member {name}.npy is big-endian ({d})");
        long count = dims.Aggregate(1L, (x, y) => x * y);
        long bytes = count * size;
        int dataStart = start + headerLen;
        if (dataStart + bytes > b.Length) throw new MvqInputException(file, $"member {name}.npy is truncated: {b.Length - dataStart} data bytes for shape ({string.Join(", ", dims)}) of {d}");
        return new NpyArray(name, dims, d, b.AsSpan(dataStart, (int)bytes).ToArray());
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']+)'")]
    private static partial Regex DescrRe();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranRe();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapeRe();
}

/// <summary>
/// Downsampled ImageNet (Chrabaszcz et al. 2017, image-net.org "Imagenet64x64"): .npz batch files whose
/// 'data' array is uint8, either [N, 3*S*S] with the R, G and B planes one after another (the official files)
/// or [N, S, S, 3] (HWC) or [N, 3, S, S]; 'labels' (optional) are 1-based class numbers in the official files and
/// become 0-based here. A folder loads every *.npz in it, in name order.
/// </summary>
internal static class ImageNet64
{
    public static ImageDataset Load(string path, int? limit = null)
    {
        var files = Directory.Exists(path) ? Directory.GetFiles(path, "*.npz").OrderBy(f => f, StringComparer.Ordinal).ToArray()
            : File.Exists(path) ? [path] : throw new MvqInputException(path, "imagenet64 path not found (an .npz batch file or a folder of them)");
        if (files.Length == 0) throw new MvqInputException(path, "no .npz files in the folder");
        var pixels = new List<float[]>(); var labels = new List<int>();
        int size = 0, total = 0; bool haveLabels = true;
        foreach (var f in files)
        {
            var arrays = NpzFile.Read(f);
            if (!arrays.TryGetValue("data", out var data)) throw new MvqInputException(f, $"no 'data' array (has: {string.Join(", ", arrays.Keys)})");
            if (data.Descr is not ("|u1" or "<u1")) throw new MvqInputException(f, $"'data' is {data.Descr}, uint8 images are expected");
            var sh = data.Shape;
            int n, s; bool hwc;
            if (sh.Length == 2 && sh[1] % 3 == 0 && IsSquare(sh[1] / 3, out s)) { n = (int)sh[0]; hwc = false; }
            else if (sh.Length == 4 && sh[3] == 3 && sh[1] == sh[2]) { n = (int)sh[0]; s = (int)sh[1]; hwc = true; }
            else if (sh.Length == 4 && sh[1] == 3 && sh[2] == sh[3]) { n = (int)sh[0]; s = (int)sh[2]; hwc = false; }
            else throw new MvqInputException(f, $"'data' has shape ({string.Join(", ", sh)}); expected [N, 3*S*S], [N, S, S, 3] or [N, 3, S, S]");
            if (size != 0 && s != size) throw new MvqInputException(f, $"images are {s}x{s}, earlier files had {size}x{size}");
            size = s;
            if (limit is int l) n = Math.Min(n, l - total);
            int plane = s * s;
            var px = new float[(long)n * 3 * plane];
            var src = data.Bytes;
            for (int i = 0; i < n; i++)
                for (int c = 0; c < 3; c++)
                    for (int p = 0; p < plane; p++)
                    {
                        byte v = hwc ? src[((long)i * plane + p) * 3 + c] : src[((long)i * 3 + c) * plane + p];
                        px[((long)i * 3 + c) * plane + p] = v / 255f;
                    }
            pixels.Add(px);
            if (arrays.TryGetValue("labels", out var lab))
            {
                if (lab.Count < n) throw new MvqInputException(f, $"{lab.Count} labels for {n} images");
                var lv = lab.ToLongs(f);
                long min = lv.Length == 0 ? 0 : lv.Min();
                for (int i = 0; i < n; i++) labels.Add((int)(lv[i] - (min >= 1 ? 1 : 0)));
            }
            else haveLabels = false;
            total += n;
            if (limit is int l2 && total >= l2) break;
        }
        var all = new float[(long)total * 3 * size * size];
        long off = 0;
        foreach (var p in pixels) { p.CopyTo(all, off); off += p.Length; }
        return new ImageDataset("imagenet64:" + path, total, 3, size, size, all, haveLabels ? labels.ToArray() : null);
    }

    private static bool IsSquare(long v, out int s)
    {
        s = (int)Math.Round(Math.Sqrt(v));
        return (long)s * s == v && s > 0;
    }
}
