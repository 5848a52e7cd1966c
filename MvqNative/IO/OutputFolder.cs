// OutputFolder.cs: an output folder held by one run: created, proven writable, and locked against a second writer.

namespace MvqNative.IO;

/// <summary>
/// The lock a run holds on its output folder (<c>--out</c>) from before it loads any data until it exits. The lock
/// is an exclusive advisory lock (flock) on <c>FOLDER/.mvq-lock</c>; the kernel drops it when the process ends, even
/// by kill -9, so a crashed run never leaves the folder locked. The lock file itself stays (deleting it would let two
/// runs lock two different files). Taking the lock also proves the folder is writable, so an unwritable <c>--out</c>
/// fails before training rather than at the first save. Any command that writes a folder should hold one.
/// </summary>
internal sealed class OutputFolder : IDisposable
{
    /// <summary>Name of the lock file inside a locked folder.</summary>
    public const string LockName = ".mvq-lock";

    private readonly FileStream _lock;

    private readonly bool _created;

    private OutputFolder(string path, FileStream lockStream, bool created)
    {
        Path = path;
        _lock = lockStream;
        _created = created;
    }

    /// <summary>Full path of the folder.</summary>
    public string Path { get; }

    /// <summary>Full path of <paramref name="name"/> inside the folder.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>
    /// Creates <paramref name="dir"/> when missing and locks it for this process.
    /// </summary>
    /// <param name="dir">The output folder.</param>
    /// <param name="command">What takes the lock (for messages).</param>
    /// <exception cref="MvqInputException">The path is a file, cannot be created or written, or another run holds it.</exception>
    public static OutputFolder Acquire(string dir, string command)
    {
        var full = System.IO.Path.GetFullPath(dir);
        if (System.IO.File.Exists(full)) throw new MvqInputException(full, "is a file; the output must be a folder");
        bool created = !Directory.Exists(full);
        try { Directory.CreateDirectory(full); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new MvqInputException(full, $"cannot create the output folder ({Reason(e)})", e);
        }
        var lockPath = System.IO.Path.Combine(full, LockName);
        FileStream fs;
        try
        {
            // FileShare.None takes flock(LOCK_EX | LOCK_NB) on Unix: a second holder fails at once instead of waiting.
            fs = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException e) { throw new MvqInputException(full, "output folder is not writable (permission denied)", e); }
        catch (IOException e) when (e.HResult == 11 || e.Message.Contains("another process", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("locked", StringComparison.OrdinalIgnoreCase))
        {
            throw new MvqInputException(full, $"another mvq run is writing to this folder (it holds {LockName}); {command} refused; wait for it to finish or choose another output folder", e);
        }
        catch (IOException e) { throw new MvqInputException(full, $"output folder is not writable ({Reason(e)})", e); }
        // The lock file stays empty: a run changes no byte of a file that was there before it (the lock included).
        return new OutputFolder(full, fs, created);
    }

    private static string Reason(Exception e) => e.Message.Replace('\n', ' ');

    /// <summary>
    /// Releases the lock. The lock file stays, unless this run created the folder and wrote nothing into it (a run
    /// refused after taking the lock): then the folder is removed again, so a failed command leaves no trace.
    /// </summary>
    public void Dispose()
    {
        try
        {
            if (_created && Directory.EnumerateFileSystemEntries(Path).All(e => System.IO.Path.GetFileName(e) == LockName))
            {
                System.IO.File.Delete(System.IO.Path.Combine(Path, LockName));
                Directory.Delete(Path);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        _lock.Dispose();
    }
}
