// CUDA launchers of the AdamW step (native/kernels/optimizer.cu): the per-parameter adamw_step op,
// and the multi-tensor path (one grad-norm launch + one update launch over all parameters).
using System.Numerics;
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>adamw_step on CUDA: in [grad, gradNormSq(1)], out [param, m, v] (in place); the clip factor is computed on the device.</summary>
internal static class CudaOptimizer
{
    private static readonly KernelRef StepK = new("optimizer.cu", "adamw_step");

    /// <summary>(beta1, beta2, eps, clipNorm): the kernels' float4 h.</summary>
    internal static Vector4 Hyper(AdamWAttrs a) => new(a.Beta1, a.Beta2, a.Eps, a.ClipNorm);

    public static void Step(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var a = c.A<AdamWAttrs>();
        var grad = c.In[0]; var gns = c.In[1];
        var p = c.Out[0]; var m = c.Out[1]; var v = c.Out[2];
        int n = grad.Length;
        var s = AdamWScalars.Of(a, 0); // host scalars of the step; the clip factor comes from gns on the device
        if (n == 0) return;
        b.Kernel(StepK).Launch(b.Blocks(n), CudaBackend.Threads, 0, CudaBackend.Ptr(grad), CudaBackend.Ptr(gns), CudaBackend.Ptr(p),
            CudaBackend.Ptr(m), CudaBackend.Ptr(v), n, Hyper(a), s.DecayMul, s.StepSize, s.Bc2Sqrt);
    }
}

/// <summary>
/// The multi-tensor AdamW of one fixed parameter list: a device table of
/// {param, grad, m, v, count, decay} per tensor and {tensor, start} per chunk of
/// <see cref="Chunk"/> elements, uploaded once. Per step: <see cref="GradNormSq"/> (one launch:
/// chunk partials, the last block sums them in order) and <see cref="Step"/> (one launch).
/// Nothing is allocated per step.
/// </summary>
internal sealed class CudaMultiTensorAdamW : IDisposable
{
    private static readonly KernelRef NormK = new("optimizer.cu", "multi_grad_norm");
    private static readonly KernelRef StepK = new("optimizer.cu", "adamw_multi");

    /// <summary>Elements per block (ADAMW_CHUNK in optimizer.cu).</summary>
    internal const int Chunk = 4096;

    private readonly CudaBackend _backend;
    private readonly DeviceBuffer _buffer;
    private readonly ulong _table, _chunks, _counter, _partial;

    /// <summary>Blocks of each launch (one per chunk).</summary>
    public int Chunks { get; }

    /// <param name="backend">The backend every tensor lives on.</param>
    /// <param name="tensors">Per parameter: value, gradient, first and second moment (same length each) and whether it decays.</param>
    public CudaMultiTensorAdamW(CudaBackend backend, IReadOnlyList<(Tensor Param, Tensor Grad, Tensor M, Tensor V, bool Decay)> tensors)
    {
        _backend = backend;
        var table = new ulong[6 * tensors.Count];
        var chunks = new List<int>();
        for (int i = 0; i < tensors.Count; i++)
        {
            var (p, g, m, v, decay) = tensors[i];
            if (g.Length != p.Length || m.Length != p.Length || v.Length != p.Length) throw new ArgumentException($"multi-tensor AdamW: tensor {i} has mismatched lengths");
            foreach (var t in new[] { p, g, m, v })
                if (t.Backend != backend) throw new ArgumentException($"multi-tensor AdamW: {t} is not on {backend.Name}");
            table[6 * i] = CudaBackend.Ptr(p); table[6 * i + 1] = CudaBackend.Ptr(g);
            table[6 * i + 2] = CudaBackend.Ptr(m); table[6 * i + 3] = CudaBackend.Ptr(v);
            table[6 * i + 4] = (ulong)p.Length; table[6 * i + 5] = decay ? 1UL : 0UL;
            for (int s = 0; s < p.Length; s += Chunk) { chunks.Add(i); chunks.Add(s); }
        }
        Chunks = chunks.Count / 2;
        // Layout (4-byte elements): table (12 per tensor), chunks (2 per chunk), counter (+3 padding
        // for 16-byte alignment of what follows), partials (1 per chunk).
        long tableEl = 12L * tensors.Count, chunkEl = 2L * Chunks, counterEl = 4;
        _buffer = backend.Allocate(Math.Max(1, tableEl + chunkEl + counterEl + Chunks));
        ulong basePtr = ((CudaBuffer)_buffer).Ptr;
        _table = basePtr; _chunks = basePtr + (ulong)(tableEl * 4); _counter = _chunks + (ulong)(chunkEl * 4); _partial = _counter + 16;
        if (table.Length > 0) backend.Upload<ulong>(_buffer, 0, table);
        if (chunks.Count > 0) backend.Upload<int>(_buffer, tableEl, chunks.ToArray());
        backend.Fill(_buffer, tableEl + chunkEl, counterEl, 0);
    }

    /// <summary>gns[0] = sum of squares of every gradient (written, not accumulated).</summary>
    public void GradNormSq(Tensor gns)
    {
        if (Chunks == 0) { gns.Zero(); return; }
        _backend.Kernel(NormK).Launch((uint)Chunks, CudaBackend.Threads, 0, _table, _chunks, _partial, _counter, CudaBackend.Ptr(gns));
    }

    /// <summary>One AdamW step of every tensor (decay flag per tensor: <paramref name="a"/>'s WeightDecay or none), clipped by gns.</summary>
    public void Step(Tensor gns, AdamWAttrs a)
    {
        if (Chunks == 0) return;
        var s = AdamWScalars.Of(a, 0);
        _backend.Kernel(StepK).Launch((uint)Chunks, CudaBackend.Threads, 0, _table, _chunks, CudaBackend.Ptr(gns),
            CudaOptimizer.Hyper(a), s.StepSize, s.Bc2Sqrt, s.DecayMul);
    }

    private static readonly KernelRef SchedK = new("optimizer.cu", "adamw_multi_sched");

    /// <summary>
    /// One AdamW step with its scalars read on the device: row state[0] - state[1] of <paramref name="sched"/>
    /// [rows, 3] = {step size, sqrt(bias correction 2), decay multiplier} (same launch every step: graph-replayable).
    /// </summary>
    public void StepScheduled(Tensor gns, AdamWAttrs hyper, Tensor sched, ulong state)
    {
        if (Chunks == 0) return;
        _backend.Kernel(SchedK).Launch((uint)Chunks, CudaBackend.Threads, 0, _table, _chunks, CudaBackend.Ptr(gns),
            CudaOptimizer.Hyper(hyper), CudaBackend.Ptr(sched), state, sched.Length / 3);
    }

    public void Dispose() => _buffer.Dispose();
}
