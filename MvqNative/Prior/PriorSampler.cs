// PriorSampler.cs: batched incremental decoding with a KV cache (one position per step for B sequences),
// segment-restricted logits, temperature / top-k / top-p sampling with per-image seeds.
using MvqNative.Backends;
using MvqNative.Data;
using MvqNative.Layers;
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
internal sealed class PriorSampler : IDisposable
{
    private readonly TransformerPrior _m;
    private readonly Backend _b;
    private readonly Arena _arena;
    private readonly int _c, _t;

    public PriorSampler(TransformerPrior model)
    {
        _m = model;
        _b = model.Backend;
        _arena = new Arena(_b);
        _c = model.Config.Width;
        _t = model.Layout.Length;
    }

    /// <summary>Wall-clock milliseconds spent in the last <see cref="Sample"/>.</summary>
    public double LastMilliseconds { get; private set; }

    /// <summary>Codes [count, T] (local ids per segment) of <paramref name="count"/> images, drawn <paramref name="batch"/> at a time.</summary>
    public int[] Sample(int count, int batch, SamplingOptions opt, int firstIndex = 0)
    {
        opt.Validate();
        if (count < 1) throw new MvqUsageException($"--count must be >= 1, got {count}");
        if (batch < 1) throw new MvqUsageException($"--batch must be >= 1, got {batch}");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var codes = new int[count * _t];
        for (int start = 0; start < count; start += batch)
        {
            int b = Math.Min(batch, count - start);
            var rngs = Enumerable.Range(start, b).Select(i => new Random(Batcher.SeedFor(opt.Seed, firstIndex + i))).ToArray();
            SampleBatch(b, opt, rngs, codes.AsSpan(start * _t, b * _t));
        }
        LastMilliseconds = sw.Elapsed.TotalMilliseconds;
        return codes;
    }

    private void SampleBatch(int b, SamplingOptions opt, Random[] rngs, Span<int> codes)
    {
        var layout = _m.Layout;
        var blocks = _m.Blocks.ToArray();
        var ids = _arena.GetInt("ids", b);
        var posIds = _arena.GetInt("pos_ids", b);
        var pos = _arena.GetInt("pos", 1);
        var te = _arena.Get("te", b, _c); var pe = _arena.Get("pe", b, _c);
        var x = _arena.Get("x", b, _c); var h = _arena.Get("h", b, _c); var x1 = _arena.Get("x1", b, _c);
        var mean = _arena.Get("mean", b); var rstd = _arena.Get("rstd", b);
        var qkv = _arena.Get("qkv", b, 3 * _c); var att = _arena.Get("att", b, _c); var o = _arena.Get("o", b, _c);
        int hidden = _m.Config.MlpRatio * _c;
        var f = _arena.Get("f", b, hidden); var g = _arena.Get("g", b, hidden);
        var hostIds = new int[b];
        Array.Fill(hostIds, layout.StartToken);
        var hostPos = new int[b];
        float[] logitsHost = [];
        var probs = new float[layout.Vocabulary];
        var order = new int[layout.Vocabulary];
        var attrs = new AttentionAttrs(b, _t, _m.Config.Heads);
        for (int t = 0; t < _t; t++)
        {
            ids.CopyFrom(hostIds);
            Array.Fill(hostPos, t);
            posIds.CopyFrom(hostPos);
            pos.CopyFrom([t]);
            PriorKernels.Embedding(_b, ids, _m.TokEmb.Weight.Value, te);
            PriorKernels.Embedding(_b, posIds, _m.PosEmb.Weight.Value, pe);
            ElementwiseOps.Add.Run(_b, [te, pe], [x]);
            for (int l = 0; l < blocks.Length; l++)
            {
                var blk = blocks[l];
                var kc = _arena.Get($"k{l}", b, _t, _c); var vc = _arena.Get($"v{l}", b, _t, _c);
                PriorKernels.LayerNorm(_b, x, blk.Ln1.Weight.Value, blk.Ln1.Bias.Value, h, mean, rstd, blk.Ln1.Attrs);
                Lin(blk.Attn.Qkv, h, qkv);
                PriorKernels.KvCacheAppend(_b, qkv, pos, kc, vc, attrs);
                PriorKernels.AttentionDecode(_b, qkv, kc, vc, pos, att, attrs);
                Lin(blk.Attn.Proj, att, o);
                ElementwiseOps.Add.Run(_b, [x, o], [x1]);
                PriorKernels.LayerNorm(_b, x1, blk.Ln2.Weight.Value, blk.Ln2.Bias.Value, h, mean, rstd, blk.Ln2.Attrs);
                Lin(blk.Mlp.Fc, h, f);
                PriorKernels.Gelu(_b, f, g);
                Lin(blk.Mlp.Proj, g, o);
                ElementwiseOps.Add.Run(_b, [x1, o], [x]);
            }
            PriorKernels.LayerNorm(_b, x, _m.LnF.Weight.Value, _m.LnF.Bias.Value, h, mean, rstd, _m.LnF.Attrs);
            var (lo, hi) = layout.Bounds(t);
            int v = hi - lo;
            var logits = _arena.Get("logits", b, v);
            LinearOps.Forward.Run(_b, [h, _m.Head.Weight.Value.Slice0(lo, v), _m.Head.Bias.Value.Slice0(lo, v)], [logits]);
            if (logitsHost.Length != b * v) logitsHost = new float[b * v];
            logits.Backend.Download(logits.Buffer, logits.Offset, logitsHost.AsSpan());
            for (int i = 0; i < b; i++)
            {
                int k = Draw(logitsHost.AsSpan(i * v, v), opt, rngs[i], probs, order);
                codes[i * _t + t] = k;
                hostIds[i] = lo + k;
            }
        }
    }

    private void Lin(Linear l, Tensor x, Tensor y) => LinearOps.Forward.Run(_b, [x, l.Weight.Value, l.Bias.Value], [y]);

    /// <summary>
    /// One draw from softmax(logits / temperature) restricted to the top-k entries and then to the smallest set of
    /// most probable entries whose mass reaches top-p (ties broken by index). Returns the local index.
    /// </summary>
    public static int Draw(ReadOnlySpan<float> logits, SamplingOptions opt, Random rng, float[] probs, int[] order)
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
        double u = rng.NextDouble() * sum, c2 = 0;
        for (int j = 0; j < keep; j++)
        {
            c2 += probs[order[j]];
            if (u < c2) return order[j];
        }
        return order[keep - 1];
    }

    public void Dispose() => _arena.Dispose();
}
