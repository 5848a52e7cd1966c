// HostileKit.cs: what the hostile-input tests share: crafted files, the mvq CLI as a child process with its peak
// memory, the one-line-error assertion and a snapshot of every file that existed before a command.
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using MvqNative.Tests.Cli;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace MvqNative.Tests.Hostile;

/// <summary>Result of one mvq run (in-process or child process).</summary>
public sealed record MvqRun(int Code, string Out, string Err, long PeakBytes, double Seconds, bool TimedOut);

public static class HostileKit
{
    /// <summary>Hang guard for child processes: far above any case's normal time, so it never decides a passing test.</summary>
    public const int HangSeconds = 120;

    /// <summary>The mvq CLI assembly (built with the tests).</summary>
    public static string MvqDll => typeof(MvqNative.Cli.Cli).Assembly.Location;

    /// <summary>Runs mvq in this process (fast; for cases that cannot hang).</summary>
    public static MvqRun InProcess(params string[] args)
    {
        var sw = Stopwatch.StartNew();
        var (c, o, e) = CliHarness.Run(args);
        return new MvqRun(c, o, e, -1, sw.Elapsed.TotalSeconds, false);
    }

    /// <summary>
    /// Runs `dotnet mvq.dll ARGS` as a child process with MVQ_PEAK_FILE set, so its peak resident memory comes back;
    /// killed (and reported as timed out) after <see cref="HangSeconds"/>.
    /// </summary>
    public static MvqRun Child(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var peak = Path.Combine(Path.GetTempPath(), $"mvq-peak-{Guid.NewGuid():N}");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(MvqDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["MVQ_PEAK_FILE"] = peak;
        psi.Environment["MVQ_THREADS"] = "1";
        psi.Environment["CI"] = "1";
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        bool done = p.WaitForExit(HangSeconds * 1000);
        if (!done) { p.Kill(entireProcessTree: true); p.WaitForExit(); }
        long bytes = -1;
        try { bytes = long.Parse(File.ReadAllText(peak)); File.Delete(peak); } catch (IOException) { } catch (FormatException) { }
        return new MvqRun(done ? p.ExitCode : -1, so.Result, se.Result, bytes, sw.Elapsed.TotalSeconds, !done);
    }

    /// <summary>Exit 1, exactly one stderr line "error: ..." naming <paramref name="file"/>, no stack trace.</summary>
    public static void AssertRefused(MvqRun r, string file, string? mustContain = null)
    {
        Assert.False(r.TimedOut, $"hung (killed after {HangSeconds} s)");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(r.Code == 1, $"exit {r.Code}, stderr: {r.Err}");
        Assert.True(lines.Length == 1, "expected one stderr line, got: " + r.Err);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(file, lines[0]);
        Assert.DoesNotContain("   at ", r.Err);
        if (mustContain != null) Assert.Contains(mustContain, lines[0]);
    }

    /// <summary>Peak resident memory of a child run under <paramref name="maxMb"/> MiB (the figure is in the message).</summary>
    public static void AssertPeakBelow(MvqRun r, long maxMb)
    {
        Assert.True(r.PeakBytes > 0, "peak memory not reported");
        Assert.True(r.PeakBytes < maxMb << 20, $"peak resident memory {r.PeakBytes >> 20} MiB, bound {maxMb} MiB");
    }

    /// <summary>SHA-256 of every file under <paramref name="dirs"/>, to show nothing that existed was changed.</summary>
    public static Dictionary<string, string> Snapshot(params string[] dirs)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var dir in dirs)
            foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            {
                var info = new FileInfo(f);
                if (info.LinkTarget != null || !IsRegular(f)) { d[f] = "special"; continue; }
                // A held output lock cannot be opened (that is the point of it); it is empty, so its length says all.
                if (info.Name == MvqNative.IO.OutputFolder.LockName) { d[f] = "lock:" + info.Length; continue; }
                d[f] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)));
            }
        return d;
    }

    /// <summary>Every file of <paramref name="before"/> is still there with the same bytes.</summary>
    public static void AssertUnchanged(Dictionary<string, string> before)
    {
        foreach (var (f, h) in before)
        {
            Assert.True(File.Exists(f) || h == "special", $"{f} disappeared");
            if (h == "special") continue;
            if (h.StartsWith("lock:", StringComparison.Ordinal)) { Assert.Equal(h, "lock:" + new FileInfo(f).Length); continue; }
            Assert.True(h == Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))), $"{f} changed");
        }
    }

    private static bool IsRegular(string f)
    {
        try { MvqNative.IO.InputFile.RequireRegular(f); return true; }
        catch (MvqInputException) { return false; }
    }

    // ---------------------------------------------------------------- crafted files

    /// <summary>A small valid PNG (gray noise).</summary>
    public static byte[] Png(int w = 16, int h = 16, int seed = 1)
    {
        var rng = new Random(seed);
        using var img = new Image<L8>(w, h);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img[x, y] = new L8((byte)rng.Next(256));
        using var ms = new MemoryStream();
        img.SaveAsPng(ms);
        return ms.ToArray();
    }

    /// <summary>A small valid baseline JPEG (smooth gray gradient with noise).</summary>
    public static byte[] Jpeg(int w = 64, int h = 64, int seed = 1)
    {
        var rng = new Random(seed);
        using var img = new Image<Rgb24>(w, h);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) { byte v = (byte)((x * 3 + y * 2 + rng.Next(40)) & 255); img[x, y] = new Rgb24(v, v, v); }
        using var ms = new MemoryStream();
        img.SaveAsJpeg(ms);
        return ms.ToArray();
    }

    /// <summary>A small valid 24-bit BMP.</summary>
    public static byte[] Bmp(int w = 16, int h = 16)
    {
        using var img = new Image<Rgb24>(w, h);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) { byte v = (byte)(x * 16); img[x, y] = new Rgb24(v, v, v); }
        using var ms = new MemoryStream();
        img.SaveAsBmp(ms);
        return ms.ToArray();
    }

    /// <summary>A small valid GIF (one gray frame).</summary>
    public static byte[] Gif(int w = 16, int h = 16)
    {
        using var img = new Image<Rgb24>(w, h);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) { byte v = (byte)((x + y) * 8); img[x, y] = new Rgb24(v, v, v); }
        using var ms = new MemoryStream();
        img.SaveAsGif(ms);
        return ms.ToArray();
    }

    /// <summary>
    /// An animated GIF: a <paramref name="screen"/> x <paramref name="screen"/> logical screen and
    /// <paramref name="frames"/> frames of one pixel each (a few KB that decode to frames x screen^2 pixels).
    /// </summary>
    public static byte[] GifBomb(int screen = 4096, int frames = 150)
    {
        var b = new List<byte>();
        b.AddRange("GIF89a"u8.ToArray());
        b.AddRange([(byte)screen, (byte)(screen >> 8), (byte)screen, (byte)(screen >> 8), 0x80, 0, 0]); // GCT of 2 colours
        b.AddRange([0, 0, 0, 255, 255, 255]);
        for (int f = 0; f < frames; f++)
        {
            b.AddRange([0x21, 0xF9, 4, 0x04, 1, 0, 0, 0]); // graphic control: delay 1, no disposal
            b.AddRange([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]); // 1x1 at (0, 0)
            b.AddRange([2, 2, 0x44, 0x01, 0]); // LZW min size 2: clear, 0, end
        }
        b.Add(0x3B);
        return b.ToArray();
    }

    /// <summary>A valid PNG with a zTXt chunk that inflates to <paramref name="inflatedMb"/> MiB.</summary>
    public static byte[] PngWithZtxtBomb(int inflatedMb)
    {
        var png = Png(8, 8);
        using var z = new MemoryStream();
        z.Write("Comment\0\0"u8);
        using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true))
        {
            var zeros = new byte[1 << 20];
            for (int i = 0; i < inflatedMb; i++) zs.Write(zeros);
        }
        var chunk = Chunk("zTXt", z.ToArray());
        // After the signature (8) and IHDR (25).
        return [.. png.AsSpan(0, 33), .. chunk, .. png.AsSpan(33)];
    }

    /// <summary>A PNG chunk with its CRC.</summary>
    public static byte[] Chunk(string type, byte[] data)
    {
        var c = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(c, (uint)data.Length);
        System.Text.Encoding.ASCII.GetBytes(type).CopyTo(c, 4);
        data.CopyTo(c, 8);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(8 + data.Length), Crc(c.AsSpan(4, 4 + data.Length)));
        return c;
    }

    private static uint Crc(ReadOnlySpan<byte> d)
    {
        uint c = 0xFFFFFFFF;
        foreach (var x in d)
        {
            c ^= x;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    /// <summary>An IDX ubyte header for <paramref name="dims"/>.</summary>
    public static byte[] IdxHeader(params int[] dims)
    {
        var h = new byte[4 + 4 * dims.Length];
        h[2] = 0x08; h[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(h.AsSpan(4 + 4 * i), dims[i]);
        return h;
    }

    /// <summary>gzip of an IDX header followed by <paramref name="zeroMb"/> MiB of zeros.</summary>
    public static byte[] GzipIdx(int[] dims, int zeroMb)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true))
        {
            gz.Write(IdxHeader(dims));
            var zeros = new byte[1 << 20];
            for (int i = 0; i < zeroMb; i++) gz.Write(zeros);
        }
        return ms.ToArray();
    }

    /// <summary>Makes a FIFO (named pipe) at <paramref name="path"/>.</summary>
    public static void MkFifo(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }
}
