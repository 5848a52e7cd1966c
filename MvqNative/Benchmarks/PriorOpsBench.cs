// Time of the prior's ops (forward + backward pairs, and the decode step) at a prior's shapes, on any backend.
// `mvq bench prior-ops` prints the rows; tools/bench/prior_ops_torch.py times PyTorch's formulation of the same.
using System.Diagnostics;
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Benchmarks;

/// <summary>Shapes of one prior: batch B, sequence T, width C, heads H, logit columns V, MLP ratio.</summary>
internal sealed record PriorOpsShape(int B, int T, int C, int H, int V, int MlpRatio = 4);

/// <summary>One op group: median milliseconds per call and the number of timed calls.</summary>
internal sealed record PriorOpsBenchRow(string Op, double MedianMs, int Calls);

/// <summary>
/// Times each prior op group on synthetic inputs: embedding (fwd+bwd, tokens), layer_norm (fwd+bwd, [N, C]),
/// gelu (fwd+bwd, [N, ratio*C]), attention (fwd+bwd, [N, 3C]), cross_entropy (fwd+bwd, [N, V] with all
/// columns valid) and decode (kv_cache_append + attention_decode at pos T-1 with a cache of T rows).
/// Each group runs <c>warmup</c> untimed calls (the JIT's tiers settle), then <c>runs</c> timed samples of
/// enough calls for about 5 ms each; the median of the per-call times is reported (wall clock, or the process's CPU time with <c>processTime</c>). Figures only; nothing here decides a test.
/// </summary>
internal static class PriorOpsBench
{
    public static IReadOnlyList<PriorOpsBenchRow> Run(Backend be, PriorOpsShape s, int warmup = 50, int runs = 50, bool processTime = false)
    {
        int n = s.B * s.T, c = s.C, v = s.V, h = s.MlpRatio * s.C;
        var rng = new Random(1);
        float[] R(int count, float scale = 1f) { var a = new float[count]; for (int i = 0; i < count; i++) a[i] = scale * (float)(rng.NextDouble() * 2 - 1); return a; }
        var disposables = new List<Tensor>();
        Tensor F(float[] data, params int[] shape) { var t = be.FromArray(data, shape); disposables.Add(t); return t; }
        Tensor E(params int[] shape) { var t = be.Zeros(shape); disposables.Add(t); return t; }
        Tensor I(int[] data, params int[] shape) { var t = be.EmptyInt(shape); t.CopyFrom((ReadOnlySpan<int>)data); disposables.Add(t); return t; }
        var rows = new List<PriorOpsBenchRow>();
        try
        {
            var ids = I(Enumerable.Range(0, n).Select(i => rng.Next(v)).ToArray(), n);
            var table = F(R((v + 1) * c), v + 1, c); var emb = E(n, c); var dtable = E(v + 1, c);
            var x = F(R(n * c), n, c); var gamma = F(R(c), c); var beta = F(R(c), c);
            var y = E(n, c); var mean = E(n); var rstd = E(n); var dy = F(R(n * c), n, c); var dx = E(n, c); var dg = E(c); var db = E(c);
            var hx = F(R(n * h, 3f), n, h); var hy = E(n, h); var hdy = F(R(n * h), n, h); var hdx = E(n, h);
            var qkv = F(R(n * 3 * c), n, 3 * c); var att = E(n, c); var lse = E(s.B, s.H, s.T); var dqkv = E(n, 3 * c);
            var logits = F(R(n * v, 3f), n, v); var targets = I(Enumerable.Range(0, n).Select(i => rng.Next(v)).ToArray(), n);
            var bounds = I(Enumerable.Range(0, 2 * n).Select(i => i % 2 == 0 ? 0 : v).ToArray(), n, 2);
            var loss = E(n); var xlse = E(n); var dloss = F(Enumerable.Repeat(1f / n, n).ToArray(), n); var dlogits = E(n, v);
            var step = F(R(s.B * 3 * c), s.B, 3 * c); var kc = F(R(s.B * s.T * c), s.B, s.T, c); var vc = F(R(s.B * s.T * c), s.B, s.T, c);
            var pos = I([s.T - 1], 1); var yd = E(s.B, c);
            var aa = new AttentionAttrs(s.B, s.T, s.H); var ln = new LayerNormAttrs();

            void Time(string name, Action a)
            {
                for (int i = 0; i < warmup; i++) a();
                be.Synchronize();
                // Calls per sample: enough for about 5 ms, so that the clock's granularity (the process
                // CPU time is coarse) does not decide small ops; the figure is ms per call.
                long c0 = Stopwatch.GetTimestamp();
                a(); be.Synchronize();
                double once = Math.Max(1e-3, Stopwatch.GetElapsedTime(c0).TotalMilliseconds);
                int inner = (int)Math.Clamp(Math.Ceiling(5.0 / once), 1, 1000);
                var ms = new double[runs];
                for (int i = 0; i < runs; i++)
                {
                    if (processTime)
                    {
                        // CPU time of the process: on a loaded machine it counts only the work, not the waiting.
                        var p0 = Environment.CpuUsage.TotalTime;
                        for (int k = 0; k < inner; k++) a();
                        be.Synchronize();
                        ms[i] = (Environment.CpuUsage.TotalTime - p0).TotalMilliseconds / inner;
                    }
                    else
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        for (int k = 0; k < inner; k++) a();
                        be.Synchronize();
                        ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / inner;
                    }
                }
                Array.Sort(ms);
                rows.Add(new PriorOpsBenchRow(name, ms[runs / 2], runs * inner));
            }

            Time("embedding", () =>
            {
                EmbeddingOps.Forward.Run(be, [ids, table], [emb]);
                EmbeddingOps.BackwardOp.Run(be, [ids, emb], [dtable]);
            });
            Time("layer_norm", () =>
            {
                LayerNormOps.Forward.Run(be, [x, gamma, beta], [y, mean, rstd], ln);
                LayerNormOps.BackwardOp.Run(be, [x, gamma, mean, rstd, dy], [dx, dg, db], ln);
            });
            Time("gelu", () =>
            {
                GeluOps.Forward.Run(be, [hx], [hy]);
                GeluOps.BackwardOp.Run(be, [hx, hdy], [hdx]);
            });
            Time("attention", () =>
            {
                AttentionOps.Forward.Run(be, [qkv], [att, lse], aa);
                AttentionOps.BackwardOp.Run(be, [qkv, att, lse, dy], [dqkv], aa);
            });
            Time("cross_entropy", () =>
            {
                CrossEntropyOps.Forward.Run(be, [logits, targets, bounds], [loss, xlse]);
                CrossEntropyOps.BackwardOp.Run(be, [logits, targets, bounds, xlse, dloss], [dlogits]);
            });
            Time("decode", () =>
            {
                AttentionOps.KvCacheAppend.Run(be, [step, pos], [kc, vc], aa);
                AttentionOps.Decode.Run(be, [step, kc, vc, pos], [yd], aa);
            });
            return rows;
        }
        finally
        {
            foreach (var t in disposables) t.Dispose();
        }
    }
}
