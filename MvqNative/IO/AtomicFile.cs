// AtomicFile.cs: write-to-temp, fsync, rename; the shared way every output file of the library is written.
namespace MvqNative.IO;

/// <summary>Atomic file replacement: readers see the old file or the complete new one, never a partial one.</summary>
internal static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> by calling <paramref name="write"/> on a temp file in the same directory,
    /// flushing it to disk, then renaming it over the target. If <paramref name="write"/> or any step throws,
    /// the temp file is deleted and the previous file (if any) is left untouched.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        // Same directory so the final rename never crosses file systems (a rename within one is atomic).
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
