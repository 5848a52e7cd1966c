// A linear layer's weight packed once for inference on the CPU (the prior's sampling step), computing exactly
// what LinearOps.Forward computes on the CPU backend.
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// y [N, out] = x [N, in] W^T + b with W [out, in] packed once into the GEMM's panel layout
/// (<see cref="CpuGemm.PackedB"/>). Bit-identical to <c>LinearOps.Forward</c> on <see cref="CpuBackend"/> (bias rows
/// first, then the same GEMM with beta = 1); it only saves re-packing W on every call, which dominates a
/// small-batch step (64 rows against a 128 x 512 weight: packing W touches as many bytes as the product reads).
/// The pack is a snapshot: build it after the weights are final and dispose it before they change.
/// </summary>
internal sealed unsafe class CpuPackedLinear : IDisposable
{
    private readonly CpuGemm.PackedB _w;
    private readonly float[] _bias;
    private readonly int _bo;

    public int In => _w.K;
    public int Out => _w.N;

    /// <param name="weight">W [out, in] on the CPU backend (a row slice is fine).</param>
    /// <param name="bias">b [out].</param>
    public CpuPackedLinear(Tensor weight, Tensor bias)
    {
        if (weight.Shape.Length != 2 || bias.Shape.Length != 1 || bias.Shape[0] != weight.Shape[0])
            throw new ArgumentException($"packed linear: weight {string.Join('x', weight.Shape)} and bias {string.Join('x', bias.Shape)} do not match");
        int n = weight.Shape[0], k = weight.Shape[1];
        fixed (float* pw = Arr(weight)) _w = new CpuGemm.PackedB(pw + weight.Offset, n, k, k);
        _bias = Arr(bias);
        _bo = (int)bias.Offset;
    }

    /// <summary>y [N, out] = x [N, in] W^T + b (x and y on the CPU backend).</summary>
    public void Forward(Tensor x, Tensor y)
    {
        int n = x.Shape[0];
        if (x.Shape.Length != 2 || x.Shape[1] != In || y.Shape.Length != 2 || y.Shape[0] != n || y.Shape[1] != Out)
            throw new ArgumentException($"packed linear [{Out}x{In}]: x {string.Join('x', x.Shape)}, y {string.Join('x', y.Shape)}");
        var xa = Arr(x); var ya = Arr(y);
        int xo = (int)x.Offset, yo = (int)y.Offset, fout = Out;
        var b = _bias.AsSpan(_bo, fout);
        for (int r = 0; r < n; r++) b.CopyTo(ya.AsSpan(yo + r * fout, fout));
        fixed (float* px = xa, py = ya)
            CpuGemm.SgemmPacked(CpuParallel.Threads, false, n, px + xo, In, _w, 1f, py + yo, fout);
    }

    public void Dispose() => _w.Dispose();

    private static float[] Arr(Tensor t) => ((CpuBuffer)t.Buffer).Data;
}
