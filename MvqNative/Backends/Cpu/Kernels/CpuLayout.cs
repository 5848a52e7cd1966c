// CPU NCHW <-> token layout changes: a tiled transpose of each image's [C, H*W] matrix.
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// Per image, tokens [H*W, C] are the transpose of the image [C, H*W]; transposed in
/// square tiles so reads and writes both stay within a few cache lines. Parallel over
/// (image, tile row) pairs.
/// </summary>
internal static class CpuLayout
{
    private const int Tile = 32;

    public static void NchwToTokens(in OpCall c)
    {
        var (b, ch, hw) = LayoutOps.Check(c.In[0].Shape, c.Out[0].Shape);
        Transpose(Arr(c.In[0]), (int)c.In[0].Offset, Arr(c.Out[0]), (int)c.Out[0].Offset, b, ch, hw);
    }

    public static void TokensToNchw(in OpCall c)
    {
        var (b, ch, hw) = LayoutOps.Check(c.Out[0].Shape, c.In[0].Shape);
        Transpose(Arr(c.In[0]), (int)c.In[0].Offset, Arr(c.Out[0]), (int)c.Out[0].Offset, b, hw, ch);
    }

    /// <summary>For each of <paramref name="batch"/> matrices: dst[b][j, i] = src[b][i, j], src [rows, cols].</summary>
    private static void Transpose(float[] src, int so, float[] dst, int dO, int batch, int rows, int cols)
    {
        int tileRows = (rows + Tile - 1) / Tile;
        long mat = (long)rows * cols;
        CpuParallel.For(batch * tileRows, Math.Max(1, 16384 / Math.Max(1, Tile * cols)), (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
            {
                int n = t / tileRows, i0 = t % tileRows * Tile, i1 = Math.Min(rows, i0 + Tile);
                long sBase = so + n * mat, dBase = dO + n * mat;
                for (int j0 = 0; j0 < cols; j0 += Tile)
                {
                    int j1 = Math.Min(cols, j0 + Tile);
                    for (int j = j0; j < j1; j++)
                        for (int i = i0; i < i1; i++)
                            dst[dBase + (long)j * rows + i] = src[sBase + (long)i * cols + j];
                }
            }
        });
    }

    private static float[] Arr(Tensors.Tensor t) => ((CpuBuffer)t.Buffer).Data;
}
