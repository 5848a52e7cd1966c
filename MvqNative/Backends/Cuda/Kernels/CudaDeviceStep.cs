// CUDA launchers of device_step.cu: the batch gather, the MVQ training masks and the step counter of a
// training step whose inputs are made on the device (no host copy per step; graph-replayable).
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>Launchers of native/kernels/device_step.cu (not ops: pipeline kernels of the trainer, like the multi-tensor AdamW).</summary>
internal static class CudaDeviceStep
{
    private static readonly KernelRef GatherK = new("device_step.cu", "gather_batch");
    private static readonly KernelRef MaskK = new("device_step.cu", "mask_words_step");
    private static readonly KernelRef AdvanceK = new("device_step.cu", "step_advance");

    /// <summary>x [B, ...] (=) = images of <paramref name="data"/> [n, ...] at global counters g_base + t*B + b, t = state[0].</summary>
    public static void GatherBatch(CudaBackend b, Tensor x, Tensor data, int n, int imageFloats, int batch, ulong seed, long gBase, ulong state)
    {
        b.Kernel(GatherK).Launch((uint)batch, CudaBackend.Threads, 0, CudaBackend.Ptr(x), CudaBackend.Ptr(data), n, imageFloats, batch, seed, gBase, state);
    }

    /// <summary>words [count] (=) = MaskHash.MaskWord(seed, stepBase + state[0], i, d2, p) with thr = MaskHash.Threshold(p).</summary>
    public static void MaskWords(CudaBackend b, Tensor words, int count, ulong seed, ulong stepBase, ulong state, int d2, ulong thr)
    {
        b.Kernel(MaskK).Launch(b.Blocks(count), CudaBackend.Threads, 0, CudaBackend.Ptr(words), count, seed, stepBase, state, d2, thr);
    }

    /// <summary>state[0] += 1.</summary>
    public static void Advance(CudaBackend b, ulong state) => b.Kernel(AdvanceK).Launch(1, 32, 0, state);
}
