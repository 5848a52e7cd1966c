// CUDA launchers of prior_sample.cu: the token embedding, the draw of the next token and the position advance of
// the prior's sampling step, with every per-position value in device memory (graph-replayable).
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>Launchers of native/kernels/prior_sample.cu (pipeline kernels of the prior's sampler, not ops, like device_step.cu).</summary>
internal static class CudaPriorSample
{
    private static readonly KernelRef EmbedK = new("prior_sample.cu", "prior_sample_embed");
    private static readonly KernelRef DrawK = new("prior_sample.cu", "prior_sample_draw");
    private static readonly KernelRef AdvanceK = new("prior_sample.cu", "prior_sample_advance");

    /// <summary>Threads per block of the draw (one block per sequence).</summary>
    public const int DrawThreads = 128;

    /// <summary>x [B, C] (=) = tok[ids[b]] + posemb[pos[0]].</summary>
    public static void Embed(CudaBackend b, Tensor x, Tensor tok, Tensor posemb, Tensor ids, Tensor pos)
    {
        int batch = x.Dim(0), c = x.Dim(1);
        b.Kernel(EmbedK).Launch(b.Blocks((long)batch * c), CudaBackend.Threads, 0,
            CudaBackend.Ptr(x), CudaBackend.Ptr(tok), CudaBackend.Ptr(posemb), CudaBackend.Ptr(ids), CudaBackend.Ptr(pos), batch, c);
    }

    /// <summary>
    /// codes[b, pos] (=) and ids[b] (=): one draw per sequence from the logits [B, V] of position pos's segment
    /// (bounds [T, 2] = lo, hi per position), RNG counter (seed, base[0] + b, pos). work is [B, 2V] scratch.
    /// </summary>
    public static void Draw(CudaBackend b, Tensor codes, Tensor ids, Tensor logits, Tensor work, Tensor pos, Tensor bounds, Tensor imageBase,
        float temperature, int topK, float topP, ulong seed)
    {
        int batch = logits.Dim(0), vocab = logits.Dim(1), tmax = codes.Dim(1);
        b.Kernel(DrawK).Args().Add(CudaBackend.Ptr(codes)).Add(CudaBackend.Ptr(ids)).Add(CudaBackend.Ptr(logits)).Add(CudaBackend.Ptr(work))
            .Add(CudaBackend.Ptr(pos)).Add(CudaBackend.Ptr(bounds)).Add(CudaBackend.Ptr(imageBase)).Add(batch).Add(vocab).Add(tmax)
            .Add(temperature).Add(topK).Add(topP).Add(seed)
            .Launch((uint)batch, DrawThreads, 0);
    }

    /// <summary>pos[0] += 1.</summary>
    public static void Advance(CudaBackend b, Tensor pos) => b.Kernel(AdvanceK).Launch(1, 32, 0, CudaBackend.Ptr(pos));
}
