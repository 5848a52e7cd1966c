// CPU softmax cross-entropy with per-row valid column ranges: forward and backward, parallel over rows.
using MvqNative.Ops;
using MvqNative.Tensors;
using Tensor = MvqNative.Tensors.Tensor;

namespace MvqNative.Backends.Cpu;

/// <summary>Masked cross-entropy on the CPU: each row touches only its [lo, hi) columns (SIMD max, exp, sum).</summary>
internal static class CpuCrossEntropy
{
    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    /// <summary>Checks every row's bounds and target (data, not shapes: those are checked by OpDef.Run) before anything is written.</summary>
    internal static (int N, int V) CheckRows(in OpCall call, bool backward)
    {
        string op = backward ? "cross_entropy_backward" : "cross_entropy_forward";
        int n = call.In[0].Dim(0), v = call.In[0].Dim(1);
        var t = call.In[1].IntSpan; var b = call.In[2].IntSpan;
        for (int r = 0; r < n; r++)
        {
            int lo = b[2 * r], hi = b[2 * r + 1];
            if (lo < 0 || hi > v || lo >= hi) throw new ArgumentOutOfRangeException(nameof(call), $"{op}: row {r} bounds [{lo}, {hi}) invalid for V = {v}");
            if (t[r] < lo || t[r] >= hi) throw new ArgumentOutOfRangeException(nameof(call), $"{op}: row {r} target {t[r]} outside [{lo}, {hi})");
        }
        return (n, v);
    }

    public static void Forward(in OpCall call)
    {
        var (n, v) = CheckRows(call, false);
        var x = D(call.In[0]); int xo = (int)call.In[0].Offset;
        var tg = D(call.In[1]); int to = (int)call.In[1].Offset;
        var bd = D(call.In[2]); int bo = (int)call.In[2].Offset;
        var loss = D(call.Out[0]); int lo = (int)call.Out[0].Offset;
        var lse = D(call.Out[1]); int so = (int)call.Out[1].Offset;
        CpuParallel.For(n, Math.Max(1, 8192 / Math.Max(1, v)), (s, e) =>
        {
            var tmp = new float[v];
            for (int r = s; r < e; r++)
            {
                int a = BitConverter.SingleToInt32Bits(bd[bo + 2 * r]), b = BitConverter.SingleToInt32Bits(bd[bo + 2 * r + 1]);
                int t = BitConverter.SingleToInt32Bits(tg[to + r]);
                var row = x.AsSpan(xo + r * v + a, b - a);
                float max = CpuMath.Max(row);
                float l = max + MathF.Log(CpuMath.ExpShiftSum(row, max, tmp.AsSpan(0, b - a)));
                lse[so + r] = l;
                loss[lo + r] = l - x[xo + r * v + t];
            }
        });
    }

    public static void Backward(in OpCall call)
    {
        var (n, v) = CheckRows(call, true);
        var x = D(call.In[0]); int xo = (int)call.In[0].Offset;
        var tg = D(call.In[1]); int to = (int)call.In[1].Offset;
        var bd = D(call.In[2]); int bo = (int)call.In[2].Offset;
        var lse = D(call.In[3]); int so = (int)call.In[3].Offset;
        var dl = D(call.In[4]); int dlo = (int)call.In[4].Offset;
        var dx = D(call.Out[0]); int dxo = (int)call.Out[0].Offset;
        CpuParallel.For(n, Math.Max(1, 8192 / Math.Max(1, v)), (s, e) =>
        {
            for (int r = s; r < e; r++)
            {
                int a = BitConverter.SingleToInt32Bits(bd[bo + 2 * r]), b = BitConverter.SingleToInt32Bits(bd[bo + 2 * r + 1]);
                int t = BitConverter.SingleToInt32Bits(tg[to + r]);
                var drow = dx.AsSpan(dxo + r * v, v);
                drow[..a].Clear();
                drow[b..].Clear();
                var seg = drow[a..b];
                float g = dl[dlo + r];
                CpuMath.ExpShiftScale(x.AsSpan(xo + r * v + a, b - a), lse[so + r], g, seg);
                drow[t] -= g;
            }
        });
    }
}
