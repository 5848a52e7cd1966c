// PriorSampler.cs: batched incremental decoding with a KV cache (one position per step for B sequences),
// segment-restricted logits, temperature / top-k / top-p sampling with per-image seeds.
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Backends.Cuda;
using MvqNative.Backends.Cuda.Kernels;
using MvqNative.Data;
using MvqNative.Layers;
using MvqNative.Mvq;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Prior;

/// <summary>Sampling knobs: temperature &gt; 0; top-k (0 = off); top-p in (0, 1] (1 = off); seed.</summary>
internal sealed record SamplingOptions(float Temperature = 1f, int TopK = 0, float TopP = 1f, int Seed = 1)
{
    public void Validate()
    {
        if (!(Temperature > 0) || !float.IsFinite(Temperature)) throw new MvqUsageException($"--temperature must be > 0, got {Temperature}");
        if (TopK < 0) throw new MvqUsageException($"--top-k must be >= 0 (0 = off), got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new MvqUsageException($"--top-p must be in (0, 1], got {TopP}");
    }
}

/// <summary>
/// Samples codes from a <see cref="TransformerPrior"/> by incremental decoding: step t embeds the token at
/// position t (the start token at t = 0), runs every block on that one row per sequence (the block's keys and
/// values are appended to its cache, attention_decode reads rows 0..t), and computes only the logits of
/// position t's segment (the head's weight rows [lo, hi)), so an invalid code is never drawn and the cost per
/// token does not grow with the prefix except in attention. Image i of a run draws from Random(SeedFor(seed, i)),
/// so its code does not depend on the batch size.
/// </summary>
/// <remarks>
/// On the CPU backend the first <see cref="Sample"/> packs every projection's weight (and the head's rows of each
/// segment) into the GEMM's panel layout and keeps the packs until <see cref="Dispose"/>, so a sampling step streams
/// each weight once instead of packing it on every call. The packs are a snapshot: a sampler must not outlive a
/// change of the prior's weights (create one per sampling session; training never holds one). The codes are
/// bit-identical to the unpacked path (<c>MVQ_SAMPLE_PACK=0</c>), which a test checks.
/// </remarks>
internal sealed partial class PriorSampler : IDisposable
{
    private readonly TransformerPrior _m;
    private readonly Backend _b;
    private readonly Arena _arena;
    private readonly int _c, _t;

    /// <param name="model">The prior (its weights must not change while this sampler lives).</param>
    /// <param name="packWeights">Pack the weights on the CPU (default: on unless MVQ_SAMPLE_PACK=0; only with the managed
    /// GEMM, whose panel layout the packs hold). Off gives the same codes, slower.</param>
    /// <param name="cudaGraphs">On CUDA: capture one decoding step as a CUDA graph and replay it per position (default
    /// on); off runs the same device step eagerly. Ignored on the CPU.</param>
    public PriorSampler(TransformerPrior model, bool? packWeights = null, bool cudaGraphs = true)
    {
        _graphs = cudaGraphs;
        _pack = (packWeights ?? s_packDefault) && model.Backend is CpuBackend && CpuGemm.Provider == GemmProvider.Managed;
        _m = model;
        _b = model.Backend;
        _arena = new Arena(_b);
        _c = model.Config.Width;
        _t = model.Layout.Length;
    }

    private Packs? _packs;

    /// <summary>Milliseconds the first <see cref="Sample"/> spent packing the weights (CPU only; 0 otherwise), included in its <see cref="LastMilliseconds"/>.</summary>
    public double PackMilliseconds { get; private set; }

    /// <summary>Process CPU milliseconds (CLOCK_PROCESS_CPUTIME_ID, every thread) spent in the last <see cref="Sample"/>: a
    /// figure that a loaded machine inflates far less than the wall clock (benchmarks report both).</summary>
    public double LastCpuMilliseconds { get; private set; }

    /// <summary>Wall-clock milliseconds spent in the last <see cref="Sample"/>.</summary>
    public double LastMilliseconds { get; private set; }

    /// <summary>Codes [count, T] (local ids per segment) of <paramref name="count"/> images, drawn <paramref name="batch"/> at a time.</summary>
    public int[] Sample(int count, int batch, SamplingOptions opt, int firstIndex = 0)
    {
        opt.Validate();
        if (count < 1) throw new MvqUsageException($"--count must be >= 1, got {count}");
        if (batch < 1) throw new MvqUsageException($"--batch must be >= 1, got {batch}");
        long cpu0 = CpuNanoseconds(2 /* CLOCK_PROCESS_CPUTIME_ID */);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var codes = new int[count * _t];
        if (Profiling) Array.Clear(_profile);
        // On the CPU the weights are packed once per call (they cannot change during it) instead of once per GEMM.
        Tick(-1);
        if (_packs is null && _pack)
        {
            // On the CPU the weights are packed once per sampler (see the class remarks) instead of once per GEMM.
            _packs = new Packs(_m);
            PackMilliseconds = sw.Elapsed.TotalMilliseconds;
        }
        Tick(0);
        var runStart = _b is CudaBackend c0 ? c0.Counters.Snapshot() : default;
        if (_b is CudaBackend) { StepCounts = default; CountedSteps = 0; }
        for (int start = 0; start < count; start += batch)
        {
            int b = Math.Min(batch, count - start);
            if (_b is CudaBackend cuda) { SampleBatchDevice(cuda, b, opt, (long)firstIndex + start, codes.AsSpan(start * _t, b * _t)); continue; }
            var rngs = Enumerable.Range(start, b).Select(i => new Random(Batcher.SeedFor(opt.Seed, firstIndex + i))).ToArray();
            SampleBatch(b, opt, rngs, codes.AsSpan(start * _t, b * _t), _packs);
        }
        if (_b is CudaBackend c1) RunCounts = c1.Counters.Snapshot() - runStart;
        LastMilliseconds = sw.Elapsed.TotalMilliseconds;
        LastCpuMilliseconds = (CpuNanoseconds(2) - cpu0) * 1e-6;
        return codes;
    }

    /// <summary>MVQ_SAMPLE_PROFILE=1: <see cref="Sample"/> times each kind of op (<see cref="LastProfile"/>).</summary>
    public static bool Profiling { get; set; } = Environment.GetEnvironmentVariable("MVQ_SAMPLE_PROFILE") == "1";

    /// <summary>Names of the profiled op kinds, in <see cref="LastProfile"/> order.</summary>
    public static readonly string[] ProfileNames = ["setup", "embed", "layernorm", "qkv", "kv_attention", "attn_proj", "residual", "mlp_fc", "gelu", "mlp_proj", "head", "download", "draw"];
    private readonly double[] _profile = new double[ProfileNames.Length];
    private long _mark;

    /// <summary>Milliseconds per op kind in the last <see cref="Sample"/> (zeros unless <see cref="Profiling"/>).</summary>
    public double[] LastProfile => (double[])_profile.Clone();

    // The profile reads the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not the wall clock, so that time
    // the thread spends preempted on a loaded machine is not charged to whichever op was running; it is meant for
    // MVQ_THREADS=1 (work on other threads is not seen).
    private void Tick(int kind)
    {
        if (!Profiling) return;
        long now = ThreadCpuNanoseconds();
        if (kind >= 0) _profile[kind] += (now - _mark) * 1e-6;
        _mark = now;
    }

    private static long ThreadCpuNanoseconds() => CpuNanoseconds(3 /* CLOCK_THREAD_CPUTIME_ID */);

    // clock_gettime of a CPU-time clock (Linux); elsewhere the wall clock stands in.
    private static unsafe long CpuNanoseconds(int clock)
    {
        if (!OperatingSystem.IsLinux()) return (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1e9 / System.Diagnostics.Stopwatch.Frequency));
        long* ts = stackalloc long[2];
        return clock_gettime(clock, ts) == 0 ? ts[0] * 1_000_000_000 + ts[1] : 0;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern unsafe int clock_gettime(int clock, long* ts);

    /// <summary>MVQ_SAMPLE_PACK=0 turns off the CPU weight packing (same codes, for side-by-side timing).</summary>
    private static readonly bool s_packDefault = Environment.GetEnvironmentVariable("MVQ_SAMPLE_PACK") != "0";
    private readonly bool _pack;

    /// <summary>The CPU packs of every projection and of the head's rows of each segment.</summary>
    private sealed class Packs : IDisposable
    {
        public readonly CpuPackedLinear[][] Blocks;
        public readonly Dictionary<int, CpuPackedLinear> Head = [];

        public Packs(TransformerPrior m)
        {
            Blocks = m.Blocks.Select(b => new[] { P(b.Attn.Qkv), P(b.Attn.Proj), P(b.Mlp.Fc), P(b.Mlp.Proj) }).ToArray();
            for (int t = 0; t < m.Layout.Length; t++)
            {
                var (lo, hi) = m.Layout.Bounds(t);
                if (!Head.ContainsKey(lo)) Head[lo] = new CpuPackedLinear(m.Head.Weight.Value.Slice0(lo, hi - lo), m.Head.Bias.Value.Slice0(lo, hi - lo));
            }
        }

        private static CpuPackedLinear P(Linear l) => new(l.Weight.Value, l.Bias.Value);

        public void Dispose()
        {
            foreach (var p in Blocks.SelectMany(x => x)) p.Dispose();
            foreach (var p in Head.Values) p.Dispose();
        }
    }

    private void SampleBatch(int b, SamplingOptions opt, Random[] rngs, Span<int> codes, Packs? packs)
    {
        var layout = _m.Layout;
        var blocks = _m.Blocks.ToArray();
        var ids = _arena.GetInt("ids", b);
        var posIds = _arena.GetInt("pos_ids", b);
        var pos = _arena.GetInt("pos", 1);
        var te = _arena.Get("te", b, _c); var pe = _arena.Get("pe", b, _c);
        var sc = Scratch(b, blocks.Length);
        var (x, h, mean, rstd) = (sc.X, sc.H, sc.Mean, sc.Rstd);
        var hostIds = new int[b];
        Array.Fill(hostIds, layout.StartToken);
        var hostPos = new int[b];
        var hostT = new int[1];
        float[] logitsHost = [];
        var probs = new float[layout.Vocabulary];
        var order = new int[layout.Vocabulary];
        var attrs = new AttentionAttrs(b, _t, _m.Config.Heads);
        Tick(0);
        for (int t = 0; t < _t; t++)
        {
            ids.CopyFrom(hostIds);
            Array.Fill(hostPos, t);
            posIds.CopyFrom(hostPos);
            hostT[0] = t;
            pos.CopyFrom(hostT);
            PriorKernels.Embedding(_b, ids, _m.TokEmb.Weight.Value, te);
            PriorKernels.Embedding(_b, posIds, _m.PosEmb.Weight.Value, pe);
            ElementwiseOps.Add.Run(_b, [te, pe], [x]);
            Tick(1);
            RunBlocks(blocks, sc, packs, pos, attrs);
            PriorKernels.LayerNorm(_b, x, _m.LnF.Weight.Value, _m.LnF.Bias.Value, h, mean, rstd, _m.LnF.Attrs);
            Tick(2);
            var (lo, hi) = layout.Bounds(t);
            int v = hi - lo;
            var logits = _arena.Get("logits", b, v);
            if (packs != null) packs.Head[lo].Forward(h, logits);
            else LinearOps.Forward.Run(_b, [h, _m.Head.Weight.Value.Slice0(lo, v), _m.Head.Bias.Value.Slice0(lo, v)], [logits]);
            Tick(10);
            if (logitsHost.Length != b * v) logitsHost = new float[b * v];
            logits.Backend.Download(logits.Buffer, logits.Offset, logitsHost.AsSpan());
            Tick(11);
            for (int i = 0; i < b; i++)
            {
                int k = Draw(logitsHost.AsSpan(i * v, v), opt, rngs[i], probs, order);
                codes[i * _t + t] = k;
                hostIds[i] = lo + k;
            }
            Tick(12);
        }
    }

    // ---- CUDA: the whole step on the device, optionally captured once and replayed ----

    private readonly bool _graphs;
    private CudaGraph? _graph;
    private (int Batch, SamplingOptions Opt) _graphKey;

    /// <summary>Test hook: leave the position advance out of the captured step (a frozen position), to show that the
    /// graph-against-eager test catches a per-position value frozen into the graph.</summary>
    internal bool BreakGraphFreezePosition { get; set; }

    /// <summary>On CUDA: what the decoding steps after the first of each batch asked of the driver in the last
    /// <see cref="Sample"/> (summed over batches), and how many such steps ran. Not counted: the per-batch setup
    /// (uploads of the start tokens, position and image index), the first (eager) step and the final copy of the codes.</summary>
    public CudaCounts StepCounts { get; private set; }

    /// <summary>On CUDA: what the whole last <see cref="Sample"/> asked of the driver (setup, steps, the copy of the codes).</summary>
    public CudaCounts RunCounts { get; private set; }

    /// <summary>Decoding steps counted in <see cref="StepCounts"/>.</summary>
    public int CountedSteps { get; private set; }

    /// <summary>Nodes of the captured step graph (0 when none).</summary>
    public long GraphNodes => _graph?.Nodes ?? 0;

    /// <summary>The logits [B, V] of the last step on the device (tests).</summary>
    internal float[] LastDeviceLogits() => _arena.Get("logits_all", _lastDeviceBatch, _m.Layout.Vocabulary).ToArray();
    private int _lastDeviceBatch;

    /// <summary>
    /// One batch on CUDA. The position, the input tokens and the image counter live in device memory; a step is
    /// embed (prior_sample_embed), the blocks (kv_cache_append and attention_decode read pos on the device), the
    /// final norm, the head over the whole vocabulary and prior_sample_draw (segment bounds read per position from
    /// a device table), then prior_sample_advance. Step 0 runs eagerly (it settles the arena, the kernels and cuBLAS);
    /// with graphs on, step 1 is captured once per (batch size, options) and every later step is one graph launch.
    /// The codes come back in one copy at the end.
    /// </summary>
    private void SampleBatchDevice(CudaBackend cb, int b, SamplingOptions opt, long imageBase, Span<int> codes)
    {
        var layout = _m.Layout;
        int vocab = layout.Vocabulary;
        var blocks = _m.Blocks.ToArray();
        var ids = _arena.GetInt("ids", b);
        var pos = _arena.GetInt("pos", 1);
        var baseT = _arena.GetInt("image_base", 2);
        var bounds = _arena.GetInt("bounds", _t, 2);
        var codesDev = _arena.GetInt("codes", b, _t);
        var work = _arena.Get("draw_work", b, 2 * vocab);
        var logits = _arena.Get("logits_all", b, vocab);
        var sc = Scratch(b, blocks.Length);
        var (x, h, mean, rstd) = (sc.X, sc.H, sc.Mean, sc.Rstd);
        var attrs = new AttentionAttrs(b, _t, _m.Config.Heads);
        _lastDeviceBatch = b;

        // Per-batch setup: three small uploads (and the bounds table), outside the steps.
        var hostIds = new int[b];
        Array.Fill(hostIds, layout.StartToken);
        ids.CopyFrom(hostIds);
        pos.CopyFrom([0]);
        cb.Upload(baseT.Buffer, baseT.Offset, (ReadOnlySpan<long>)[imageBase]);
        var hb = new int[2 * _t];
        for (int t = 0; t < _t; t++) (hb[2 * t], hb[2 * t + 1]) = layout.Bounds(t);
        bounds.CopyFrom(hb);

        void Step(bool advance)
        {
            CudaPriorSample.Embed(cb, x, _m.TokEmb.Weight.Value, _m.PosEmb.Weight.Value, ids, pos);
            RunBlocks(blocks, sc, null, pos, attrs);
            PriorKernels.LayerNorm(_b, x, _m.LnF.Weight.Value, _m.LnF.Bias.Value, h, mean, rstd, _m.LnF.Attrs);
            Lin(_m.Head, null, h, logits);
            CudaPriorSample.Draw(cb, codesDev, ids, logits, work, pos, bounds, baseT, opt.Temperature, opt.TopK, opt.TopP, MaskHash.Seed(opt.Seed));
            if (advance) CudaPriorSample.Advance(cb, pos);
        }

        Step(true);
        if (_t > 1)
        {
            if (_graphs && (_graph is null || _graphKey != (b, opt)))
            {
                _graph?.Dispose();
                _graph = null;
                _graph = cb.CaptureGraph(() => Step(!BreakGraphFreezePosition));
                _graphKey = (b, opt);
            }
            var before = cb.Counters.Snapshot();
            for (int t = 1; t < _t; t++)
            {
                if (_graph is not null && _graphs) _graph.Launch();
                else Step(true);
            }
            StepCounts += cb.Counters.Snapshot() - before;
            CountedSteps += _t - 1;
        }
        codesDev.Backend.Download(codesDev.Buffer, codesDev.Offset, codes);
    }

    // The per-batch buffers of one decoding step (arena-owned, reused across batches of the same size).
    private sealed record StepScratch(Tensor X, Tensor H, Tensor X1, Tensor Mean, Tensor Rstd, Tensor Qkv, Tensor Att, Tensor O,
        Tensor F, Tensor G, Tensor[] K, Tensor[] V);

    private StepScratch Scratch(int b, int layers)
    {
        int hidden = _m.Config.MlpRatio * _c;
        var k = new Tensor[layers]; var v = new Tensor[layers];
        for (int l = 0; l < layers; l++) { k[l] = _arena.Get($"k{l}", b, _t, _c); v[l] = _arena.Get($"v{l}", b, _t, _c); }
        return new StepScratch(_arena.Get("x", b, _c), _arena.Get("h", b, _c), _arena.Get("x1", b, _c), _arena.Get("mean", b), _arena.Get("rstd", b),
            _arena.Get("qkv", b, 3 * _c), _arena.Get("att", b, _c), _arena.Get("o", b, _c), _arena.Get("f", b, hidden), _arena.Get("g", b, hidden), k, v);
    }

    // The transformer blocks of one decoding step at position pos, x -> x in place (both paths; packs only on the CPU;
    // the ticks are host-side and cost nothing unless profiling).
    private void RunBlocks(TransformerBlock[] blocks, StepScratch s, Packs? packs, Tensor pos, AttentionAttrs attrs)
    {
        var (x, h, x1, mean, rstd, qkv, att, o, f, g) = (s.X, s.H, s.X1, s.Mean, s.Rstd, s.Qkv, s.Att, s.O, s.F, s.G);
        for (int l = 0; l < blocks.Length; l++)
        {
            var blk = blocks[l];
            var pk = packs?.Blocks[l];
            var kc = s.K[l]; var vc = s.V[l];
            PriorKernels.LayerNorm(_b, x, blk.Ln1.Weight.Value, blk.Ln1.Bias.Value, h, mean, rstd, blk.Ln1.Attrs);
            Tick(2);
            Lin(blk.Attn.Qkv, pk?[0], h, qkv);
            Tick(3);
            PriorKernels.KvCacheAppend(_b, qkv, pos, kc, vc, attrs);
            PriorKernels.AttentionDecode(_b, qkv, kc, vc, pos, att, attrs);
            Tick(4);
            Lin(blk.Attn.Proj, pk?[1], att, o);
            Tick(5);
            ElementwiseOps.Add.Run(_b, [x, o], [x1]);
            Tick(6);
            PriorKernels.LayerNorm(_b, x1, blk.Ln2.Weight.Value, blk.Ln2.Bias.Value, h, mean, rstd, blk.Ln2.Attrs);
            Tick(2);
            Lin(blk.Mlp.Fc, pk?[2], h, f);
            Tick(7);
            PriorKernels.Gelu(_b, f, g);
            Tick(8);
            Lin(blk.Mlp.Proj, pk?[3], g, o);
            Tick(9);
            ElementwiseOps.Add.Run(_b, [x1, o], [x]);
            Tick(6);
        }
    }

    private void Lin(Linear l, CpuPackedLinear? packed, Tensor x, Tensor y)
    {
        if (packed != null) packed.Forward(x, y);
        else LinearOps.Forward.Run(_b, [x, l.Weight.Value, l.Bias.Value], [y]);
    }

    /// <summary>
    /// One draw from softmax(logits / temperature) restricted to the top-k entries and then to the smallest set of
    /// most probable entries whose mass reaches top-p (ties broken by index). Returns the local index.
    /// </summary>
    public static int Draw(ReadOnlySpan<float> logits, SamplingOptions opt, Random rng, float[] probs, int[] order) =>
        Draw(logits, opt, rng.NextDouble(), probs, order);

    /// <summary>
    /// The draw of CUDA's prior_sample_draw on the host: the same rule with u = <see cref="DeviceUniform"/>(seed, image,
    /// position) (tests compare the kernel with it).
    /// </summary>
    public static int DrawDevice(ReadOnlySpan<float> logits, SamplingOptions opt, long image, int position, float[] probs, int[] order) =>
        Draw(logits, opt, DeviceUniform(MaskHash.Seed(opt.Seed), (ulong)image, (ulong)position), probs, order);

    /// <summary>u in [0, 1) of image <paramref name="image"/> at <paramref name="position"/>:
    /// (mix(mix(mix(seed + 0x9E3779B97F4A7C15) ^ image) ^ position) &gt;&gt; 11) * 2^-53 (prior_sample.cu).</summary>
    public static double DeviceUniform(ulong seed, ulong image, ulong position)
    {
        ulong h = MaskHash.Mix(MaskHash.Mix(MaskHash.Mix(unchecked(seed + 0x9E3779B97F4A7C15UL)) ^ image) ^ position);
        return (h >> 11) * (1.0 / 9007199254740992.0);
    }

    // u01: the draw's uniform number in [0, 1) (the only use of the generator, so drawing it first changes nothing).
    private static int Draw(ReadOnlySpan<float> logits, SamplingOptions opt, double u01, float[] probs, int[] order)
    {
        int v = logits.Length;
        float mx = float.NegativeInfinity;
        for (int j = 0; j < v; j++) mx = MathF.Max(mx, logits[j]);
        double sum = 0;
        for (int j = 0; j < v; j++) { probs[j] = MathF.Exp((logits[j] - mx) / opt.Temperature); sum += probs[j]; order[j] = j; }
        int keep = v;
        if (opt.TopK > 0 || opt.TopP < 1)
        {
            var p = probs;
            Array.Sort(order, 0, v, Comparer<int>.Create((a, c) => p[c] != p[a] ? p[c].CompareTo(p[a]) : a.CompareTo(c)));
            if (opt.TopK > 0) keep = Math.Min(keep, opt.TopK);
            if (opt.TopP < 1)
            {
                double acc = 0, target = opt.TopP * sum;
                int n = 0;
                while (n < keep) { acc += probs[order[n]]; n++; if (acc >= target) break; }
                keep = n;
            }
            sum = 0;
            for (int j = 0; j < keep; j++) sum += probs[order[j]];
        }
        double u = u01 * sum, c2 = 0;
        for (int j = 0; j < keep; j++)
        {
            c2 += probs[order[j]];
            if (u < c2) return order[j];
        }
        return order[keep - 1];
    }

    public void Dispose()
    {
        _graph?.Dispose();
        _graph = null;
        _packs?.Dispose();
        _packs = null;
        _arena.Dispose();
    }
}
