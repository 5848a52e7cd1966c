// CUDA launchers of the AdamW step (native/kernels/optimizer.cu): the per-parameter adamw_step op,
// and adamw_multi (one grad-norm launch + one update launch over a whole parameter list).
using System.Numerics;
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>adamw_step on CUDA: in [grad, gradNormSq(1)], out [param, m, v] (in place); the clip factor is computed on the device.</summary>
internal static class CudaOptimizer
{
    private static readonly KernelRef StepK = new("optimizer.cu", "adamw_step");
    private static readonly KernelRef MultiNormK = new("optimizer.cu", "adamw_multi_norm");
    private static readonly KernelRef MultiStepK = new("optimizer.cu", "adamw_multi_step");

    /// <summary>Elements per block of the adamw_multi kernels (ADAMW_CHUNK in optimizer.cu).</summary>
    internal const int Chunk = 4096;

    /// <summary>The device table of the last tensor list each backend ran adamw_multi on.</summary>
    private static readonly ConditionalWeakTable<CudaBackend, MultiTable> Tables = new();

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

    /// <summary>
    /// adamw_multi: in [grad[T]], out [gradNormSq, (param, m, v)[T]]. Two launches over every
    /// tensor: adamw_multi_norm (gradNormSq written: chunk partials, the last block sums them in
    /// order) and adamw_multi_step. Both read a device table of {param, grad, m, v, count, decay}
    /// per group and {group, start} per chunk, which is uploaded only when the list (pointers,
    /// sizes, decay flags) differs from the previous call's on this backend: an optimiser calling
    /// with its fixed list allocates and uploads nothing per step.
    /// </summary>
    public static void Multi(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var a = c.A<AdamWMultiAttrs>();
        var table = Tables.GetValue(b, static be => new MultiTable(be));
        lock (table)
        {
            table.Prepare(c, a.Decay);
            if (table.Chunks == 0) { c.Out[0].Zero(); return; } // every tensor is empty: the norm is 0 and nothing moves
            var s = AdamWScalars.Of(a.Step, 0); // host scalars; the clip factor comes from gradNormSq on the device
            b.Kernel(MultiNormK).Launch((uint)table.Chunks, CudaBackend.Threads, 0, table.Table, table.ChunkList, table.Partial, table.Counter, CudaBackend.Ptr(c.Out[0]));
            b.Kernel(MultiStepK).Launch((uint)table.Chunks, CudaBackend.Threads, 0, table.Table, table.ChunkList, CudaBackend.Ptr(c.Out[0]),
                Hyper(a.Step), s.StepSize, s.Bc2Sqrt, s.DecayMul);
        }
    }

    private static readonly KernelRef MultiSchedK = new("optimizer.cu", "adamw_multi_sched");

    /// <summary>
    /// adamw_multi (same tensors, same table) with the step's scalars read on the device: row state[0] - state[1]
    /// of <paramref name="sched"/> [rows, 3] = {step size, sqrt(bias correction 2), decay multiplier}, so the
    /// launch is the same every step and a CUDA graph replays it (docs/perf/gpu-throughput.md). Not an op: the
    /// trainer's device-resident step calls it through AdamW.UseDeviceSchedule. The table is the backend's
    /// adamw_multi table: a graph that captured it stays valid while no other parameter list runs adamw_multi
    /// on that backend (a different list rebuilds the table).
    /// </summary>
    internal static void MultiScheduled(CudaBackend b, Tensor[] ins, Tensor[] outs, AdamWMultiAttrs a, Tensor sched, ulong state)
    {
        var c = new OpCall(b, ins, outs, a);
        var table = Tables.GetValue(b, static be => new MultiTable(be));
        lock (table)
        {
            table.Prepare(c, a.Decay);
            if (table.Chunks == 0) { outs[0].Zero(); return; }
            b.Kernel(MultiNormK).Launch((uint)table.Chunks, CudaBackend.Threads, 0, table.Table, table.ChunkList, table.Partial, table.Counter, CudaBackend.Ptr(outs[0]));
            b.Kernel(MultiSchedK).Launch((uint)table.Chunks, CudaBackend.Threads, 0, table.Table, table.ChunkList, CudaBackend.Ptr(outs[0]),
                Hyper(a.Step), CudaBackend.Ptr(sched), state, sched.Length / 3);
        }
    }

    /// <summary>One backend's adamw_multi table: the host copy it was built from, and its device buffer.</summary>
    private sealed class MultiTable(CudaBackend backend)
    {
        private ulong[] _key = [];
        private DeviceBuffer? _buffer;

        public int Chunks { get; private set; }
        public ulong Table { get; private set; }
        public ulong ChunkList { get; private set; }
        public ulong Counter { get; private set; }
        public ulong Partial { get; private set; }

        /// <summary>Makes the device table describe this call's tensors (a rebuild only when they differ from the last call's).</summary>
        public void Prepare(in OpCall c, bool[] decay)
        {
            int t = c.In.Length;
            bool same = _key.Length == 6 * t;
            for (int i = 0; same && i < t; i++) same = Matches(c, decay, i);
            if (same) return;
            var key = new ulong[6 * t];
            var chunks = new List<int>();
            for (int i = 0; i < t; i++)
            {
                Entry(c, decay, i, key.AsSpan(6 * i, 6));
                for (int st = 0; st < c.In[i].Length; st += Chunk) { chunks.Add(i); chunks.Add(st); }
            }
            // Queued kernels may still read the old table.
            if (_buffer is not null) { backend.Synchronize(); _buffer.Dispose(); _buffer = null; }
            int nChunks = chunks.Count / 2;
            // Layout (4-byte elements): table (12 per group), chunks (2 per chunk), counter (+3 padding
            // for 16-byte alignment of what follows), partials (1 per chunk).
            long tableEl = 12L * t, chunkEl = 2L * nChunks, counterEl = 4;
            _buffer = backend.Allocate(tableEl + chunkEl + counterEl + Math.Max(1, nChunks));
            ulong basePtr = ((CudaBuffer)_buffer).Ptr;
            Table = basePtr; ChunkList = basePtr + (ulong)(tableEl * 4); Counter = ChunkList + (ulong)(chunkEl * 4); Partial = Counter + 16;
            backend.Upload<ulong>(_buffer, 0, key);
            backend.Upload<int>(_buffer, tableEl, chunks.ToArray());
            backend.Fill(_buffer, tableEl + chunkEl, counterEl, 0);
            Chunks = nChunks; _key = key;
        }

        private static void Entry(in OpCall c, bool[] decay, int i, Span<ulong> e)
        {
            e[0] = CudaBackend.Ptr(c.Out[1 + 3 * i]); e[1] = CudaBackend.Ptr(c.In[i]);
            e[2] = CudaBackend.Ptr(c.Out[2 + 3 * i]); e[3] = CudaBackend.Ptr(c.Out[3 + 3 * i]);
            e[4] = (ulong)c.In[i].Length; e[5] = decay[i] ? 1UL : 0UL;
        }

        private bool Matches(in OpCall c, bool[] decay, int i)
        {
            Span<ulong> e = stackalloc ulong[6];
            Entry(c, decay, i, e);
            return e.SequenceEqual(_key.AsSpan(6 * i, 6));
        }
    }
}
