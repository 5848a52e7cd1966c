// The vector-quantizer op family: vq_lookup (fused distance + argmin), vq_backward
// (straight-through + commitment + codebook gradient), vq_loss, vq_ema_update and
// code_histogram, with their float64 references and conformance cases.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using MvqNative.Tensors;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Attributes of vq_backward. <paramref name="Beta"/>: commitment weight.
/// <paramref name="CodebookGradient"/>: true in gradient-codebook mode (dcodebook accumulated),
/// false in EMA mode (dcodebook untouched). <paramref name="LossScale"/>: weight of the VQ
/// loss in the total loss (multiplies the commitment and codebook terms, not dq).
/// </summary>
internal sealed record VqBackwardAttrs(float Beta, bool CodebookGradient, float LossScale = 1f);

/// <summary>Attributes of vq_ema_update: EMA decay and the Laplace smoothing epsilon.</summary>
internal sealed record VqEmaAttrs(float Decay = 0.99f, float Eps = 1e-5f);

/// <summary>
/// Vector quantization ops. Tokens are rows: z [N, D], codebook [K, D], idx I32 [N].
/// </summary>
internal static class VqOps
{
    /// <summary>Why vq_lookup's and vq_loss's gradients are not checked by finite differences.</summary>
    private const string ClosedFormVq = "the code assignment is an argmin (piecewise constant) and vq_backward is the straight-through "
        + "gradient of the VQ loss, not the derivative of either forward: VqGradTests checks it against the loss with the assignment held fixed";

    /// <summary>in [z [N,D], codebook [K,D]], out [idx I32 [N], q [N,D]] (written).</summary>
    public static readonly OpDef Lookup = new("vq_lookup")
    {
        Inputs = [Arg.In("z"), Arg.In("codebook")],
        Outputs = [Arg.WriteInt("idx"), Arg.Write("q")],
        Shapes = (in OpCall c) =>
        {
            var (n, d) = ShapeText.Matrix(c.In[0], "z");
            var (k, dk) = ShapeText.Matrix(c.In[1], "codebook", "K");
            if (dk != d) throw new ArgumentException($"codebook {ShapeText.Of(c.In[1])} does not match z {ShapeText.Of(c.In[0])}");
            if (k < 1) throw new ArgumentException("empty codebook");
            ShapeText.Require(c.Out[0], "idx", n);
            ShapeText.Require(c.Out[1], "q", n, d);
        },
        Cpu = CpuVq.Lookup,
        Cuda = Backends.Cuda.Kernels.CudaVq.Lookup,
        Reference = RefVq.Lookup,
        Grad = new GradSpec { Op = "vq_backward", ClosedForm = ClosedFormVq },
        Doc = "idx[i] = argmin_k ||z_i - C_k||^2 (ties: smallest k), q_i = C_idx[i]; in [z(N,D), codebook(K,D)] out [idx(N) I32, q(N,D)]; fused, no N x K matrix",
        // Uniform random data: a pair of codes within float rounding of each other (~1e-7
        // relative) has probability ~1e-5 per row, so indices must match exactly (IntMismatch 0).
        Cases =
        [
            new OpCase("odd", [F(37, 5), F(19, 5)], [I(0, 1, 37), Out(37, 5)]) { Tolerance = 0 },
            new OpCase("wide simd tail", [F(23, 67), F(33, 67)], [I(0, 1, 23), Out(23, 67)]) { Tolerance = 0, Seed = 7 },
            new OpCase("many rows", [F(301, 3), F(41, 3)], [I(0, 1, 301), Out(301, 3)]) { Tolerance = 0, Seed = 11 },
            new OpCase("size1", [F(1, 1), F(1, 1)], [I(0, 1, 1), Out(1, 1)]) { Tolerance = 0 },
            new OpCase("one code", [F(9, 3), F(1, 3)], [I(0, 1, 9), Out(9, 3)]) { Tolerance = 0 },
            // CUDA: more rows than one block and more codes than one shared-memory tile.
            new OpCase("tiles", [F(260, 24), F(50, 24)], [I(0, 1, 260), Out(260, 24)]) { Tolerance = 0 },
            // CUDA: D above the largest slice staged in shared memory at once.
            new OpCase("d beyond chunk", [F(130, 600), F(17, 600)], [I(0, 1, 130), Out(130, 600)]) { Tolerance = 0 },
            new OpCase("ties smallest", [F(40, 6), F(33, 6)], [I(0, 1, 40), Out(40, 6)]) { Tolerance = 0, Prepare = MakeTies },
        ],
    };

    // Codes 4, 20 and 31 duplicate code 2, and every third z row equals code 2 exactly:
    // distance 0 to four codes, and the answer must be 2.
    private static void MakeTies(float[][] ins)
    {
        const int d = 6;
        var z = ins[0]; var c = ins[1];
        foreach (var k in new[] { 4, 20, 31 }) Array.Copy(c, 2 * d, c, k * d, d);
        for (int n = 0; n < z.Length / d; n += 3) Array.Copy(c, 2 * d, z, n * d, d);
    }

    /// <summary>in [z, q, idx, dq], out [dz (written), dcodebook [K,D] (accumulated in gradient mode)].</summary>
    public static readonly OpDef BackwardOp = new("vq_backward")
    {
        Inputs = [Arg.In("z"), Arg.In("q"), Arg.InInt("idx"), Arg.In("dq")],
        Outputs = [Arg.Write("dz"), Arg.Acc("dcodebook")],
        AttrsType = typeof(VqBackwardAttrs),
        Shapes = (in OpCall c) =>
        {
            var (n, d) = ShapeText.Matrix(c.In[0], "z");
            ShapeText.Require(c.In[1], "q", n, d);
            ShapeText.Require(c.In[2], "idx", n);
            ShapeText.Require(c.In[3], "dq", n, d);
            ShapeText.Require(c.Out[0], "dz", n, d);
            var (_, dk) = ShapeText.Matrix(c.Out[1], "dcodebook", "K");
            if (dk != d) throw new ArgumentException($"dcodebook {ShapeText.Of(c.Out[1])} does not match z {ShapeText.Of(c.In[0])}");
        },
        Cpu = CpuVq.Backward,
        Cuda = Backends.Cuda.Kernels.CudaVq.Backward,
        Reference = RefVq.Backward,
        Doc = "dz = dq + s*beta*2(z-q)/(N D) (straight-through + commitment); gradient mode: dcodebook[k] += s*2*sum_{idx_i=k}(q_i-z_i)/(N D), fixed order; EMA mode: dcodebook untouched; in [z, q, idx, dq] out [dz =, dcodebook +=]",
        Cases =
        [
            new OpCase("gradient odd", [F(37, 5), F(37, 5), I(0, 7, 37), F(37, 5)], [Out(37, 5), F(7, 5)], new VqBackwardAttrs(0.25f, true)) { Tolerance = 1e-12 },
            new OpCase("gradient unused codes scaled", [F(29, 9), F(29, 9), I(0, 5, 29), F(29, 9)], [Out(29, 9), F(11, 9)], new VqBackwardAttrs(0.5f, true, 2.5f)) { Tolerance = 1e-12 },
            new OpCase("ema odd", [F(37, 5), F(37, 5), I(0, 7, 37), F(37, 5)], [Out(37, 5), F(7, 5)], new VqBackwardAttrs(0.25f, false)) { Tolerance = 1e-12 },
            new OpCase("size1", [F(1, 1), F(1, 1), I(0, 1, 1), F(1, 1)], [Out(1, 1), F(1, 1)], new VqBackwardAttrs(0.25f, true)) { Tolerance = 1e-12 },
            // CUDA: more rows than one index tile (256) and D above one block of 128 threads.
            new OpCase("gradient many rows wide", [F(300, 130), F(300, 130), I(0, 7, 300), F(300, 130)], [Out(300, 130), F(7, 130)], new VqBackwardAttrs(0.25f, true)) { Tolerance = 1e-12 },
        ],
    };

    /// <summary>in [z, q], out [loss [1]] (written).</summary>
    public static readonly OpDef Loss = new("vq_loss")
    {
        Inputs = [Arg.In("z"), Arg.In("q")],
        Outputs = [Arg.Write("loss")],
        Shapes = (in OpCall c) =>
        {
            ShapeText.SameShape(c.In[1], "q", c.In[0], "z");
            ShapeText.Require(c.Out[0], "loss", 1);
        },
        Cpu = CpuVq.Loss,
        Cuda = Backends.Cuda.Kernels.CudaVq.Loss,
        Reference = RefVq.Loss,
        Grad = new GradSpec { Op = "vq_backward", ClosedForm = ClosedFormVq },
        Doc = "loss[0] = mean((z - q)^2); in [z, q] out [loss(1)]; the caller scales by (1+beta) (gradient mode) or beta (EMA mode)",
        Cases =
        [
            new OpCase("odd", [F(37, 5), F(37, 5)], [Out(1)]) { Tolerance = 1e-12 },
            new OpCase("several chunks", [F(4099, 9), F(4099, 9)], [Out(1)]) { Tolerance = 1e-12 },
            new OpCase("size1", [F(1, 1), F(1, 1)], [Out(1)]) { Tolerance = 1e-12 },
        ],
    };

    /// <summary>in [z [N,D], idx I32 [N]], out [codebook [K,D], clusterSize [K], embedSum [K,D]] (all read and written).</summary>
    public static readonly OpDef EmaUpdate = new("vq_ema_update")
    {
        Inputs = [Arg.In("z"), Arg.InInt("idx")],
        Outputs = [Arg.Update("codebook"), Arg.Update("clusterSize"), Arg.Update("embedSum")],
        AttrsType = typeof(VqEmaAttrs),
        Shapes = (in OpCall c) =>
        {
            var (n, d) = ShapeText.Matrix(c.In[0], "z");
            ShapeText.Require(c.In[1], "idx", n);
            var (k, dk) = ShapeText.Matrix(c.Out[0], "codebook", "K");
            if (dk != d) throw new ArgumentException($"codebook {ShapeText.Of(c.Out[0])} does not match z {ShapeText.Of(c.In[0])}");
            ShapeText.Require(c.Out[1], "clusterSize", k);
            ShapeText.Require(c.Out[2], "embedSum", k, d);
        },
        Cpu = CpuVq.EmaUpdate,
        Cuda = Backends.Cuda.Kernels.CudaVq.EmaUpdate,
        Reference = RefVq.EmaUpdate,
        Doc = "in place (outputs read and written): clusterSize = decay*clusterSize + (1-decay)*count_k; embedSum = decay*embedSum + (1-decay)*sum_{idx_i=k} z_i; n_k = (clusterSize_k + eps)/(n + K eps)*n, n = sum clusterSize; codebook[k] = embedSum[k]/n_k; in [z(N,D), idx(N) I32] out [codebook(K,D), clusterSize(K), embedSum(K,D)]",
        Cases =
        [
            new OpCase("odd", [F(37, 5), I(0, 7, 37)], [Out(7, 5), new TensorSpec([7], DType.F32, 0.5f, 2f), F(7, 5)], new VqEmaAttrs()) { Tolerance = 1e-12 },
            new OpCase("unused codes fast decay", [F(29, 9), I(0, 6, 29)], [Out(11, 9), new TensorSpec([11], DType.F32, 0.1f, 3f), F(11, 9)], new VqEmaAttrs(0.5f, 1e-3f)) { Tolerance = 1e-12 },
            new OpCase("size1", [F(1, 1), I(0, 1, 1)], [Out(1, 1), new TensorSpec([1], DType.F32, 0.5f, 2f), F(1, 1)], new VqEmaAttrs()) { Tolerance = 1e-12 },
            new OpCase("many rows wide", [F(300, 130), I(0, 7, 300)], [Out(7, 130), new TensorSpec([7], DType.F32, 0.5f, 2f), F(7, 130)], new VqEmaAttrs()) { Tolerance = 1e-12 },
        ],
    };

    /// <summary>in [idx I32 [N]], out [counts [K]] (accumulated).</summary>
    public static readonly OpDef Histogram = new("code_histogram")
    {
        Inputs = [Arg.InInt("idx")],
        Outputs = [Arg.Acc("counts")],
        Shapes = (in OpCall c) => { ShapeText.Vector(c.In[0], "idx"); ShapeText.Vector(c.Out[0], "counts", "K"); },
        Cpu = CpuVq.Histogram,
        Cuda = Backends.Cuda.Kernels.CudaVq.Histogram,
        Reference = RefVq.Histogram,
        Doc = "counts[k] += #{i : idx_i = k}; in [idx(N) I32] out [counts(K) +=] (usage, perplexity, dead codes)",
        // Counts are exact integers, but the random initial counts are fractional, so adding
        // them rounds once in float: 1e-12 instead of 0.
        Cases =
        [
            new OpCase("odd", [I(0, 13, 101)], [new TensorSpec([13], DType.F32, 0f, 50f)]) { Tolerance = 1e-12 },
            new OpCase("unused codes", [I(0, 4, 17)], [F(9)]) { Tolerance = 1e-12 },
            new OpCase("many rows", [I(0, 37, 5003)], [new TensorSpec([37], DType.F32, 0f, 50f)]) { Tolerance = 1e-12 },
            new OpCase("size1", [I(0, 1, 1)], [F(1)]) { Tolerance = 1e-12 },
        ],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Lookup, BackwardOp, Loss, EmaUpdate, Histogram);
#pragma warning restore CA2255
}

/// <summary>Float64 plain-loop references of the VQ ops.</summary>
internal static class RefVq
{
    public static void Lookup(RefCall c)
    {
        int n = c.InShapes[0][0], d = c.InShapes[0][1], k = c.InShapes[1][0];
        var z = c.In[0]; var cb = c.In[1];
        for (int i = 0; i < n; i++)
        {
            double best = double.PositiveInfinity; int arg = 0;
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int t = 0; t < d; t++) { double df = z[i * d + t] - cb[j * d + t]; s += df * df; }
                if (s < best) { best = s; arg = j; }
            }
            c.Out[0][i] = arg;
            for (int t = 0; t < d; t++) c.Out[1][i * d + t] = cb[arg * d + t];
        }
    }

    public static void Backward(RefCall c)
    {
        var a = c.A<VqBackwardAttrs>();
        int n = c.InShapes[0][0], d = c.InShapes[0][1];
        double nd = (double)n * d;
        var z = c.In[0]; var q = c.In[1]; var idx = c.In[2]; var dq = c.In[3];
        for (int i = 0; i < n * d; i++) c.Out[0][i] = dq[i] + a.LossScale * (double)a.Beta * 2 * (z[i] - q[i]) / nd;
        if (!a.CodebookGradient) return;
        for (int i = 0; i < n; i++)
        {
            int k = (int)idx[i];
            for (int t = 0; t < d; t++) c.Out[1][k * d + t] += a.LossScale * 2.0 * (q[i * d + t] - z[i * d + t]) / nd;
        }
    }

    public static void Loss(RefCall c)
    {
        double s = 0;
        for (int i = 0; i < c.In[0].Length; i++) { double df = c.In[0][i] - c.In[1][i]; s += df * df; }
        c.Out[0][0] = s / c.In[0].Length;
    }

    public static void EmaUpdate(RefCall c)
    {
        var a = c.A<VqEmaAttrs>();
        int n = c.InShapes[0][0], d = c.InShapes[0][1], k = c.OutShapes[0][0];
        double decay = a.Decay, eps = a.Eps;
        var count = new double[k];
        var sum = new double[k * d];
        for (int i = 0; i < n; i++)
        {
            int code = (int)c.In[1][i];
            count[code]++;
            for (int t = 0; t < d; t++) sum[code * d + t] += c.In[0][i * d + t];
        }
        var cs = c.Out[1]; var es = c.Out[2]; var cb = c.Out[0];
        for (int j = 0; j < k; j++) cs[j] = decay * cs[j] + (1 - decay) * count[j];
        for (int j = 0; j < k * d; j++) es[j] = decay * es[j] + (1 - decay) * sum[j];
        double total = 0;
        for (int j = 0; j < k; j++) total += cs[j];
        for (int j = 0; j < k; j++)
        {
            double nk = (cs[j] + eps) / (total + k * eps) * total;
            for (int t = 0; t < d; t++) cb[j * d + t] = es[j * d + t] / nk;
        }
    }

    public static void Histogram(RefCall c)
    {
        foreach (var v in c.In[0]) c.Out[0][(int)v] += 1;
    }
}
