// CUDA launchers of the MVQ hypothesis ops (native/kernels/mvq_score.cu): hypothesis statistics,
// fused hypothesis scoring (two variants selected by name). The other MVQ ops (words, masks,
// frozen BatchNorm, token mixing) are in CudaMvq.cs.
using System.Runtime.InteropServices;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>Four ints in one kernel argument (int4).</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct Int4(int X, int Y, int Z, int W);

/// <summary>
/// MVQ kernels on CUDA; semantics and shapes as in <see cref="MvqOps"/>. mvq_score runs
/// <see cref="ScoreKernel"/> (a grid of (hypothesis blocks, B)) and then mvq_score_finalize,
/// which folds the blocks' winners into bestIndex / bestDist in ascending j.
/// </summary>
internal static class CudaMvqScore
{
    /// <summary>The shared-memory fused scoring kernel (the default).</summary>
    public const string Fused = "mvq_score_fused";
    /// <summary>The plain reference scoring kernel: one thread per hypothesis, no shared staging.</summary>
    public const string Simple = "mvq_score_simple";

    private static readonly KernelRef StatsPartialK = new("mvq_score.cu", "mvq_hidden_stats_partial");
    private static readonly KernelRef StatsFinalizeK = new("mvq_score.cu", "mvq_hidden_stats_finalize");
    private static readonly KernelRef FusedK = new("mvq_score.cu", Fused);
    private static readonly KernelRef SimpleK = new("mvq_score.cu", Simple);
    private static readonly KernelRef ScoreFinalizeK = new("mvq_score.cu", "mvq_score_finalize");

    /// <summary>Hypotheses per block of mvq_hidden_stats_partial (MVQ_STATS_HYPS in mvq_score.cu).</summary>
    internal const int StatsHyps = 32;
    /// <summary>Hypotheses per block of the scoring kernels (before balancing over the blocks).</summary>
    internal const int ScoreHyps = 32;
    /// <summary>Threads (4 warps, one hypothesis each at a time) of mvq_score_fused (its __launch_bounds__).</summary>
    internal const int FusedThreads = 128;
    /// <summary>Largest dynamic shared memory the fused kernel asks for (every sm_80+ device allows 99 KiB); above it the simple variant runs.</summary>
    internal const int MaxFusedShared = 96 * 1024;

    /// <summary>Scoring kernel used by mvq_score: <see cref="Fused"/> or <see cref="Simple"/> (benchmarks and tests switch it).</summary>
    public static string ScoreKernel { get; set; } = Fused;

    private static ulong P(Tensor t) => CudaBackend.Ptr(t);

    /// <summary>OpImpl of mvq_hidden_stats.</summary>
    public static void HiddenStats(in OpCall c)
    {
        var be = (CudaBackend)c.Backend;
        var s = MvqScoreOps.Dims(c.In[0].Shape, c.In[1].Shape, c.In[2].Shape);
        int jb = Math.Max(1, (s.J + StatsHyps - 1) / StatsHyps);
        int parts = s.B * jb;
        using var wsLock = be.LockWorkspace(Math.Max(1L, (long)parts * 2 * s.F * 8), out ulong ws);
        if (s.J > 0 && s.B > 0)
            be.Kernel(StatsPartialK).Launch(new Dim3((uint)jb, (uint)s.B), StatsThreads(s.F), (uint)(StatsTileTokens(s.L2, s.D2) * s.D2 * 4),
                P(c.In[0]), P(c.In[1]), P(c.In[2]), P(c.In[3]), new Int4(s.B, s.L2, s.D2, s.J), s.F, ws);
        else parts = 0;
        double n = (double)s.B * s.J * s.L2;
        be.Kernel(StatsFinalizeK).Launch(Blocks(s.F), CudaBackend.Threads, 0, ws, parts, s.F, n, P(c.Out[0]), P(c.Out[1]));
    }

    /// <summary>Floats of g[b] staged per tile by mvq_hidden_stats_partial (MVQ_STATS_TILE_FLOATS: 32 KiB, under the 48 KiB default).</summary>
    internal const int StatsTileFloats = 8192;

    /// <summary>Tokens per tile of mvq_hidden_stats_partial (the kernel computes the same).</summary>
    internal static int StatsTileTokens(int l2, int d2) => Math.Max(1, Math.Min(l2, StatsTileFloats / Math.Max(1, d2)));

    /// <summary>Threads of mvq_hidden_stats_partial: one per feature, whole warps, at most 256 (larger F loops).</summary>
    internal static int StatsThreads(int f) => Math.Clamp((f + 31) / 32 * 32, 32, CudaBackend.Threads);

    /// <summary>Shared memory bytes of mvq_score_fused (the layout in mvq_score.cu).</summary>
    /// With an identity mix f is streamed (weights and a [tp][F] tile per warp only), so the size does not grow with L2.
    internal static long FusedShared(int f, int d2, int d1, int l1, int l2, bool identity, int tp, int warps) =>
        identity
            ? 4L * (f * (d2 + 1) + 3 * f + d1 * (f + 1) + d1 + (long)warps * tp * f)
            : 4L * (f * (d2 + 1) + 3 * f + d1 * (f + 1) + d1 + (long)l2 * d2 + (long)l1 * d1 + (long)l1 * l2 + (long)l1 * d1
                    + (long)warps * (tp * f + (long)l2 * d1));

    /// <summary>The scoring kernel the last mvq_score call ran, with the reason when the fused one fell back (benchmarks report it).</summary>
    public static string? LastVariant { get; private set; }

    /// <summary>mvq_score calls that asked for the fused kernel and ran the simple one (its tile did not fit in shared memory).</summary>
    public static long Fallbacks => Interlocked.Read(ref _fallbacks);

    private static long _fallbacks;
    private static int _fallbackLogged;

    /// <summary>Where the one-time fallback warning goes (standard error by default).</summary>
    public static Action<string> Warn { get; set; } = m => Console.Error.WriteLine(m);

    /// <summary>OpImpl of mvq_score with <see cref="ScoreKernel"/>: a chunk of hypotheses, running argmin into bestIndex / bestDist.</summary>
    public static void Score(in OpCall c) => Score(c, ScoreKernel);

    /// <summary>OpImpl of mvq_score that always runs the reference variant <see cref="Simple"/>.</summary>
    public static void ScoreSimple(in OpCall c) => Score(c, Simple);

    /// <summary>mvq_score with the named kernel; the fused one falls back to the simple one when its shared memory would exceed <see cref="MaxFusedShared"/>.</summary>
    public static void Score(in OpCall c, string kernel)
    {
        if (kernel is not (Fused or Simple)) throw new ArgumentException($"mvq_score: unknown kernel '{kernel}' (want {Fused} or {Simple})");
        var be = (CudaBackend)c.Backend;
        var at = c.A<MvqScoreAttrs>();
        var s = MvqScoreOps.Dims(c.In[0].Shape, c.In[1].Shape, c.In[2].Shape);
        var (d1, l1) = MvqScoreOps.ScoreDims(c.In[6].Shape, c.In[10].Shape, s, at);
        if (at.Count == 0 || s.B == 0) return;

        int blocks = (at.Count + ScoreHyps - 1) / ScoreHyps;
        using var wsLock = be.LockWorkspace(8L * s.B * blocks, out ulong ws);
        // Tokens per layer-2 pass: enough (token, dim) pairs to keep the 32 lanes busy.
        int tp = Math.Clamp(32 / Math.Max(1, d1), 1, s.L2);
        int warps = FusedThreads / 32;
        long shared = FusedShared(s.F, s.D2, d1, l1, s.L2, at.IdentityMix, tp, warps);
        bool fused = kernel == Fused && shared <= MaxFusedShared;
        if (kernel == Fused && !fused)
        {
            // Visible, once per process: the slow path recomputes f's first layer D1 times per hypothesis.
            string why = $"{Simple} (fallback: the fused tile needs {shared} B of shared memory, above {MaxFusedShared} B; L1 {l1}, L2 {s.L2}, D1 {d1}, D2 {s.D2}, F {s.F}, mixed tokens)";
            LastVariant = why;
            Interlocked.Increment(ref _fallbacks);
            if (Interlocked.Exchange(ref _fallbackLogged, 1) == 0) Warn($"warning: mvq_score runs {why}");
        }
        else LastVariant = fused ? Fused : Simple;
        // Plain kernel parameters (24), values computed before the launch chain holds the kernel's lock.
        ulong g = P(c.In[0]), masks = P(c.In[1]), w1 = P(c.In[2]), b1 = P(c.In[3]), scale = P(c.In[4]), shift = P(c.In[5]),
              w2 = P(c.In[6]), b2 = P(c.In[7]), mix = at.IdentityMix ? 0 : P(c.In[8]), mixBias = at.IdentityMix ? 0 : P(c.In[9]),
              resid = P(c.In[10]), dist = P(c.Out[2]);
        int identity = at.IdentityMix ? 1 : 0;
        var grid = new Dim3((uint)blocks, (uint)s.B);
        var k = be.Kernel(fused ? FusedK : SimpleK);
        if (fused && shared > 48 * 1024) k.SetMaxDynamicSharedMemory((int)shared);
        k.Args().Add(g).Add(resid).Add(w1).Add(b1).Add(scale).Add(shift).Add(w2).Add(b2).Add(mix).Add(mixBias).Add(masks).Add(dist).Add(ws)
            .Add(s.L2).Add(s.D2).Add(s.J).Add(s.F).Add(d1).Add(l1).Add(at.Offset).Add(at.Count).Add(identity).Add(tp).Add(at.Slope)
            .Launch(grid, fused ? FusedThreads : ScoreHyps, fused ? (uint)shared : 0u);
        be.Kernel(ScoreFinalizeK).Launch(Blocks(s.B), CudaBackend.Threads, 0, ws, blocks, s.B, P(c.Out[0]), P(c.Out[1]));
    }

    private static uint Blocks(int n) => (uint)Math.Max(1, (n + CudaBackend.Threads - 1) / CudaBackend.Threads);
}
