// CPU linear forward and backward on CpuGemm, parallel over rows of the output.
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// Linear on the CPU. Forward and dx split the N rows into chunks (one GEMM each);
/// dw and db split the out rows of the weight, so each gradient element is summed over
/// all N inside one call and no cross-thread reduction is needed (deterministic).
/// </summary>
internal static unsafe class CpuLinear
{
    // Rows per chunk so that one chunk does at least this many multiply-adds.
    private const long GrainFlops = 1 << 16;

    private static int Grain(long rowCost) => (int)Math.Max(1, GrainFlops / Math.Max(1, rowCost));

    public static void Forward(in OpCall c)
    {
        var (n, fin, fout) = LinearOps.Sizes3(c.In[0].Shape, c.In[1].Shape);
        var x = Arr(c.In[0]); int xo = (int)c.In[0].Offset;
        var w = Arr(c.In[1]); int wo = (int)c.In[1].Offset;
        var b = Arr(c.In[2]); int bo = (int)c.In[2].Offset;
        var y = Arr(c.Out[0]); int yo = (int)c.Out[0].Offset;
        CpuParallel.For(n, Grain((long)fin * fout), (r0, r1) =>
        {
            fixed (float* px = x, pw = w, py = y)
            {
                float* yr = py + yo + (long)r0 * fout;
                // Bias rows first, then y += x w^T (beta = 1).
                for (int r = 0; r < r1 - r0; r++) b.AsSpan(bo, fout).CopyTo(new Span<float>(yr + (long)r * fout, fout));
                if (fin > 0 && fout > 0)
                    CpuGemm.Sgemm(false, true, r1 - r0, fout, fin, 1f, px + xo + (long)r0 * fin, fin, pw + wo, fin, 1f, yr, fout);
            }
        });
    }

    public static void Backward(in OpCall c)
    {
        var (n, fin, fout) = LinearOps.Sizes3(c.In[0].Shape, c.In[1].Shape);
        var x = Arr(c.In[0]); int xo = (int)c.In[0].Offset;
        var w = Arr(c.In[1]); int wo = (int)c.In[1].Offset;
        var dy = Arr(c.In[2]); int dyo = (int)c.In[2].Offset;
        var dx = Arr(c.Out[0]); int dxo = (int)c.Out[0].Offset;
        var dw = Arr(c.Out[1]); int dwo = (int)c.Out[1].Offset;
        var db = Arr(c.Out[2]); int dbo = (int)c.Out[2].Offset;

        // dx[r0:r1] = dy[r0:r1] w.
        CpuParallel.For(n, Grain((long)fin * fout), (r0, r1) =>
        {
            fixed (float* pdy = dy, pw = w, pdx = dx)
            {
                float* dxr = pdx + dxo + (long)r0 * fin;
                if (fout == 0) { new Span<float>(dxr, (r1 - r0) * fin).Clear(); return; }
                CpuGemm.Sgemm(false, false, r1 - r0, fin, fout, 1f, pdy + dyo + (long)r0 * fout, fout, pw + wo, fin, 0f, dxr, fin);
            }
        });

        // dw[o0:o1] += dy[:, o0:o1]^T x; db[o0:o1] += column sums of dy.
        if (n == 0) return;
        CpuParallel.For(fout, Grain((long)n * fin), (o0, o1) =>
        {
            fixed (float* pdy = dy, px = x, pdw = dw, pdb = db)
            {
                if (fin > 0)
                    CpuGemm.Sgemm(true, false, o1 - o0, fin, n, 1f, pdy + dyo + o0, fout, px + xo, fin, 1f, pdw + dwo + (long)o0 * fin, fin);
                // Row by row (contiguous reads); each column is still summed in r order.
                int m = o1 - o0;
                Span<float> acc = m <= 512 ? stackalloc float[m] : new float[m];
                acc.Clear();
                for (int r = 0; r < n; r++)
                {
                    float* row = pdy + dyo + (long)r * fout + o0;
                    for (int o = 0; o < m; o++) acc[o] += row[o];
                }
                for (int o = 0; o < m; o++) pdb[dbo + o0 + o] += acc[o];
            }
        });
    }

    private static float[] Arr(Tensor t) => ((CpuBuffer)t.Buffer).Data;
}
