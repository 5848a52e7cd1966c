// AtomicFile.cs: write-to-temp, fsync, rename; the shared way every output file of the library is written.
using System.Text;

namespace MvqNative.IO;

/// <summary>
/// Atomic file replacement: readers see the old file or the complete new one, never a partial one. Every output file
/// of the library and the CLI goes through <see cref="Write"/>; new commands should too.
/// </summary>
internal static class AtomicFile
{
    // Linux NAME_MAX (bytes of one path component); the temp name is kept within it whatever the target's length.
    private const int NameMax = 255;

    /// <summary>
    /// Writes <paramref name="path"/> by calling <paramref name="write"/> on a temp file in the same directory,
    /// flushing it to disk, then renaming it over the target. If <paramref name="write"/> or any step throws,
    /// the temp file is deleted and the previous file (if any) is left untouched. Temp files of the same target left
    /// by a killed process (whose id no longer runs) are removed first. Errors name the target, not the temp file.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        var name = Path.GetFileName(full);
        if (name.Length == 0) throw new IOException($"{full}: is a folder name, not a file name");
        if (Directory.Exists(full)) throw new IOException($"{full}: is a folder; cannot write a file there");
        var prefix = TempPrefix(name);
        RemoveStale(dir, prefix);
        // Same directory so the final rename never crosses file systems (a rename within one is atomic).
        var tmp = Path.Combine(dir, $"{prefix}{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            // The temp name means nothing to the user: report the target.
            if (e is IOException and not MvqLimitException)
                throw new IOException($"{full}: cannot write ({Strip(e.Message, tmp)})", e);
            if (e is UnauthorizedAccessException)
                throw new IOException($"{full}: cannot write (permission denied)", e);
            throw;
        }
    }

    /// <summary>Writes a UTF-8 text file atomically.</summary>
    public static void WriteText(string path, string text) =>
        Write(path, s => s.Write(new UTF8Encoding(false).GetBytes(text)));

    /// <summary>".NAME." cut so that ".NAME.PID.GUID32.tmp" stays within NAME_MAX bytes.</summary>
    internal static string TempPrefix(string name)
    {
        const int suffix = 1 + 10 + 1 + 32 + 4; // ".PID" (up to 10 digits) + "." + guid + ".tmp"
        int room = NameMax - suffix - 2;
        var bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes > room)
        {
            // Cut on a character boundary (surrogate pairs kept whole).
            var sb = new StringBuilder();
            int used = 0;
            foreach (var r in name.EnumerateRunes())
            {
                int n = r.Utf8SequenceLength;
                if (used + n > room) break;
                sb.Append(r.ToString());
                used += n;
            }
            name = sb.ToString();
        }
        return "." + name + ".";
    }

    private static void RemoveStale(string dir, string prefix)
    {
        try
        {
            if (!Directory.Exists(dir)) return;
            foreach (var f in Directory.EnumerateFiles(dir, prefix + "*.tmp"))
            {
                var rest = Path.GetFileName(f)[prefix.Length..];
                int dot = rest.IndexOf('.');
                if (dot <= 0 || !int.TryParse(rest[..dot], out int pid)) continue;
                if (pid == Environment.ProcessId || Alive(pid)) continue;
                try { File.Delete(f); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static bool Alive(int pid)
    {
        if (OperatingSystem.IsLinux()) return Directory.Exists("/proc/" + pid);
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    private static string Strip(string message, string tmp) =>
        message.Replace($" : '{tmp}'", "").Replace($"'{tmp}'", "").Replace(tmp, "").Trim().TrimEnd(':', ' ', '.');
}
