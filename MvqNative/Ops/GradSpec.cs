// GradSpec: how an op's gradients are computed (which op, fed with what) and how they are
// checked. The registry-driven gradient check (tests: Gradients/GradientCheckTests.cs) reads it
// for every op that declares one; nothing else in the library needs hand-written gradient tests.
namespace MvqNative.Ops;

/// <summary>One input of a backward call: a forward input, a forward output, or the seed (upstream gradient) of a forward output.</summary>
internal readonly record struct GradArg(GradArg.Source From, int Index)
{
    public enum Source { Input, Output, Seed }

    /// <summary>Forward input <paramref name="i"/>.</summary>
    public static GradArg In(int i) => new(Source.Input, i);
    /// <summary>Forward output <paramref name="i"/> (saved statistics such as mean, rstd, lse, or y itself).</summary>
    public static GradArg Out(int i) => new(Source.Output, i);
    /// <summary>The upstream gradient dL/d(forward output <paramref name="i"/>).</summary>
    public static GradArg Dy(int i) => new(Source.Seed, i);
}

/// <summary>
/// The gradient of an op. Either a backward op (<see cref="Op"/>) called with <see cref="Inputs"/>
/// whose outputs are the gradients of the forward inputs named by <see cref="Of"/>, or, for an op
/// that returns a loss and its gradient together (<see cref="Fused"/>), its own outputs.
/// <para>Smooth ops are checked against central differences of the float64 reference forward on
/// every conformance case of the forward op, on every backend. Ops whose forward is piecewise
/// constant in the differentiated input (an argmin, a winner selection) say why in
/// <see cref="ClosedForm"/>; a closed-form test covers them instead.</para>
/// </summary>
internal sealed record GradSpec
{
    /// <summary>The backward op's name, or null for a <see cref="Fused"/> gradient.</summary>
    public string? Op { get; init; }

    /// <summary>The backward op's inputs, in its signature order.</summary>
    public IReadOnlyList<GradArg> Inputs { get; init; } = [];

    /// <summary>Per backward output: the forward input whose gradient it holds.</summary>
    public IReadOnlyList<int> Of { get; init; } = [];

    /// <summary>The forward outputs that carry gradient (seeded with dy); the others are saved statistics.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [0];

    /// <summary>The backward op's attributes from the forward op's (default: the same record).</summary>
    public Func<object?, object?>? Attrs { get; init; }

    /// <summary>
    /// (value output, gradient output, input): the op itself writes d(value)/d(input) (mse_loss,
    /// l1_loss). Its scalar value is the objective; no seed.
    /// </summary>
    public (int Value, int Gradient, int Input)? Fused { get; init; }

    /// <summary>Fixes up generated float64 inputs of a check so that no difference step crosses a kink (relu at 0, |p - t|).</summary>
    public Action<double[][]>? Prepare { get; init; }

    /// <summary>Relative L2 error allowed between a backend's float32 gradient and the differences (default 2e-4); a looser value says why where it is set.</summary>
    public double Tolerance { get; init; } = 2e-4;

    /// <summary>Why finite differences cannot check this gradient, and which test does instead; null for a smooth op.</summary>
    public string? ClosedForm { get; init; }

    /// <summary>A backward op fed with <paramref name="inputs"/>; its outputs are the gradients of the forward inputs <paramref name="of"/>.</summary>
    public static GradSpec By(string op, GradArg[] inputs, params int[] of) => new() { Op = op, Inputs = inputs, Of = of };
}
