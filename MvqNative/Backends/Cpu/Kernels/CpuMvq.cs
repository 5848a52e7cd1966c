// CPU kernels of the MVQ op family (MvqNative/Ops/MvqOps.cs): winner-word selection, mask
// application, frozen BatchNorm, token mixing.
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>The simple MVQ bottleneck kernels on the CPU (the hypothesis kernels are <see cref="CpuMvqScore"/>).</summary>
internal static class CpuMvq
{
    public static void MaskApply(in OpCall c)
    {
        var (B, L, D2) = MvqOps.MaskDims(c.In[0].Shape, c.In[1].Shape);
        var g = c.In[0].Span; var w = c.In[1].IntSpan; var y = c.Out[0].Span;
        for (int b = 0; b < B; b++)
        {
            uint word = (uint)w[b];
            for (int l = 0; l < L; l++)
            {
                int o = (b * L + l) * D2;
                for (int i = 0; i < D2; i++) y[o + i] = ((word >> i) & 1) != 0 ? g[o + i] : 0f;
            }
        }
    }

    public static void SelectWords(in OpCall c)
    {
        var m = c.In[0]; var idx = c.In[1].IntSpan; var w = c.Out[0].IntSpan;
        var ms = m.IntSpan; int J = m.Dim(1);
        for (int b = 0; b < idx.Length; b++)
        {
            int j = idx[b];
            if ((uint)j >= (uint)J) throw new ArgumentOutOfRangeException(nameof(c), $"mvq_select_words: index {j} of instance {b} outside [0, {J})");
            w[b] = ms[b * J + j];
        }
    }

    public static void BnFrozenForward(in OpCall c)
    {
        int F = c.In[1].Length, N = MvqOps.Rows(c.In[0], F);
        var a = c.In[0].Span; var mean = c.In[1].Span; var rstd = c.In[2].Span; var gamma = c.In[3].Span; var beta = c.In[4].Span; var y = c.Out[0].Span;
        // One formula with mvq_score: scale and shift exactly as batchnorm_fold rounds them, then a*scale + shift.
        Span<float> scale = F <= 1024 ? stackalloc float[F] : new float[F], shift = F <= 1024 ? stackalloc float[F] : new float[F];
        for (int k = 0; k < F; k++) { scale[k] = gamma[k] * rstd[k]; shift[k] = beta[k] - mean[k] * scale[k]; }
        for (int r = 0; r < N; r++)
            for (int k = 0; k < F; k++) y[r * F + k] = a[r * F + k] * scale[k] + shift[k];
    }

    public static void BnFrozenBackward(in OpCall c)
    {
        int F = c.In[1].Length, N = MvqOps.Rows(c.In[0], F);
        var a = c.In[0].Span; var mean = c.In[1].Span; var rstd = c.In[2].Span; var gamma = c.In[3].Span; var dy = c.In[4].Span;
        var da = c.Out[0].Span; var dgamma = c.Out[1].Span; var dbeta = c.Out[2].Span;
        var sg = new double[F]; var sb = new double[F];
        for (int r = 0; r < N; r++)
            for (int k = 0; k < F; k++)
            {
                int i = r * F + k;
                float xhat = (a[i] - mean[k]) * rstd[k];
                da[i] = dy[i] * rstd[k] * gamma[k];
                sg[k] += (double)dy[i] * xhat;
                sb[k] += dy[i];
            }
        for (int k = 0; k < F; k++) { dgamma[k] += (float)sg[k]; dbeta[k] += (float)sb[k]; }
    }

    public static void BnFold(in OpCall c)
    {
        var at = c.A<BatchNormAttrs>();
        var mean = c.In[0].Span; var var_ = c.In[1].Span; var gamma = c.In[2].Span; var beta = c.In[3].Span;
        var rstd = c.Out[0].Span; var scale = c.Out[1].Span; var shift = c.Out[2].Span;
        for (int k = 0; k < mean.Length; k++)
        {
            float r = (float)(1.0 / Math.Sqrt((double)var_[k] + at.Eps));
            rstd[k] = r;
            scale[k] = gamma[k] * r;
            shift[k] = beta[k] - mean[k] * scale[k];
        }
    }

    public static void BnRunningUpdate(in OpCall c)
    {
        var at = c.A<BatchNormAttrs>();
        var mean = c.In[0].Span; var var_ = c.In[1].Span; var rm = c.Out[0].Span; var rv = c.Out[1].Span;
        double unbias = at.Count > 1 ? (double)at.Count / (at.Count - 1) : 1.0;
        for (int k = 0; k < mean.Length; k++)
        {
            rm[k] = (float)((1 - at.Momentum) * rm[k] + at.Momentum * (double)mean[k]);
            rv[k] = (float)((1 - at.Momentum) * rv[k] + at.Momentum * (var_[k] * unbias));
        }
    }

    public static void TokenMixForward(in OpCall c)
    {
        var (B, L2, Dd, L1) = MvqOps.MixDims(c.In[0].Shape, c.In[1].Shape);
        var f = c.In[0].Span; var m = c.In[1].Span; var bias = c.In[2].Span; var y = c.Out[0].Span;
        for (int b = 0; b < B; b++)
            for (int l = 0; l < L1; l++)
                for (int d = 0; d < Dd; d++)
                {
                    float acc = bias[l * Dd + d];
                    for (int k = 0; k < L2; k++) acc += m[l * L2 + k] * f[(b * L2 + k) * Dd + d];
                    y[(b * L1 + l) * Dd + d] = acc;
                }
    }

    public static void TokenMixBackward(in OpCall c)
    {
        var (B, L2, Dd, L1) = MvqOps.MixDims(c.In[0].Shape, c.In[1].Shape);
        var f = c.In[0].Span; var m = c.In[1].Span; var dy = c.In[2].Span;
        var df = c.Out[0].Span; var dm = c.Out[1].Span; var dbias = c.Out[2].Span;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < L2; k++)
                for (int d = 0; d < Dd; d++)
                {
                    float acc = 0;
                    for (int l = 0; l < L1; l++) acc += m[l * L2 + k] * dy[(b * L1 + l) * Dd + d];
                    df[(b * L2 + k) * Dd + d] = acc;
                }
        for (int l = 0; l < L1; l++)
        {
            for (int k = 0; k < L2; k++)
            {
                double acc = 0;
                for (int b = 0; b < B; b++)
                    for (int d = 0; d < Dd; d++) acc += (double)dy[(b * L1 + l) * Dd + d] * f[(b * L2 + k) * Dd + d];
                dm[l * L2 + k] += (float)acc;
            }
            for (int d = 0; d < Dd; d++)
            {
                double acc = 0;
                for (int b = 0; b < B; b++) acc += dy[(b * L1 + l) * Dd + d];
                dbias[l * Dd + d] += (float)acc;
            }
        }
    }
}
