// Layer: embedding lookup (token or position table), on embedding_forward / embedding_backward.
using MvqNative.Backends;
using MvqNative.Prior;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// y[..., C] = weight[ids[...]]: ids I32 of any shape -> floats [ids..., C]. Parameter <c>weight</c> [count, C]
/// (initialised N(0, std)); its gradient is the scatter-add of dy by id (deterministic). No input gradient.
/// </summary>
internal sealed class Embedding : Module
{
    private Tensor? _ids;

    /// <param name="backend">Device of the table and activations.</param>
    /// <param name="count">Rows of the table (vocabulary or positions).</param>
    /// <param name="dim">Width C of a row.</param>
    /// <param name="rng">Initialisation source.</param>
    /// <param name="std">Standard deviation of the initial rows.</param>
    /// <param name="decay">Whether AdamW decays the table.</param>
    public Embedding(Backend backend, int count, int dim, Random rng, float std = 0.02f, bool decay = false) : base(backend)
    {
        if (count < 1 || dim < 1) throw new ArgumentOutOfRangeException(nameof(count), $"embedding {count}x{dim}: sizes must be positive");
        Count = count; Dim = dim;
        Weight = AddParameter("weight", backend.FromArray(Init.Normal(rng, count * dim, std), count, dim), decay: decay);
    }

    public int Count { get; }
    public int Dim { get; }
    /// <summary>[count, C].</summary>
    public Parameter Weight { get; }

    /// <summary>ids I32 [...] -> y [..., C] (arena buffer).</summary>
    public override Tensor Forward(Tensor ids)
    {
        if (ids.DType != DType.I32) throw new ArgumentException($"Embedding expects I32 ids, got {ids.DType}");
        _ids = ids.Reshape(ids.Length);
        var y = Arena.Get("y", [.. ids.Shape, Dim]);
        PriorKernels.Embedding(Backend, _ids, Weight.Value, y.Reshape(ids.Length, Dim));
        return y;
    }

    /// <summary>Accumulates the table's gradient; returns dy (ids have no gradient).</summary>
    public override Tensor Backward(Tensor dy)
    {
        var ids = _ids ?? throw new InvalidOperationException("Embedding.Backward before Forward");
        if (dy.Length != ids.Length * Dim) throw new ArgumentException($"Embedding.Backward: dy [{dy.ShapeString}] does not match {ids.Length} ids x {Dim}");
        PriorKernels.EmbeddingBackward(Backend, ids, dy.Reshape(ids.Length, Dim), Weight.Grad);
        return dy;
    }
}

/// <summary>Initial values of the prior's parameters.</summary>
internal static class Init
{
    /// <summary>n draws of N(0, std) (Box-Muller over <paramref name="rng"/>).</summary>
    public static float[] Normal(Random rng, int n, float std)
    {
        var a = new float[n];
        for (int i = 0; i < n; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2 * Math.Log(u1)) * std;
            a[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < n) a[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
        return a;
    }

    public static float[] Const(int n, float v)
    {
        var a = new float[n];
        Array.Fill(a, v);
        return a;
    }
}
