using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Ops;

/// <summary>The arguments of one op invocation on a backend.</summary>
public readonly ref struct OpCall
{
    public readonly Backend Backend;
    public readonly ReadOnlySpan<Tensor> In;
    public readonly ReadOnlySpan<Tensor> Out;
    public readonly object? Attrs;

    public OpCall(Backend backend, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<Tensor> outputs, object? attrs)
    {
        Backend = backend; In = inputs; Out = outputs; Attrs = attrs;
    }

    /// <summary>The op's attribute record, typed.</summary>
    public T A<T>() where T : class => Attrs as T ?? throw new ArgumentException($"op expects attributes of type {typeof(T).Name}");
}

/// <summary>
/// The float64 reference invocation: inputs converted to double (ints as exact doubles),
/// outputs to be filled. Plain loops, no SIMD, no threads: the ground truth in tests.
/// </summary>
public sealed class RefCall
{
    public required double[][] In { get; init; }
    public required int[][] InShapes { get; init; }
    public required double[][] Out { get; init; }
    public required int[][] OutShapes { get; init; }
    public object? Attrs { get; init; }
    public T A<T>() where T : class => Attrs as T ?? throw new ArgumentException($"op expects attributes of type {typeof(T).Name}");
}

public delegate void OpImpl(in OpCall call);
public delegate void RefImpl(RefCall call);

/// <summary>
/// One op, registered once: its CPU implementation, its CUDA launcher, its float64
/// reference, and the name of the op that computes its backward pass (if any).
/// Outputs are allocated by the caller; an op writes them (=), except outputs that
/// the op documents as accumulated (parameter gradients, +=).
/// </summary>
public sealed class OpDef
{
    public OpDef(string name) => Name = name;

    /// <summary>snake_case name, also the CUDA kernel prefix (name_forward / name_backward).</summary>
    public string Name { get; }
    public OpImpl? Cpu { get; init; }
    public OpImpl? Cuda { get; init; }
    public RefImpl? Reference { get; init; }
    /// <summary>The op computing this op's gradients, or null for ops with no backward (lookups, optimiser steps, backward ops themselves).</summary>
    public string? Backward { get; init; }
    /// <summary>One line: the math and shapes (shown by `mvq doctor --ops`).</summary>
    public string Doc { get; init; } = "";
    /// <summary>Conformance cases: every op has at least one (a test fails otherwise).</summary>
    public IReadOnlyList<Conformance.OpCase> Cases { get; init; } = [];

    public OpImpl? ImplFor(ImplKind kind) => kind == ImplKind.Cpu ? Cpu : Cuda;

    public bool Supports(Backend b) => ImplFor(b.ImplKind) is not null;

    /// <summary>Runs the op on <paramref name="b"/>; all tensors must live there.</summary>
    public void Run(Backend b, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<Tensor> outputs, object? attrs = null)
    {
        var impl = ImplFor(b.ImplKind) ?? throw new NotSupportedException($"op {Name} has no {b.ImplKind} implementation (device {b.Name})");
        foreach (var t in inputs) if (t.Backend != b) throw new ArgumentException($"op {Name}: input {t} is not on {b.Name}");
        foreach (var t in outputs) if (t.Backend != b) throw new ArgumentException($"op {Name}: output {t} is not on {b.Name}");
        impl(new OpCall(b, inputs, outputs, attrs));
    }

    public override string ToString() => Name;
}
