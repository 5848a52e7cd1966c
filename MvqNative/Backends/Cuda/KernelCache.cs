// On-disk cache of compiled kernel images, keyed by SHA-256 of everything that affects them.
using System.Security.Cryptography;
using System.Text;

namespace MvqNative.Backends.Cuda;

/// <summary>
/// A folder of compiled kernel images (NAME = hex SHA-256 key, extension .cubin or .ptx).
/// The key covers the source and every header, the options, the arch and the NVRTC version,
/// so a hit never needs NVRTC. Writes are atomic (temp file + rename); an unwritable folder
/// only costs recompiles.
/// </summary>
internal sealed class KernelCache
{
    private long _hits, _misses;

    /// <param name="folder">Cache folder; created on first write.</param>
    public KernelCache(string folder) => Folder = Path.GetFullPath(folder);

    /// <summary>The cache folder.</summary>
    public string Folder { get; }
    /// <summary>Lookups answered from disk.</summary>
    public long Hits => Interlocked.Read(ref _hits);
    /// <summary>Lookups that needed a compile.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>$MVQ_CACHE, else ~/.cache/mvqnative/kernels.</summary>
    public static string DefaultFolder()
    {
        var env = Environment.GetEnvironmentVariable("MVQ_CACHE");
        if (!string.IsNullOrEmpty(env)) return env;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home)) home = Path.GetTempPath();
        return Path.Combine(home, ".cache", "mvqnative", "kernels");
    }

    /// <summary>The cache key: hex SHA-256 over every input of a compile (NUL-separated).</summary>
    public static string Key(string name, string source, IEnumerable<KeyValuePair<string, string>> headers,
        IEnumerable<string> options, string arch, string nvrtcVersion, bool cubin)
    {
        var sb = new StringBuilder();
        void Part(string s) => sb.Append(s).Append('\0');
        Part("mvq-kernel-v1"); Part(name); Part(source);
        foreach (var h in headers.OrderBy(h => h.Key, StringComparer.Ordinal)) { Part(h.Key); Part(h.Value); }
        foreach (var o in options) Part(o);
        Part(arch); Part(nvrtcVersion); Part(cubin ? "cubin" : "ptx");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    private string PathOf(string key, bool cubin) => Path.Combine(Folder, key + (cubin ? ".cubin" : ".ptx"));

    /// <summary>Reads an image; counts a hit or a miss.</summary>
    public bool TryGet(string key, bool cubin, out byte[] image)
    {
        try
        {
            var p = PathOf(key, cubin);
            if (File.Exists(p))
            {
                image = File.ReadAllBytes(p);
                if (image.Length > 0) { Interlocked.Increment(ref _hits); return true; }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        Interlocked.Increment(ref _misses);
        image = [];
        return false;
    }

    /// <summary>Stores an image atomically; failures to write are ignored (the cache is an optimisation).</summary>
    public void Put(string key, bool cubin, byte[] image)
    {
        try
        {
            Directory.CreateDirectory(Folder);
            var final = PathOf(key, cubin);
            var tmp = $"{final}.{Environment.ProcessId}.{Environment.CurrentManagedThreadId}.tmp";
            File.WriteAllBytes(tmp, image);
            File.Move(tmp, final, overwrite: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
