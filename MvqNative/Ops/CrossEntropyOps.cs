// Softmax cross-entropy with a per-row valid column range (segment mask): cross_entropy_forward / _backward.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using MvqNative.Tensors;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Softmax cross-entropy per row with the segment mask fused: columns outside the row's [lo, hi)
/// count as -inf (probability 0).
/// forward: in [logits (N, V), targets I32 (N), bounds I32 (N, 2) = [lo, hi)] out [loss (N), lse (N)],
///   lse_n = log sum_{lo &lt;= j &lt; hi} exp(logits[n, j]), loss_n = lse_n - logits[n, target_n] (nats).
/// backward: in [logits, targets, bounds, lse, dloss (N)] out [dlogits (N, V) =],
///   dlogits[n, j] = dloss_n (exp(logits[n, j] - lse_n) - [j = target_n]) inside [lo, hi), 0 outside.
/// The mean over rows is the caller's (dloss = 1/N). A classifier passes bounds [0, classes) on every row.
/// Bounds with lo &lt; 0, hi &gt; V or lo &gt;= hi, or a target outside [lo, hi), are an error on the CPU;
/// on CUDA that row's loss and lse are NaN and its dlogits row is NaN.
/// </summary>
internal static class CrossEntropyOps
{
    public static readonly OpDef Forward = new("cross_entropy_forward")
    {
        Inputs = [Arg.In("logits"), Arg.InInt("targets"), Arg.InInt("bounds")],
        Outputs = [Arg.Write("loss"), Arg.Write("lse")],
        Shapes = (in OpCall c) =>
        {
            int n = Rows(c);
            ShapeText.Length(c.Out[0], "loss", n); ShapeText.Length(c.Out[1], "lse", n);
        },
        Cpu = CpuCrossEntropy.Forward,
        Cuda = Backends.Cuda.Kernels.CudaCrossEntropy.Forward,
        Reference = RefCrossEntropy.Forward,
        Grad = GradSpec.By("cross_entropy_backward", [GradArg.In(0), GradArg.In(1), GradArg.In(2), GradArg.Out(1), GradArg.Dy(0)], 0),
        Doc = "logits[N,V], targets[N] I32, bounds[N,2] I32 -> loss[N] = lse - logit[target], lse[N] over columns [lo,hi)",
        Cases =
        [
            FwdCase("odd", 7, 13),
            FwdCase("size1", 1, 1),
            FwdCase("classifier", 9, 10, full: true),
            // Rows wider than a CUDA block, every vector tail on the CPU, large logits (max subtraction).
            FwdCase("wide", 5, 1031, range: 20f),
            FwdCase("many rows", 300, 37),
        ],
    };

    public static readonly OpDef BackwardOp = new("cross_entropy_backward")
    {
        Inputs = [Arg.In("logits"), Arg.InInt("targets"), Arg.InInt("bounds"), Arg.In("lse"), Arg.In("dloss")],
        Outputs = [Arg.Write("dlogits")],
        Shapes = (in OpCall c) =>
        {
            int n = Rows(c);
            ShapeText.Length(c.In[3], "lse", n); ShapeText.Length(c.In[4], "dloss", n);
            ShapeText.SameShape(c.Out[0], "dlogits", c.In[0], "logits");
        },
        Cpu = CpuCrossEntropy.Backward,
        Cuda = Backends.Cuda.Kernels.CudaCrossEntropy.Backward,
        Reference = RefCrossEntropy.Backward,
        Doc = "logits, targets, bounds, lse, dloss[N] -> dlogits[N,V] (=), 0 outside [lo,hi)",
        Cases =
        [
            BwdCase("odd", 7, 13),
            BwdCase("size1", 1, 1),
            BwdCase("classifier", 9, 10, full: true),
            BwdCase("wide", 5, 1031, range: 20f),
            BwdCase("many rows", 300, 37),
        ],
    };

    /// <summary>cross_entropy_backward by name: dlogits written (0 outside each row's [lo, hi)).</summary>
    public static void RunBackward(Backends.Backend backend, Tensor logits, Tensor targets, Tensor bounds, Tensor lse, Tensor dloss, Tensor dlogits) =>
        BackwardOp.Run(backend, [logits, targets, bounds, lse, dloss], [dlogits]);

    /// <summary>Turns random ints into valid [lo, hi) bounds per row and a target inside them.</summary>
    /// <summary>N of logits [N, V], targets [N] and bounds [N, 2].</summary>
    private static int Rows(in OpCall c)
    {
        var (n, _) = ShapeText.Matrix(c.In[0], "logits", "N", "V");
        ShapeText.Length(c.In[1], "targets", n);
        ShapeText.Length(c.In[2], "bounds", 2L * n);
        return n;
    }

    private static void FixRows(float[] targetsF, float[] boundsF, int v, bool full)
    {
        var targets = MemoryMarshal.Cast<float, int>(targetsF.AsSpan());
        var bounds = MemoryMarshal.Cast<float, int>(boundsF.AsSpan());
        for (int n = 0; n < targets.Length; n++)
        {
            int a = bounds[2 * n], b = bounds[2 * n + 1];
            int lo = full ? 0 : Math.Min(a, b), hi = full ? v : Math.Max(a, b) + 1;
            bounds[2 * n] = lo; bounds[2 * n + 1] = hi;
            targets[n] = lo + (int)((uint)targets[n] % (uint)(hi - lo));
        }
    }

    private static TensorSpec[] Inputs(int n, int v, float range) =>
        [new TensorSpec([n, v], Lo: -range, Hi: range), I(0, 1 << 20, n), I(0, v, n, 2)];

    private static OpCase FwdCase(string label, int n, int v, bool full = false, float range = 3f) =>
        new(label, Inputs(n, v, range), [Out(n), Out(n)]) { Prepare = ins => FixRows(ins[1], ins[2], v, full) };

    /// <summary>A backward case whose lse input is the forward's lse of its logits.</summary>
    private static OpCase BwdCase(string label, int n, int v, bool full = false, float range = 3f) =>
        new(label, [.. Inputs(n, v, range), F(n), F(n)], [Out(n, v)])
        {
            Prepare = ins =>
            {
                FixRows(ins[1], ins[2], v, full);
                var bounds = MemoryMarshal.Cast<float, int>(ins[2].AsSpan());
                for (int r = 0; r < n; r++)
                {
                    double max = double.NegativeInfinity, sum = 0;
                    for (int j = bounds[2 * r]; j < bounds[2 * r + 1]; j++) max = Math.Max(max, ins[0][r * v + j]);
                    for (int j = bounds[2 * r]; j < bounds[2 * r + 1]; j++) sum += Math.Exp(ins[0][r * v + j] - max);
                    ins[3][r] = (float)(max + Math.Log(sum));
                }
            },
        };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 masked cross-entropy.</summary>
internal static class RefCrossEntropy
{
    private static (int Lo, int Hi, int Target) Row(RefCall c, int n, int v, string op)
    {
        int lo = (int)c.In[2][2 * n], hi = (int)c.In[2][2 * n + 1], t = (int)c.In[1][n];
        if (lo < 0 || hi > v || lo >= hi) throw new ArgumentOutOfRangeException(nameof(c), $"{op}: row {n} bounds [{lo}, {hi}) invalid for V = {v}");
        if (t < lo || t >= hi) throw new ArgumentOutOfRangeException(nameof(c), $"{op}: row {n} target {t} outside [{lo}, {hi})");
        return (lo, hi, t);
    }

    public static void Forward(RefCall c)
    {
        int rows = c.InShapes[0][0], v = c.InShapes[0][1];
        double[] x = c.In[0];
        for (int n = 0; n < rows; n++)
        {
            var (lo, hi, t) = Row(c, n, v, "cross_entropy_forward");
            double max = double.NegativeInfinity, sum = 0;
            for (int j = lo; j < hi; j++) max = Math.Max(max, x[n * v + j]);
            for (int j = lo; j < hi; j++) sum += Math.Exp(x[n * v + j] - max);
            double lse = max + Math.Log(sum);
            c.Out[0][n] = lse - x[n * v + t];
            c.Out[1][n] = lse;
        }
    }

    public static void Backward(RefCall c)
    {
        int rows = c.InShapes[0][0], v = c.InShapes[0][1];
        double[] x = c.In[0], lse = c.In[3], dloss = c.In[4], dx = c.Out[0];
        for (int n = 0; n < rows; n++)
        {
            var (lo, hi, t) = Row(c, n, v, "cross_entropy_backward");
            for (int j = 0; j < v; j++)
                dx[n * v + j] = j < lo || j >= hi ? 0 : dloss[n] * (Math.Exp(x[n * v + j] - lse[n]) - (j == t ? 1 : 0));
        }
    }
}
