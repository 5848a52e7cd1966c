// Causal self-attention ops of the prior: attention_forward / attention_backward (fused, training) and
// kv_cache_append / attention_decode (one query per sequence against a KV cache, sampling).
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using MvqNative.Tensors;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Attributes of the attention ops: batch B, sequence length T, heads H (head width hd = C / H).
/// For kv_cache_append and attention_decode, T is the cache length Tmax.
/// </summary>
internal sealed record AttentionAttrs(int B, int T, int H);

/// <summary>
/// Fused causal multi-head self-attention. Rows are (b, t), row-major; qkv [B*T, 3C] holds per row
/// q | k | v (C columns each), head h uses columns h*hd .. h*hd+hd-1 of each block; scale = 1/sqrt(hd).
/// attention_forward: in [qkv (B*T, 3C)] out [y (B*T, C), lse (B, H, T)];
///   s_tj = scale q_t . k_j for j &lt;= t (query t sees keys 0..t), p_tj = softmax_j(s_tj),
///   y_t = sum_j p_tj v_j, lse_t = log sum_j exp(s_tj). Never a [T, T] matrix in memory (row-wise softmax).
/// attention_backward: in [qkv, y, lse, dy (B*T, C)] out [dqkv (B*T, 3C) =];
///   p_tj = exp(s_tj - lse_t), dp_tj = dy_t . v_j, D_t = dy_t . y_t, ds_tj = p_tj (dp_tj - D_t),
///   dq_t = scale sum_j ds_tj k_j, dk_j = scale sum_t ds_tj q_t, dv_j = sum_t p_tj dy_t
///   (sums over t in increasing order: deterministic).
/// kv_cache_append: in [qkv (B, 3C), pos I32 (1)] out [kcache (B, Tmax, C), vcache (B, Tmax, C)]:
///   kcache[b, pos] = k part of qkv[b], vcache[b, pos] = v part; the other rows are left as they are.
/// attention_decode: in [qkv (B, 3C), kcache, vcache, pos I32 (1)] out [y (B, C)]: the q part of qkv[b]
///   attends to cache rows 0..pos (append the new token's k, v first).
/// The position is a device tensor, not an attribute, so a sampling step can be replayed (CUDA graph).
/// </summary>
internal static class AttentionOps
{
    public static readonly OpDef Forward = new("attention_forward")
    {
        Inputs = [Arg.In("qkv")],
        Outputs = [Arg.Write("y"), Arg.Write("lse")],
        AttrsType = typeof(AttentionAttrs),
        Shapes = (in OpCall c) =>
        {
            var a = c.A<AttentionAttrs>();
            int ch = Width(c.In[0], a.B * a.T, a.H);
            ShapeText.Length(c.Out[0], "y", (long)a.B * a.T * ch); ShapeText.Length(c.Out[1], "lse", (long)a.B * a.H * a.T);
        },
        Cpu = CpuAttention.Forward,
        Cuda = Backends.Cuda.Kernels.CudaAttention.Forward,
        Reference = RefAttention.Forward,
        Grad = GradSpec.By("attention_backward", [GradArg.In(0), GradArg.Out(0), GradArg.Out(1), GradArg.Dy(0)], 0),
        Doc = "qkv[B*T,3C] -> y[B*T,C], lse[B,H,T]: causal multi-head softmax(q k^T / sqrt(hd)) v, fused (no [T,T] in memory)",
        Cases =
        [
            FwdCase("odd", 2, 5, 3, 4),
            FwdCase("size1", 1, 1, 1, 1),
            FwdCase("T1", 3, 1, 2, 5),
            FwdCase("odd head width", 2, 9, 2, 7),
            // Longer than one CUDA key tile, wide heads (several vectors and a tail on the CPU).
            FwdCase("long", 2, 70, 2, 36),
            FwdCase("one head wide", 1, 33, 1, 64),
            // Sharp softmax: large scores test the max subtraction.
            FwdCase("sharp", 2, 17, 2, 8, 4f),
        ],
    };

    public static readonly OpDef BackwardOp = new("attention_backward")
    {
        Inputs = [Arg.In("qkv"), Arg.In("y"), Arg.In("lse"), Arg.In("dy")],
        Outputs = [Arg.Write("dqkv")],
        AttrsType = typeof(AttentionAttrs),
        Shapes = (in OpCall c) =>
        {
            var a = c.A<AttentionAttrs>();
            int ch = Width(c.In[0], a.B * a.T, a.H);
            ShapeText.Length(c.In[1], "y", (long)a.B * a.T * ch); ShapeText.Length(c.In[2], "lse", (long)a.B * a.H * a.T);
            ShapeText.Length(c.In[3], "dy", (long)a.B * a.T * ch); ShapeText.Length(c.Out[0], "dqkv", c.In[0].Length);
        },
        Cpu = CpuAttention.Backward,
        Cuda = Backends.Cuda.Kernels.CudaAttention.Backward,
        Reference = RefAttention.Backward,
        Doc = "qkv, y, lse, dy[B*T,C] -> dqkv[B*T,3C] (=)",
        Cases =
        [
            BwdCase("odd", 2, 5, 3, 4),
            BwdCase("size1", 1, 1, 1, 1),
            BwdCase("T1", 3, 1, 2, 5),
            BwdCase("odd head width", 2, 9, 2, 7),
            BwdCase("long", 2, 70, 2, 36),
            BwdCase("one head wide", 1, 33, 1, 64),
            BwdCase("sharp", 2, 17, 2, 8, 4f),
        ],
    };

    public static readonly OpDef KvCacheAppend = new("kv_cache_append")
    {
        Inputs = [Arg.In("qkv"), Arg.InInt("pos")],
        Outputs = [Arg.Update("kcache"), Arg.Update("vcache")],
        AttrsType = typeof(AttentionAttrs),
        Shapes = (in OpCall c) =>
        {
            var a = c.A<AttentionAttrs>();
            int ch = Width(c.In[0], a.B, a.H);
            ShapeText.Length(c.In[1], "pos", 1);
            ShapeText.Length(c.Out[0], "kcache", (long)a.B * a.T * ch); ShapeText.Length(c.Out[1], "vcache", (long)a.B * a.T * ch);
        },
        Cpu = CpuAttention.KvCacheAppend,
        Cuda = Backends.Cuda.Kernels.CudaAttention.KvCacheAppend,
        Reference = RefAttention.KvCacheAppend,
        Doc = "qkv[B,3C], pos[1] I32 -> kcache[B,Tmax,C], vcache[B,Tmax,C]: row pos written, others kept",
        Cases =
        [
            AppendCase("odd", 3, 7, 2, 5, 4),
            AppendCase("size1", 1, 1, 1, 1, 0),
            AppendCase("last row", 2, 6, 3, 3, 5),
            AppendCase("wide", 2, 50, 4, 32, 17),
        ],
    };

    public static readonly OpDef Decode = new("attention_decode")
    {
        Inputs = [Arg.In("qkv"), Arg.In("kcache"), Arg.In("vcache"), Arg.InInt("pos")],
        Outputs = [Arg.Write("y")],
        AttrsType = typeof(AttentionAttrs),
        Shapes = (in OpCall c) =>
        {
            var a = c.A<AttentionAttrs>();
            int ch = Width(c.In[0], a.B, a.H);
            ShapeText.Length(c.In[1], "kcache", (long)a.B * a.T * ch); ShapeText.Length(c.In[2], "vcache", (long)a.B * a.T * ch);
            ShapeText.Length(c.In[3], "pos", 1);
            ShapeText.Length(c.Out[0], "y", (long)a.B * ch);
        },
        Cpu = CpuAttention.Decode,
        Cuda = Backends.Cuda.Kernels.CudaAttention.Decode,
        Reference = RefAttention.Decode,
        Doc = "qkv[B,3C], kcache, vcache[B,Tmax,C], pos[1] I32 -> y[B,C]: the new query against cache rows 0..pos",
        Cases =
        [
            DecodeCase("odd", 3, 7, 2, 5, 4),
            DecodeCase("size1", 1, 1, 1, 1, 0),
            DecodeCase("pos 0", 2, 6, 3, 3, 0),
            DecodeCase("last row", 2, 6, 3, 3, 5),
            DecodeCase("odd head width", 2, 20, 2, 7, 13),
            // More keys than one CUDA pass of a warp, wide heads.
            DecodeCase("long", 2, 80, 2, 40, 71),
        ],
    };

    /// <summary>C of qkv [rows, 3C], C divisible into <paramref name="heads"/> heads.</summary>
    private static int Width(Tensor qkv, int rows, int heads)
    {
        if (qkv.Rank != 2 || qkv.Dim(0) != rows || qkv.Dim(1) % 3 != 0) throw new ArgumentException($"qkv must be [{rows},3C], got {ShapeText.Of(qkv)}");
        int c = qkv.Dim(1) / 3;
        if (heads <= 0 || c % heads != 0) throw new ArgumentException($"C = {c} is not divisible into {heads} heads");
        return c;
    }

    private static OpCase FwdCase(string label, int b, int t, int h, int hd, float range = 1f)
    {
        int c = h * hd;
        return new OpCase(label, [new TensorSpec([b * t, 3 * c], Lo: -range, Hi: range)], [Out(b * t, c), Out(b, h, t)], new AttentionAttrs(b, t, h));
    }

    /// <summary>A backward case whose y and lse inputs are the forward outputs of its qkv.</summary>
    private static OpCase BwdCase(string label, int b, int t, int h, int hd, float range = 1f)
    {
        int c = h * hd;
        var attrs = new AttentionAttrs(b, t, h);
        return new OpCase(label, [new TensorSpec([b * t, 3 * c], Lo: -range, Hi: range), F(b * t, c), F(b, h, t), F(b * t, c)], [Out(b * t, 3 * c)], attrs)
        {
            Prepare = ins => RefAttention.ForwardFloat(ins[0], attrs, ins[1], ins[2]),
        };
    }

    private static OpCase AppendCase(string label, int b, int tmax, int h, int hd, int pos)
    {
        int c = h * hd;
        return new OpCase(label, [F(b, 3 * c), I(pos, pos + 1, 1)], [F(b, tmax, c), F(b, tmax, c)], new AttentionAttrs(b, tmax, h)) { Tolerance = 0 };
    }

    private static OpCase DecodeCase(string label, int b, int tmax, int h, int hd, int pos)
    {
        int c = h * hd;
        return new OpCase(label, [F(b, 3 * c), F(b, tmax, c), F(b, tmax, c), I(pos, pos + 1, 1)], [Out(b, c)], new AttentionAttrs(b, tmax, h));
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp, KvCacheAppend, Decode);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 attention: full score rows, softmax, weighted sums.</summary>
internal static class RefAttention
{
    /// <summary>Forward on one (b, h): y and lse from qkv (any element type through accessors).</summary>
    private static void ForwardCore(Func<int, double> qkv, AttentionAttrs a, int c, Action<int, double> setY, Action<int, double> setLse)
    {
        int hd = c / a.H, c3 = 3 * c;
        double scale = 1 / Math.Sqrt(hd);
        var s = new double[a.T];
        for (int b = 0; b < a.B; b++)
            for (int h = 0; h < a.H; h++)
                for (int t = 0; t < a.T; t++)
                {
                    int qrow = (b * a.T + t) * c3 + h * hd;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j <= t; j++)
                    {
                        int krow = (b * a.T + j) * c3 + c + h * hd;
                        double dot = 0;
                        for (int d = 0; d < hd; d++) dot += qkv(qrow + d) * qkv(krow + d);
                        s[j] = scale * dot;
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= t; j++) sum += Math.Exp(s[j] - max);
                    for (int d = 0; d < hd; d++)
                    {
                        double acc = 0;
                        for (int j = 0; j <= t; j++) acc += Math.Exp(s[j] - max) * qkv((b * a.T + j) * c3 + 2 * c + h * hd + d);
                        setY((b * a.T + t) * c + h * hd + d, acc / sum);
                    }
                    setLse((b * a.H + h) * a.T + t, max + Math.Log(sum));
                }
    }

    internal static int Width(int[] qkvShape, string op)
    {
        int c3 = qkvShape[^1];
        if (c3 % 3 != 0) throw new ArgumentException($"{op}: qkv rows must be 3C wide, got {c3}");
        return c3 / 3;
    }

    /// <summary>Float outputs y, lse of a float qkv (prepares backward cases).</summary>
    internal static void ForwardFloat(float[] qkv, AttentionAttrs a, float[] y, float[] lse)
    {
        int c = qkv.Length / (a.B * a.T) / 3;
        ForwardCore(i => qkv[i], a, c, (i, v) => y[i] = (float)v, (i, v) => lse[i] = (float)v);
    }

    public static void Forward(RefCall call)
    {
        var a = call.A<AttentionAttrs>();
        var qkv = call.In[0];
        ForwardCore(i => qkv[i], a, Width(call.InShapes[0], "attention_forward"), (i, v) => call.Out[0][i] = v, (i, v) => call.Out[1][i] = v);
    }

    public static void Backward(RefCall call)
    {
        var a = call.A<AttentionAttrs>();
        int c = Width(call.InShapes[0], "attention_backward"), hd = c / a.H, c3 = 3 * c, T = a.T;
        double[] qkv = call.In[0], y = call.In[1], lse = call.In[2], dy = call.In[3], dqkv = call.Out[0];
        double scale = 1 / Math.Sqrt(hd);
        Array.Clear(dqkv);
        for (int b = 0; b < a.B; b++)
            for (int h = 0; h < a.H; h++)
                for (int t = 0; t < T; t++)
                {
                    int qrow = (b * T + t) * c3 + h * hd, orow = (b * T + t) * c + h * hd;
                    double dd = 0;
                    for (int d = 0; d < hd; d++) dd += dy[orow + d] * y[orow + d];
                    for (int j = 0; j <= t; j++)
                    {
                        int krow = (b * T + j) * c3 + c + h * hd, vrow = krow + c;
                        double dot = 0, dp = 0;
                        for (int d = 0; d < hd; d++) { dot += qkv[qrow + d] * qkv[krow + d]; dp += dy[orow + d] * qkv[vrow + d]; }
                        double p = Math.Exp(scale * dot - lse[(b * a.H + h) * T + t]);
                        double ds = p * (dp - dd);
                        for (int d = 0; d < hd; d++)
                        {
                            dqkv[qrow + d] += scale * ds * qkv[krow + d];
                            dqkv[krow + d] += scale * ds * qkv[qrow + d];
                            dqkv[vrow + d] += p * dy[orow + d];
                        }
                    }
                }
    }

    internal static int Pos(double[] pos, int tmax, string op)
    {
        int p = (int)pos[0];
        if ((uint)p >= (uint)tmax) throw new ArgumentOutOfRangeException(nameof(pos), $"{op}: pos {p} outside [0, {tmax})");
        return p;
    }

    public static void KvCacheAppend(RefCall call)
    {
        var a = call.A<AttentionAttrs>();
        int c = Width(call.InShapes[0], "kv_cache_append"), pos = Pos(call.In[1], a.T, "kv_cache_append");
        for (int b = 0; b < a.B; b++)
            for (int d = 0; d < c; d++)
            {
                call.Out[0][(b * a.T + pos) * c + d] = call.In[0][b * 3 * c + c + d];
                call.Out[1][(b * a.T + pos) * c + d] = call.In[0][b * 3 * c + 2 * c + d];
            }
    }

    public static void Decode(RefCall call)
    {
        var a = call.A<AttentionAttrs>();
        int c = Width(call.InShapes[0], "attention_decode"), hd = c / a.H, pos = Pos(call.In[3], a.T, "attention_decode");
        double[] qkv = call.In[0], kc = call.In[1], vc = call.In[2], y = call.Out[0];
        double scale = 1 / Math.Sqrt(hd);
        var s = new double[pos + 1];
        for (int b = 0; b < a.B; b++)
            for (int h = 0; h < a.H; h++)
            {
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j <= pos; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += qkv[b * 3 * c + h * hd + d] * kc[(b * a.T + j) * c + h * hd + d];
                    s[j] = scale * dot;
                    max = Math.Max(max, s[j]);
                }
                for (int j = 0; j <= pos; j++) sum += Math.Exp(s[j] - max);
                for (int d = 0; d < hd; d++)
                {
                    double acc = 0;
                    for (int j = 0; j <= pos; j++) acc += Math.Exp(s[j] - max) * vc[(b * a.T + j) * c + h * hd + d];
                    y[b * c + h * hd + d] = acc / sum;
                }
            }
    }
}
