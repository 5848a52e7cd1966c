// ImageChecks.cs: structural checks of PNG, JPEG, BMP and GIF bytes before a decoder sees them.
using System.Buffers.Binary;
using System.IO.Compression;

namespace MvqNative.Data;

/// <summary>
/// The decoders fill what is missing from a truncated or forged file (gray or black pixels) without a word, so every
/// image is checked here first: the container structure must be complete and its pixel data as long as the header
/// promises. Each check reads the bytes once and allocates at most a small fixed buffer. A failure is an
/// <see cref="MvqInputException"/> naming the file. Only the first frame of an animation is checked (only it is decoded).
/// </summary>
internal static class ImageChecks
{
    /// <summary>Checks <paramref name="b"/>, which the caller identified as <paramref name="format"/> ("PNG", "JPEG", "BMP", "GIF").</summary>
    /// <param name="path">File name for messages.</param>
    /// <param name="b">The whole file.</param>
    /// <param name="format">Format name as identified.</param>
    /// <param name="maxPixels">Largest width x height accepted (checked before any data is inflated).</param>
    public static void Validate(string path, ReadOnlySpan<byte> b, string format, long maxPixels)
    {
        switch (format.ToUpperInvariant())
        {
            case "PNG": Png(path, b, maxPixels); break;
            case "JPEG": Jpeg(path, b); break;
            case "BMP": Bmp(path, b); break;
            case "GIF": Gif(path, b); break;
            default: throw new MvqInputException(path, $"{format} images are not supported (PNG, JPEG, BMP or GIF expected)");
        }
    }

    private static MvqInputException Bad(string path, string format, string problem) => new(path, $"corrupt or truncated {format}: {problem}");

    // ---- PNG: signature, chunks with CRCs, IHDR first, IEND last, and IDAT inflating to exactly the scanline bytes.
    private static void Png(string path, ReadOnlySpan<byte> b, long maxPixels)
    {
        const string F = "PNG";
        if (b.Length < 8 + 25) throw Bad(path, F, "too short for a PNG header");
        int at = 8;
        int width = 0, height = 0, bitDepth = 0, colorType = 0, interlace = 0;
        bool sawIhdr = false, sawIend = false;
        var idat = new List<(int Start, int Length)>();
        while (at < b.Length)
        {
            if (b.Length - at < 12) throw Bad(path, F, $"chunk header at byte {at} cut short");
            uint len = BinaryPrimitives.ReadUInt32BigEndian(b[at..]);
            if (len > int.MaxValue || len > b.Length - at - 12) throw Bad(path, F, $"chunk at byte {at} claims {len} bytes, past the end of the file");
            var type = b.Slice(at + 4, 4);
            var data = b.Slice(at + 8, (int)len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(b[(at + 8 + (int)len)..]);
            if (Crc32(b.Slice(at + 4, 4 + (int)len)) != crc)
                throw Bad(path, F, $"chunk '{Ascii(type)}' at byte {at} has a wrong CRC");
            string name = Ascii(type);
            if (!sawIhdr && name != "IHDR") throw Bad(path, F, "first chunk is not IHDR");
            switch (name)
            {
                case "IHDR":
                    if (sawIhdr) throw Bad(path, F, "two IHDR chunks");
                    if (len != 13) throw Bad(path, F, "IHDR is not 13 bytes");
                    sawIhdr = true;
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    bitDepth = data[8]; colorType = data[9]; interlace = data[12];
                    if (width <= 0 || height <= 0) throw Bad(path, F, $"invalid size {width}x{height}");
                    if ((long)width * height > maxPixels)
                        throw new MvqInputException(path, $"PNG image of {width}x{height} is over the {maxPixels / 1_000_000} megapixel limit (raise it with {IO.Limits.ImagePixelsVar})");
                    break;
                case "IDAT":
                    idat.Add((at + 8, (int)len));
                    break;
                case "IEND":
                    sawIend = true;
                    break;
            }
            at += 12 + (int)len;
            if (sawIend) break;
        }
        if (!sawIend) throw Bad(path, F, "no IEND chunk (file cut short)");
        if (idat.Count == 0) throw Bad(path, F, "no image data (IDAT)");
        int channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        if (channels == 0 || bitDepth is not (1 or 2 or 4 or 8 or 16)) throw Bad(path, F, $"colour type {colorType} with bit depth {bitDepth}");
        long bpp = (long)channels * bitDepth;
        long expected = 0;
        if (interlace == 0) expected = Scan(width, height, bpp);
        else
        {
            // Adam7 passes: (x0, y0, dx, dy).
            ReadOnlySpan<int> p = [0, 0, 8, 8, 4, 0, 8, 8, 0, 4, 4, 8, 2, 0, 4, 4, 0, 2, 2, 4, 1, 0, 2, 2, 0, 1, 1, 2];
            for (int i = 0; i < 7; i++)
            {
                long pw = (width - p[4 * i] + p[4 * i + 2] - 1) / p[4 * i + 2], ph = (height - p[4 * i + 1] + p[4 * i + 3] - 1) / p[4 * i + 3];
                if (pw > 0 && ph > 0) expected += Scan(pw, ph, bpp);
            }
        }
        // Inflate the concatenated IDAT data, counting bytes and stopping one byte past what the header allows.
        long got = InflatedLength(b, idat, expected + 1, out bool corrupt);
        if (corrupt) throw Bad(path, F, "image data does not inflate (corrupt zlib stream)");
        if (got < expected) throw Bad(path, F, $"image data holds {got} of the {expected} bytes a {width}x{height} image needs");
        if (got > expected) throw Bad(path, F, $"image data is longer than a {width}x{height} image");
    }

    private static long Scan(long w, long h, long bpp) => h * (1 + (w * bpp + 7) / 8);

    private static long InflatedLength(ReadOnlySpan<byte> b, List<(int Start, int Length)> parts, long cap, out bool corrupt)
    {
        var concat = new byte[parts.Sum(p => (long)p.Length)];
        int o = 0;
        foreach (var (s, l) in parts) { b.Slice(s, l).CopyTo(concat.AsSpan(o)); o += l; }
        corrupt = false;
        long total = 0;
        try
        {
            using var z = new ZLibStream(new MemoryStream(concat), CompressionMode.Decompress);
            var buf = new byte[1 << 16];
            int n;
            while ((n = z.Read(buf)) > 0)
            {
                total += n;
                if (total >= cap) break;
            }
        }
        catch (InvalidDataException) { corrupt = true; }
        return total;
    }

    // ---- JPEG: markers walk to SOF and SOS; entropy data long enough for the frame; EOI present.
    private static void Jpeg(string path, ReadOnlySpan<byte> b)
    {
        const string F = "JPEG";
        if (b.Length < 4 || b[0] != 0xFF || b[1] != 0xD8) throw Bad(path, F, "no SOI marker");
        int at = 2;
        int width = 0, height = 0, hmax = 1, vmax = 1;
        bool sawSof = false, sawEoi = false, sawSos = false, baseline = false;
        long entropyBytes = 0;
        var dc = new Huffman?[4]; var ac = new Huffman?[4];
        var comps = new List<(int Id, int H, int V)>();
        int restart = 0;
        while (at < b.Length)
        {
            if (b[at] != 0xFF) throw Bad(path, F, $"expected a marker at byte {at}");
            while (at < b.Length && b[at] == 0xFF) at++; // fill bytes
            if (at >= b.Length) break;
            byte m = b[at++];
            if (m == 0xD9) { sawEoi = true; break; }
            if (m is >= 0xD0 and <= 0xD7 or 0x01) continue; // standalone markers
            if (b.Length - at < 2) throw Bad(path, F, $"segment at byte {at - 2} cut short");
            int len = BinaryPrimitives.ReadUInt16BigEndian(b[at..]);
            if (len < 2 || len > b.Length - at) throw Bad(path, F, $"segment 0x{m:X2} at byte {at - 2} runs past the end of the file");
            var seg = b.Slice(at + 2, len - 2);
            if (m is >= 0xC0 and <= 0xCF && m is not (0xC4 or 0xC8 or 0xCC))
            {
                if (seg.Length < 6) throw Bad(path, F, "frame header too short");
                height = BinaryPrimitives.ReadUInt16BigEndian(seg[1..]);
                width = BinaryPrimitives.ReadUInt16BigEndian(seg[3..]);
                int nc = seg[5];
                if (nc is not (1 or 3 or 4) || seg.Length < 6 + 3 * nc) throw Bad(path, F, $"frame header with {nc} components");
                if (width == 0 || height == 0) throw Bad(path, F, $"frame size {width}x{height}");
                if (sawSof) throw Bad(path, F, "two frame headers");
                for (int c = 0; c < nc; c++)
                {
                    int hs = seg[6 + 3 * c + 1] >> 4, vs = seg[6 + 3 * c + 1] & 15;
                    if (hs is < 1 or > 4 || vs is < 1 or > 4) throw Bad(path, F, "invalid sampling factors");
                    hmax = Math.Max(hmax, hs); vmax = Math.Max(vmax, vs);
                    comps.Add((seg[6 + 3 * c], hs, vs));
                }
                sawSof = true;
                baseline = m is 0xC0 or 0xC1;
            }
            else if (m == 0xC4)
            {
                // Huffman tables: class/id, 16 counts, symbols.
                int o = 0;
                while (o < seg.Length)
                {
                    if (seg.Length - o < 17) throw Bad(path, F, "Huffman table cut short");
                    int tc = seg[o] >> 4, th = seg[o] & 15;
                    int total = 0;
                    for (int i = 1; i <= 16; i++) total += seg[o + i];
                    if (tc > 1 || th > 3 || seg.Length - o < 17 + total) throw Bad(path, F, "invalid Huffman table");
                    var h = new Huffman(seg.Slice(o + 1, 16), seg.Slice(o + 17, total));
                    if (tc == 0) dc[th] = h; else ac[th] = h;
                    o += 17 + total;
                }
            }
            else if (m == 0xDD && seg.Length >= 2)
            {
                restart = BinaryPrimitives.ReadUInt16BigEndian(seg);
            }
            at += len;
            if (m == 0xDA)
            {
                if (!sawSof) throw Bad(path, F, "scan before the frame header");
                sawSos = true;
                if (baseline) CountBaselineScan(path, b, at, seg, comps, dc, ac, restart, width, height, hmax, vmax);
                // Entropy-coded data runs to the next marker other than RSTn or a stuffed 0xFF00.
                int start = at;
                while (at < b.Length)
                {
                    if (b[at] == 0xFF && at + 1 < b.Length)
                    {
                        byte n = b[at + 1];
                        if (n == 0x00 || n is >= 0xD0 and <= 0xD7) { at += 2; continue; }
                        if (n == 0xFF) { at++; continue; }
                        break;
                    }
                    at++;
                }
                entropyBytes += at - start;
            }
        }
        if (!sawSof) throw Bad(path, F, "no frame header");
        if (!sawSos) throw Bad(path, F, "no scan data");
        if (!sawEoi) throw Bad(path, F, "no end-of-image marker (file cut short)");
        // Huffman coding spends at least one bit per block on its DC coefficient, and every MCU holds a block of each
        // component: fewer entropy bytes than MCUs / 8 cannot cover the frame the header declares.
        long mcus = (long)((width + 8 * hmax - 1) / (8 * hmax)) * ((height + 8 * vmax - 1) / (8 * vmax));
        if (entropyBytes * 8 < mcus)
            throw Bad(path, F, $"{entropyBytes} bytes of scan data cannot code the {width}x{height} frame the header declares");
    }

    /// <summary>A JPEG Huffman table (canonical codes: per length, the largest code and where its symbols start).</summary>
    private sealed class Huffman
    {
        public readonly int[] MaxCode = new int[18], ValPtr = new int[17], MinCode = new int[17];
        public readonly byte[] Symbols;

        public Huffman(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> symbols)
        {
            Symbols = symbols.ToArray();
            int code = 0, k = 0;
            for (int l = 1; l <= 16; l++)
            {
                ValPtr[l] = k;
                MinCode[l] = code;
                code += counts[l - 1];
                k += counts[l - 1];
                MaxCode[l] = counts[l - 1] > 0 ? code - 1 : -1;
                code <<= 1;
            }
            MaxCode[17] = int.MaxValue;
        }
    }

    /// <summary>Bits of entropy-coded data (0xFF00 unstuffed); stops at any other marker.</summary>
    private ref struct BitReader(ReadOnlySpan<byte> b, int at)
    {
        private readonly ReadOnlySpan<byte> _b = b;
        private int _at = at, _bits, _n;
        public bool Exhausted;

        public int Bit()
        {
            if (_n == 0)
            {
                if (_at >= _b.Length || (_b[_at] == 0xFF && (_at + 1 >= _b.Length || _b[_at + 1] != 0x00))) { Exhausted = true; return 1; }
                _bits = _b[_at];
                _at += _b[_at] == 0xFF ? 2 : 1;
                _n = 8;
            }
            _n--;
            return (_bits >> _n) & 1;
        }

        public void Skip(int n) { for (int i = 0; i < n && !Exhausted; i++) Bit(); }

        /// <summary>At a restart interval: drop the partial byte and step over an RSTn marker.</summary>
        public void Restart()
        {
            _n = 0;
            if (_at + 1 < _b.Length && _b[_at] == 0xFF && _b[_at + 1] is >= 0xD0 and <= 0xD7) _at += 2;
        }
    }

    private static int Decode(ref BitReader r, Huffman h)
    {
        int code = 0;
        for (int l = 1; l <= 16; l++)
        {
            code = (code << 1) | r.Bit();
            if (r.Exhausted) return -1;
            if (code <= h.MaxCode[l]) return h.Symbols[h.ValPtr[l] + code - h.MinCode[l]];
        }
        return -2;
    }

    /// <summary>
    /// Walks the Huffman codes of a baseline scan without reconstructing coefficients, counting the blocks it codes:
    /// a scan that ends (or a frame header that claims more) before every block of the frame is coded is an error.
    /// </summary>
    private static void CountBaselineScan(string path, ReadOnlySpan<byte> b, int at, ReadOnlySpan<byte> sos, List<(int Id, int H, int V)> comps,
        Huffman?[] dc, Huffman?[] ac, int restart, int width, int height, int hmax, int vmax)
    {
        const string F = "JPEG";
        if (sos.Length < 1) throw Bad(path, F, "scan header too short");
        int ns = sos[0];
        if (ns < 1 || sos.Length < 1 + 2 * ns + 3) throw Bad(path, F, "scan header too short");
        var scan = new List<(int H, int V, Huffman Dc, Huffman Ac)>();
        for (int i = 0; i < ns; i++)
        {
            int id = sos[1 + 2 * i], t = sos[2 + 2 * i];
            int ci = comps.FindIndex(c => c.Id == id);
            if (ci < 0) throw Bad(path, F, $"scan names component {id}, which the frame does not have");
            var hd = dc[t >> 4] ?? throw Bad(path, F, "scan uses a DC Huffman table that is not defined");
            var ha = ac[t & 15] ?? throw Bad(path, F, "scan uses an AC Huffman table that is not defined");
            scan.Add((comps[ci].H, comps[ci].V, hd, ha));
        }
        long units; // MCUs (interleaved) or blocks (one component)
        if (ns == 1)
        {
            var c = scan[0];
            long cw = ((long)width * c.H + hmax - 1) / hmax, ch = ((long)height * c.V + vmax - 1) / vmax;
            units = ((cw + 7) / 8) * ((ch + 7) / 8);
            scan[0] = (1, 1, c.Dc, c.Ac);
        }
        else units = (long)((width + 8 * hmax - 1) / (8 * hmax)) * ((height + 8 * vmax - 1) / (8 * vmax));
        var r = new BitReader(b, at);
        for (long u = 0; u < units; u++)
        {
            if (restart > 0 && u > 0 && u % restart == 0) r.Restart();
            foreach (var c in scan)
                for (int k = 0; k < c.H * c.V; k++)
                {
                    int s = Decode(ref r, c.Dc);
                    if (s >= 0) r.Skip(s);
                    for (int i = 1; i < 64 && s >= 0 && !r.Exhausted; i++)
                    {
                        int rs = Decode(ref r, c.Ac);
                        if (rs < 0) { s = rs; break; }
                        if ((rs & 15) == 0) { if (rs >> 4 == 15) { i += 15; continue; } break; }
                        i += rs >> 4;
                        r.Skip(rs & 15);
                    }
                    if (s == -2) throw Bad(path, F, $"invalid Huffman code in block {u} of {units}");
                    if (r.Exhausted || s < 0)
                        throw Bad(path, F, $"scan data ends after {u} of the {units} {(ns == 1 ? "blocks" : "MCUs")} of the {width}x{height} frame the header declares");
                }
        }
    }

    // ---- BMP: header sizes, and the pixel array within the file for uncompressed bitmaps.
    private static void Bmp(string path, ReadOnlySpan<byte> b)
    {
        const string F = "BMP";
        if (b.Length < 26 || b[0] != (byte)'B' || b[1] != (byte)'M') throw Bad(path, F, "header too short");
        uint offset = BinaryPrimitives.ReadUInt32LittleEndian(b[10..]);
        uint dib = BinaryPrimitives.ReadUInt32LittleEndian(b[14..]);
        if (dib < 12 || 14 + dib > b.Length) throw Bad(path, F, "info header cut short");
        long w, h; int bpp; uint compression = 0;
        if (dib == 12)
        {
            w = BinaryPrimitives.ReadUInt16LittleEndian(b[18..]); h = BinaryPrimitives.ReadUInt16LittleEndian(b[20..]);
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(b[24..]);
        }
        else
        {
            if (b.Length < 14 + 20) throw Bad(path, F, "info header cut short");
            w = BinaryPrimitives.ReadInt32LittleEndian(b[18..]); h = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(b[22..]));
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(b[28..]);
            compression = BinaryPrimitives.ReadUInt32LittleEndian(b[30..]);
        }
        if (w <= 0 || h <= 0) throw Bad(path, F, $"invalid size {w}x{h}");
        if (offset >= b.Length) throw Bad(path, F, "no pixel data");
        // Uncompressed (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS): rows padded to 4 bytes.
        if (compression is 0 or 3 or 6)
        {
            long stride = (w * bpp + 31) / 32 * 4;
            long need = stride * h;
            if (b.Length - offset < need) throw Bad(path, F, $"pixel data holds {b.Length - offset} of the {need} bytes a {w}x{h} {bpp}-bit image needs");
        }
    }

    // ---- GIF: header, colour table, and the blocks up to the end of the first image's data.
    private static void Gif(string path, ReadOnlySpan<byte> b)
    {
        const string F = "GIF";
        if (b.Length < 13) throw Bad(path, F, "header too short");
        int at = 13;
        byte flags = b[10];
        if ((flags & 0x80) != 0) at += 3 * (1 << ((flags & 7) + 1));
        while (true)
        {
            if (at >= b.Length) throw Bad(path, F, "no image in the file (cut short)");
            byte kind = b[at++];
            if (kind == 0x3B) throw Bad(path, F, "no image before the trailer");
            if (kind == 0x21)
            {
                if (at >= b.Length) throw Bad(path, F, "extension cut short");
                at++; // label
                at = SkipSubBlocks(path, b, at);
                continue;
            }
            if (kind != 0x2C) throw Bad(path, F, $"unknown block 0x{kind:X2} at byte {at - 1}");
            if (b.Length - at < 9) throw Bad(path, F, "image descriptor cut short");
            int w = BinaryPrimitives.ReadUInt16LittleEndian(b[(at + 4)..]), h = BinaryPrimitives.ReadUInt16LittleEndian(b[(at + 6)..]);
            if (w == 0 || h == 0) throw Bad(path, F, $"first frame is {w}x{h}");
            byte lf = b[at + 8];
            at += 9;
            if ((lf & 0x80) != 0) at += 3 * (1 << ((lf & 7) + 1));
            if (at >= b.Length) throw Bad(path, F, "image data cut short");
            at++; // LZW minimum code size
            SkipSubBlocks(path, b, at);
            return;
        }
    }

    private static int SkipSubBlocks(string path, ReadOnlySpan<byte> b, int at)
    {
        while (true)
        {
            if (at >= b.Length) throw Bad(path, "GIF", "data blocks cut short");
            int n = b[at++];
            if (n == 0) return at;
            at += n;
        }
    }

    private static readonly uint[] CrcTable = MakeCrcTable();

    private static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>The CRC-32 of PNG chunks (ISO 3309, reflected, initial and final XOR 0xFFFFFFFF).</summary>
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var x in data) c = CrcTable[(c ^ x) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    private static string Ascii(ReadOnlySpan<byte> t)
    {
        Span<char> c = stackalloc char[t.Length];
        for (int i = 0; i < t.Length; i++) c[i] = t[i] is >= 32 and < 127 ? (char)t[i] : '?';
        return new string(c);
    }
}
