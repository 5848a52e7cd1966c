// PriorKernels.cs: the one place where the prior calls the transformer ops (embedding, layer norm, GELU,
// causal attention, KV-cache decode, segment-masked cross entropy): typed wrappers of the OpDefs in
// MvqNative/Ops/{Embedding,LayerNorm,Gelu,Attention,CrossEntropy}Ops.cs, shared by the layers and the sampler.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Prior;

internal static class PriorKernels
{
    /// <summary>y [N, C] = table[ids[n]].</summary>
    public static void Embedding(Backend b, Tensor ids, Tensor table, Tensor y) => EmbeddingOps.Forward.Run(b, [ids, table], [y]);

    /// <summary>dtable [V, C] += scatter of dy rows by ids.</summary>
    public static void EmbeddingBackward(Backend b, Tensor ids, Tensor dy, Tensor dtable) => EmbeddingOps.BackwardOp.Run(b, [ids, dy], [dtable]);

    public static void LayerNorm(Backend b, Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd, LayerNormAttrs attrs) =>
        LayerNormOps.Forward.Run(b, [x, gamma, beta], [y, mean, rstd], attrs);

    public static void LayerNormBackward(Backend b, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dgamma, Tensor dbeta, LayerNormAttrs attrs) =>
        LayerNormOps.BackwardOp.Run(b, [x, gamma, mean, rstd, dy], [dx, dgamma, dbeta], attrs);

    public static void Gelu(Backend b, Tensor x, Tensor y) => GeluOps.Forward.Run(b, [x], [y]);

    public static void GeluBackward(Backend b, Tensor x, Tensor dy, Tensor dx) => GeluOps.BackwardOp.Run(b, [x, dy], [dx]);

    /// <summary>qkv [B*T, 3C] -> y [B*T, C], lse [B, H, T].</summary>
    public static void Attention(Backend b, Tensor qkv, Tensor y, Tensor lse, AttentionAttrs attrs) =>
        AttentionOps.Forward.Run(b, [qkv], [y, lse], attrs);

    public static void AttentionBackward(Backend b, Tensor qkv, Tensor y, Tensor lse, Tensor dy, Tensor dqkv, AttentionAttrs attrs) =>
        AttentionOps.BackwardOp.Run(b, [qkv, y, lse, dy], [dqkv], attrs);

    /// <summary>Writes row pos of the caches [B, Tmax, C] from qkv [B, 3C].</summary>
    public static void KvCacheAppend(Backend b, Tensor qkv, Tensor pos, Tensor kcache, Tensor vcache, AttentionAttrs attrs) =>
        AttentionOps.KvCacheAppend.Run(b, [qkv, pos], [kcache, vcache], attrs);

    /// <summary>y [B, C]: the q part of qkv [B, 3C] against cache rows 0..pos.</summary>
    public static void AttentionDecode(Backend b, Tensor qkv, Tensor kcache, Tensor vcache, Tensor pos, Tensor y, AttentionAttrs attrs) =>
        AttentionOps.Decode.Run(b, [qkv, kcache, vcache, pos], [y], attrs);

    /// <summary>loss [N], lse [N] over columns [lo, hi) of each row.</summary>
    public static void CrossEntropy(Backend b, Tensor logits, Tensor targets, Tensor bounds, Tensor loss, Tensor lse) =>
        CrossEntropyOps.Forward.Run(b, [logits, targets, bounds], [loss, lse]);

    public static void CrossEntropyBackward(Backend b, Tensor logits, Tensor targets, Tensor bounds, Tensor lse, Tensor dloss, Tensor dlogits) =>
        CrossEntropyOps.BackwardOp.Run(b, [logits, targets, bounds, lse, dloss], [dlogits]);
}
