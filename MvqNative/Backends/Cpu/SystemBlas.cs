// Optional binding to the system OpenBLAS (cblas_sgemm), resolved at run time with NativeLibrary
// so the library runs without it; used as an alternative GEMM provider and as the benchmark yardstick.
using System.Runtime.InteropServices;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// The system BLAS <c>cblas_sgemm</c>, if one can be loaded: MVQ_BLAS_LIB (a path) first, then
/// libopenblas.so.0, libopenblas.so, libblas.so.3 (and the macOS/Windows names).
/// </summary>
internal static unsafe class SystemBlas
{
    private const int CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112;

    private static readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> s_sgemm;
    private static readonly delegate* unmanaged[Cdecl]<int, void> s_setThreads;
    private static readonly delegate* unmanaged[Cdecl]<byte*> s_coreName;
    private static int s_threadsSet;
    private static readonly Lock s_threadLock = new();

    /// <summary>True when a library exporting cblas_sgemm was loaded.</summary>
    public static bool IsAvailable => s_sgemm != null;

    /// <summary>Path (or name, when the loader resolved it) of the loaded library; null when none.</summary>
    public static string? LibraryPath { get; }

    /// <summary>OpenBLAS's name for the kernel set it picked for this CPU (e.g. "Haswell"), when exported.</summary>
    public static string? CoreName => s_coreName == null ? null : Marshal.PtrToStringAnsi((nint)s_coreName());

    /// <summary>True when the library lets us set its thread count (openblas_set_num_threads).</summary>
    public static bool CanSetThreads => s_setThreads != null;

    static SystemBlas()
    {
        foreach (var candidate in Candidates())
        {
            if (!NativeLibrary.TryLoad(candidate, out var handle)) continue;
            if (!NativeLibrary.TryGetExport(handle, "cblas_sgemm", out var fn)) { NativeLibrary.Free(handle); continue; }
            s_sgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)fn;
            if (NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out var st))
                s_setThreads = (delegate* unmanaged[Cdecl]<int, void>)st;
            if (NativeLibrary.TryGetExport(handle, "openblas_get_corename", out var cn))
                s_coreName = (delegate* unmanaged[Cdecl]<byte*>)cn;
            LibraryPath = candidate;
            return;
        }
    }

    /// <summary>Full paths where a standard directory holds the file, else bare names for the OS loader.</summary>
    private static IEnumerable<string> Candidates()
    {
        var forced = Environment.GetEnvironmentVariable("MVQ_BLAS_LIB");
        if (!string.IsNullOrWhiteSpace(forced)) yield return forced;
        string[] names = OperatingSystem.IsWindows() ? ["libopenblas.dll", "openblas.dll"]
            : OperatingSystem.IsMacOS() ? ["libopenblas.0.dylib", "libopenblas.dylib"]
            : ["libopenblas.so.0", "libopenblas.so", "libblas.so.3"];
        var dirs = new List<string>();
        foreach (var d in (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)) dirs.Add(d);
        if (OperatingSystem.IsLinux())
        {
            string triple = RuntimeInformation.ProcessArchitecture switch
            {
                Architecture.X64 => "x86_64-linux-gnu", Architecture.Arm64 => "aarch64-linux-gnu", _ => "",
            };
            if (triple.Length > 0) dirs.Add($"/usr/lib/{triple}");
            dirs.AddRange(["/usr/lib64", "/usr/lib", "/usr/local/lib"]);
        }
        if (OperatingSystem.IsMacOS()) dirs.AddRange(["/opt/homebrew/opt/openblas/lib", "/usr/local/opt/openblas/lib"]);
        foreach (var name in names)
        {
            foreach (var d in dirs)
            {
                var p = Path.Combine(d, name);
                if (File.Exists(p)) yield return p;
            }
            yield return name;
        }
    }

    /// <summary>Sets OpenBLAS's thread count (no-op when the library has no such export).</summary>
    public static void SetThreads(int threads)
    {
        if (s_setThreads == null || threads < 1) return;
        lock (s_threadLock)
        {
            if (s_threadsSet == threads) return;
            s_setThreads(threads);
            s_threadsSet = threads;
        }
    }

    /// <summary>
    /// Same contract as <see cref="CpuGemm.Sgemm"/>, computed by cblas_sgemm with
    /// <see cref="CpuParallel.Threads"/> threads. Throws <see cref="PlatformNotSupportedException"/> when no BLAS loaded.
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (!IsAvailable) throw new PlatformNotSupportedException("no system BLAS with cblas_sgemm was found");
        CpuGemm.Validate(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc);
        if (m == 0 || n == 0) return;
        SgemmUnchecked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    internal static void SgemmUnchecked(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        SetThreads(CpuParallel.Threads);
        s_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}
