// InputFile.cs: the one way the library opens a file it was given: regular files only, read through a bounded stream.
using System.Runtime.InteropServices;
using System.Text;

namespace MvqNative.IO;

/// <summary>
/// Opening user-supplied files safely. A FIFO, socket or device (or a symlink to one, such as /dev/zero) is refused
/// before it is opened, so that reading never blocks forever or runs without end; every read is bounded by a byte
/// limit that the caller states. Problems are <see cref="MvqInputException"/>s naming the file. New readers (prior
/// checkpoints, codes caches, ...) should open their inputs through this class.
/// </summary>
internal static class InputFile
{
    /// <summary>
    /// Checks that <paramref name="path"/> names an existing regular file (symlinks followed) and returns its length.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for messages ("checkpoint", "image", ...).</param>
    /// <exception cref="MvqInputException">Missing, a folder, or not a regular file.</exception>
    public static long RequireRegular(string path, string what = "file")
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0) throw new MvqInputException("(empty path)", $"no {what} given");
        var kind = Kind(path);
        switch (kind)
        {
            case FileKind.Missing:
                throw new MvqInputException(path, Directory.Exists(path) ? $"is a folder, expected a {what}" : $"{what} not found");
            case FileKind.Directory:
                throw new MvqInputException(path, $"is a folder, expected a {what}");
            case FileKind.Regular:
            case FileKind.Unknown:
                break;
            default:
                throw new MvqInputException(path, $"is a {Describe(kind)}, not a regular file");
        }
        try { return new FileInfo(path).Length; }
        catch (IOException e) { throw new MvqInputException(path, $"cannot read ({Reason(e, path)})", e); }
        catch (UnauthorizedAccessException e) { throw new MvqInputException(path, "permission denied", e); }
    }

    /// <summary>
    /// Opens a regular file for reading after <see cref="RequireRegular"/>; refuses files over <paramref name="maxBytes"/>.
    /// The returned stream also stops reading at <paramref name="maxBytes"/> should the file grow meanwhile.
    /// </summary>
    public static Stream OpenRead(string path, long maxBytes, string what = "file")
    {
        long len = RequireRegular(path, what);
        if (len > maxBytes) throw TooLarge(path, len, maxBytes, what);
        try
        {
            var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            return new BoundedStream(fs, maxBytes, path, what);
        }
        catch (FileNotFoundException e) { throw new MvqInputException(path, $"{what} not found", e); }
        catch (IOException e) { throw new MvqInputException(path, $"cannot read ({Reason(e, path)})", e); }
        catch (UnauthorizedAccessException e) { throw new MvqInputException(path, "permission denied", e); }
    }

    /// <summary>Reads a whole regular file of at most <paramref name="maxBytes"/> bytes.</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what = "file")
    {
        using var s = OpenRead(path, maxBytes, what);
        try
        {
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            return ms.ToArray();
        }
        catch (IOException e) when (e is not MvqLimitException) { throw new MvqInputException(path, $"cannot read ({Reason(e, path)})", e); }
    }

    /// <summary>Reads a whole regular UTF-8 text file of at most <paramref name="maxBytes"/> bytes.</summary>
    public static string ReadAllText(string path, long maxBytes, string what = "file") =>
        new UTF8Encoding(false).GetString(ReadAllBytes(path, maxBytes, what));

    /// <summary>
    /// An I/O error's message without the path in it (the one-line error already starts with the path, so it is not
    /// printed twice).
    /// </summary>
    public static string Reason(Exception e, string path)
    {
        var full = Path.GetFullPath(path);
        var m = e.Message;
        foreach (var p in new[] { full, path })
            m = m.Replace($" : '{p}'", "").Replace($" '{p}'", "").Replace($"'{p}'", "").Replace(p, "");
        return m.ReplaceLineEndings(" ").Trim().TrimEnd('.', ' ', ':');
    }

    /// <summary>The one-line refusal of a file over a limit, with the limit and how to raise it when it is a setting.</summary>
    public static MvqInputException TooLarge(string path, long bytes, long maxBytes, string what) =>
        new(path, $"{what} is {Limits.Size(bytes)}, over the {Limits.Size(maxBytes)} limit");

    private enum FileKind { Missing, Regular, Directory, Fifo, CharDevice, BlockDevice, Socket, Unknown }

    private static string Describe(FileKind k) => k switch
    {
        FileKind.Fifo => "FIFO (named pipe)",
        FileKind.CharDevice => "character device",
        FileKind.BlockDevice => "block device",
        FileKind.Socket => "socket",
        _ => k.ToString(),
    };

    // stat(2) through .NET's own native shim (present wherever .NET runs on Unix); its FileStatus starts with
    // int Flags, int Mode, and Mode uses the portable S_IF* values below. On Windows every file is taken as regular.
    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat", SetLastError = true)]
    private static extern unsafe int SystemNativeStat(byte* path, byte* status);

    private static unsafe FileKind Kind(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return File.Exists(path) ? FileKind.Regular : Directory.Exists(path) ? FileKind.Directory : FileKind.Missing;
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        byte* status = stackalloc byte[512];
        int rc;
        try
        {
            fixed (byte* p = bytes) rc = SystemNativeStat(p, status);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return File.Exists(path) ? FileKind.Unknown : Directory.Exists(path) ? FileKind.Directory : FileKind.Missing;
        }
        if (rc != 0) return FileKind.Missing;
        int mode = *(int*)(status + 4);
        return (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Unknown,
        };
    }

    /// <summary>A read-only view of a stream that throws once more than a set number of bytes has been read.</summary>
    private sealed class BoundedStream(Stream inner, long max, string path, string what) : Stream
    {
        private long _read;
        public override bool CanRead => true;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            _read += n;
            if (_read > max) throw new MvqLimitException(path, $"{what} grew past the {Limits.Size(max)} limit while being read");
            return n;
        }
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>An input exceeded a size or memory limit (an <see cref="IOException"/> so that stream users pass it on).</summary>
public sealed class MvqLimitException(string file, string problem) : IOException($"{file}: {problem}")
{
    /// <summary>The file (or input) over its limit.</summary>
    public string File { get; } = file;
    /// <summary>Which limit, and the variable (MVQ_MAX_*) that raises it.</summary>
    public string Problem { get; } = problem;
}
