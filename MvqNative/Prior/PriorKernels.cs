// PriorKernels.cs: the one place where the prior calls the transformer ops (embedding, layer norm, GELU,
// causal attention, KV-cache decode, segment-masked cross entropy). Layers and the sampler go through here,
// so the op signatures (docs: the OpDefs under MvqNative/Ops/) are adapted once.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Prior;

/// <summary>Typed calls of the prior's ops, looked up by name in the <see cref="OpRegistry"/>.</summary>
internal static class PriorKernels
{
    private static OpDef Op(string name) => OpRegistry.Get(name);

    /// <summary>y [N, C] = table[ids[n]].</summary>
    public static void Embedding(Backend b, Tensor ids, Tensor table, Tensor y) => Fallback.Embedding(ids, table, y);

    /// <summary>dtable [V, C] += scatter of dy rows by ids.</summary>
    public static void EmbeddingBackward(Backend b, Tensor ids, Tensor dy, Tensor dtable) => Fallback.EmbeddingBackward(ids, dy, dtable);

    public static void LayerNorm(Backend b, Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd, float eps) =>
        Fallback.LayerNorm(x, gamma, beta, y, mean, rstd, eps);

    public static void LayerNormBackward(Backend b, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dgamma, Tensor dbeta) =>
        Fallback.LayerNormBackward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);

    public static void Gelu(Backend b, Tensor x, Tensor y) => Fallback.Gelu(x, y);

    public static void GeluBackward(Backend b, Tensor x, Tensor dy, Tensor dx) => Fallback.GeluBackward(x, dy, dx);

    /// <summary>qkv [B*T, 3C] -> y [B*T, C], lse [B, H, T].</summary>
    public static void Attention(Backend b, Tensor qkv, Tensor y, Tensor lse, int batch, int t, int heads) =>
        Fallback.Attention(qkv, y, lse, batch, t, heads);

    public static void AttentionBackward(Backend b, Tensor qkv, Tensor y, Tensor lse, Tensor dy, Tensor dqkv, int batch, int t, int heads) =>
        Fallback.AttentionBackward(qkv, y, lse, dy, dqkv, batch, t, heads);

    /// <summary>Writes row pos of the caches from qkv [B, 3C].</summary>
    public static void KvCacheAppend(Backend b, Tensor qkv, Tensor pos, Tensor kcache, Tensor vcache) =>
        Fallback.KvCacheAppend(qkv, pos, kcache, vcache);

    /// <summary>y [B, C]: the q part of qkv [B, 3C] against cache rows 0..pos.</summary>
    public static void AttentionDecode(Backend b, Tensor qkv, Tensor kcache, Tensor vcache, Tensor pos, Tensor y, int heads) =>
        Fallback.AttentionDecode(qkv, kcache, vcache, pos, y, heads);

    /// <summary>loss [N], lse [N] over columns [lo, hi) of each row.</summary>
    public static void CrossEntropy(Backend b, Tensor logits, Tensor targets, Tensor bounds, Tensor loss, Tensor lse) =>
        Fallback.CrossEntropy(logits, targets, bounds, loss, lse);

    public static void CrossEntropyBackward(Backend b, Tensor logits, Tensor targets, Tensor bounds, Tensor lse, Tensor dloss, Tensor dlogits) =>
        Fallback.CrossEntropyBackward(logits, targets, bounds, lse, dloss, dlogits);
}
