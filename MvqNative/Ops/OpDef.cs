// OpDef: one registered op (its signature, implementations, reference and cases) and the
// call structs handed to implementations. Run checks the signature once, before dispatch,
// so a wrong call fails with the same message on every backend (docs/ops.md).
using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Ops;

/// <summary>The arguments of one op invocation on a backend.</summary>
internal readonly ref struct OpCall
{
    public readonly Backend Backend;
    public readonly ReadOnlySpan<Tensor> In;
    public readonly ReadOnlySpan<Tensor> Out;
    public readonly object? Attrs;

    public OpCall(Backend backend, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<Tensor> outputs, object? attrs)
    {
        Backend = backend; In = inputs; Out = outputs; Attrs = attrs;
    }

    /// <summary>The op's attribute record, typed (Run has already checked its type).</summary>
    public T A<T>() where T : class => Attrs as T ?? throw new ArgumentException($"op expects attributes of type {typeof(T).Name}");
}

/// <summary>
/// The float64 reference invocation: inputs converted to double (ints as exact doubles),
/// outputs to be filled. Plain loops, no SIMD, no threads: the ground truth in tests.
/// An absent optional input is null in <see cref="In"/> and <see cref="InShapes"/>.
/// </summary>
internal sealed class RefCall
{
    public required double[][] In { get; init; }
    public required int[][] InShapes { get; init; }
    public required double[][] Out { get; init; }
    public required int[][] OutShapes { get; init; }
    public object? Attrs { get; init; }
    public T A<T>() where T : class => Attrs as T ?? throw new ArgumentException($"op expects attributes of type {typeof(T).Name}");
}

internal delegate void OpImpl(in OpCall call);
internal delegate void RefImpl(RefCall call);

/// <summary>
/// The shape rule of an op: reads the shapes of <see cref="OpCall.In"/> / <see cref="OpCall.Out"/>
/// and the attributes, and throws <see cref="ArgumentException"/> (message without the op name,
/// e.g. "w has 3 input channels, x has 4") when they do not fit together. Must not allocate
/// when the shapes are right: it runs on every call.
/// </summary>
internal delegate void ShapeRule(in OpCall call);

/// <summary>How an op uses one tensor argument.</summary>
internal enum Access
{
    /// <summary>An input: read only.</summary>
    Read,
    /// <summary>An output overwritten by the op (=); its previous contents are ignored.</summary>
    Write,
    /// <summary>An output the op adds to (+=): parameter gradients, counts.</summary>
    Accumulate,
    /// <summary>An output read and written in place (optimiser state, running statistics, running argmin).</summary>
    Update,
}

/// <summary>One named tensor argument of an op: element type, how it is used, and whether it may be absent (null).</summary>
internal sealed record Arg(string Name, DType DType, Access Access, bool Optional = false)
{
    /// <summary>A float input.</summary>
    public static Arg In(string name) => new(name, DType.F32, Access.Read);
    /// <summary>An integer input.</summary>
    public static Arg InInt(string name) => new(name, DType.I32, Access.Read);
    /// <summary>A float input that may be passed as null (documented by the op).</summary>
    public static Arg InOptional(string name) => new(name, DType.F32, Access.Read, Optional: true);
    /// <summary>A float output written (=).</summary>
    public static Arg Write(string name) => new(name, DType.F32, Access.Write);
    /// <summary>An integer output written (=).</summary>
    public static Arg WriteInt(string name) => new(name, DType.I32, Access.Write);
    /// <summary>A float output accumulated (+=).</summary>
    public static Arg Acc(string name) => new(name, DType.F32, Access.Accumulate);
    /// <summary>A float output read and written in place.</summary>
    public static Arg Update(string name) => new(name, DType.F32, Access.Update);
    /// <summary>An integer output read and written in place.</summary>
    public static Arg UpdateInt(string name) => new(name, DType.I32, Access.Update);

    /// <summary>"=", "+=" or "&lt;->" (in place); empty for inputs.</summary>
    public string Symbol => Access switch { Access.Write => "=", Access.Accumulate => "+=", Access.Update => "<->", _ => "" };

    public override string ToString() => $"{Name}{(DType == DType.I32 ? ":i32" : "")}{(Optional ? "?" : "")}";
}

/// <summary>
/// One op, registered once: its signature (named inputs and outputs, attribute type, shape
/// rule), its CPU implementation, its CUDA launcher, its float64 reference, the op computing
/// its backward pass, and its conformance cases. Outputs are allocated by the caller.
/// </summary>
internal sealed class OpDef
{
    private Arg[] _inputs = [];
    private Arg[] _outputs = [];

    public OpDef(string name) => Name = name;

    /// <summary>snake_case name; the CUDA kernels of the op start with it.</summary>
    public string Name { get; }
    /// <summary>Inputs in call order.</summary>
    public IReadOnlyList<Arg> Inputs { get => _inputs; init => _inputs = [.. value]; }
    /// <summary>Outputs in call order, each written (=), accumulated (+=) or updated in place.</summary>
    public IReadOnlyList<Arg> Outputs { get => _outputs; init => _outputs = [.. value]; }
    /// <summary>Type of the attribute record, or null for an op without attributes.</summary>
    public Type? AttrsType { get; init; }
    /// <summary>Checks that the shapes (and attributes) of a call fit together; run by <see cref="Run"/> before dispatch.</summary>
    public ShapeRule? Shapes { get; init; }
    public OpImpl? Cpu { get; init; }
    public OpImpl? Cuda { get; init; }
    public RefImpl? Reference { get; init; }
    /// <summary>The op computing this op's gradients (its inputs: the forward inputs, then dy), or null.</summary>
    public string? Backward { get; init; }
    /// <summary>One line: the math (shown by `mvq selftest --list`).</summary>
    public string Doc { get; init; } = "";
    /// <summary>Conformance cases: every op has at least one (a test fails otherwise).</summary>
    public IReadOnlyList<Conformance.OpCase> Cases { get; init; } = [];

    public OpImpl? ImplFor(ImplKind kind) => kind == ImplKind.Cpu ? Cpu : Cuda;

    public bool Supports(Backend b) => ImplFor(b.ImplKind) is not null;

    /// <summary>The signature in one line, e.g. "conv2d_backward(x, w, dy) -> dx =, dw +=, db +=".</summary>
    public string Signature =>
        $"{Name}({string.Join(", ", _inputs.Select(a => a.ToString()))}) -> {string.Join(", ", _outputs.Select(a => $"{a} {a.Symbol}"))}";

    /// <summary>
    /// Runs the op on <paramref name="b"/>: checks the signature (<see cref="Check"/>), then
    /// dispatches to the backend's implementation.
    /// </summary>
    public void Run(Backend b, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<Tensor> outputs, object? attrs = null)
    {
        var impl = ImplFor(b.ImplKind) ?? throw new NotSupportedException($"op {Name} has no {b.ImplKind} implementation (device {b.Name})");
        var call = new OpCall(b, inputs, outputs, attrs);
        Check(call);
        impl(call);
    }

    /// <summary>
    /// The central signature check: argument counts, presence, device, element types, attribute
    /// type and the shape rule. Throws <see cref="ArgumentException"/> "op NAME: problem"; the
    /// message depends only on the call, never on the backend (except a tensor on another device).
    /// </summary>
    public void Check(in OpCall c)
    {
        if (c.In.Length != _inputs.Length || c.Out.Length != _outputs.Length)
            throw Error($"takes {_inputs.Length} inputs and {_outputs.Length} outputs ({Signature}), got {c.In.Length} and {c.Out.Length}");
        for (int i = 0; i < _inputs.Length; i++) CheckTensor(c.In[i], _inputs[i], "input", c.Backend);
        for (int i = 0; i < _outputs.Length; i++) CheckTensor(c.Out[i], _outputs[i], "output", c.Backend);
        if (AttrsType is null ? c.Attrs is not null : !AttrsType.IsInstanceOfType(c.Attrs))
            throw Error(AttrsType is null ? $"takes no attributes, got {c.Attrs!.GetType().Name}"
                : $"attributes must be {AttrsType.Name}, got {(c.Attrs is null ? "none" : c.Attrs.GetType().Name)}");
        if (Shapes is null) return;
        try { Shapes(c); }
        catch (ArgumentException e) { throw Error(e.Message, e); }
    }

    private void CheckTensor(Tensor? t, Arg a, string role, Backend b)
    {
        if (t is null)
        {
            if (!a.Optional) throw Error($"{role} {a.Name} is missing (null)");
            return;
        }
        if (t.Backend != b) throw Error($"{role} {a.Name} {t} is not on {b.Name}");
        if (t.DType != a.DType) throw Error($"{role} {a.Name} must be {a.DType}, got {t.DType} [{t.ShapeString}]");
    }

    private ArgumentException Error(string problem, Exception? inner = null) => new($"op {Name}: {problem}", inner);

    /// <summary>
    /// The same op (signature, reference, cases) with another CUDA implementation: a kernel
    /// variant selected by name (e.g. mvq_score's simple kernel), for tests and benchmarks. Not registered.
    /// </summary>
    public OpDef WithCuda(OpImpl cuda) => new(Name)
    {
        Inputs = Inputs, Outputs = Outputs, AttrsType = AttrsType, Shapes = Shapes,
        Cuda = cuda, Reference = Reference, Backward = Backward, Doc = Doc, Cases = Cases,
    };

    public override string ToString() => Name;
}

/// <summary>Small helpers for shape rules; they allocate only when building an error message.</summary>
internal static class ShapeText
{
    /// <summary>"[a,b,c]".</summary>
    public static string Of(ReadOnlySpan<int> shape) => "[" + string.Join(',', shape.ToArray()) + "]";

    /// <summary>"[a,b,c]" of a tensor, or "none" for an absent optional one.</summary>
    public static string Of(Tensor? t) => t is null ? "none" : "[" + t.ShapeString + "]";

    /// <summary>Throws unless <paramref name="t"/> has exactly the shape [d0] ([d0,d1], [d0,d1,d2] below).</summary>
    public static void Require(Tensor t, string name, int d0)
    {
        if (t.Rank != 1 || t.Shape[0] != d0) throw new ArgumentException($"{name} must be [{d0}], got {Of(t)}");
    }

    public static void Require(Tensor t, string name, int d0, int d1)
    {
        if (t.Rank != 2 || t.Shape[0] != d0 || t.Shape[1] != d1) throw new ArgumentException($"{name} must be [{d0},{d1}], got {Of(t)}");
    }

    public static void Require(Tensor t, string name, int d0, int d1, int d2)
    {
        if (t.Rank != 3 || t.Shape[0] != d0 || t.Shape[1] != d1 || t.Shape[2] != d2)
            throw new ArgumentException($"{name} must be [{d0},{d1},{d2}], got {Of(t)}");
    }

    /// <summary>The two sizes of a rank-2 tensor; throws for another rank ("NAME must be [ROWS,COLS]").</summary>
    public static (int Rows, int Cols) Matrix(Tensor t, string name, string rows = "N", string cols = "D")
    {
        if (t.Rank != 2) throw new ArgumentException($"{name} must be [{rows},{cols}], got {Of(t)}");
        return (t.Shape[0], t.Shape[1]);
    }

    /// <summary>The size of a rank-1 tensor; throws for another rank.</summary>
    public static int Vector(Tensor t, string name, string size = "N")
    {
        if (t.Rank != 1) throw new ArgumentException($"{name} must be [{size}], got {Of(t)}");
        return t.Shape[0];
    }

    /// <summary>Throws unless <paramref name="t"/> has <paramref name="length"/> elements (any shape).</summary>
    public static void Length(Tensor t, string name, long length)
    {
        if (t.Length != length) throw new ArgumentException($"{name} {Of(t)} must have {length} elements");
    }

    /// <summary>Throws unless <paramref name="t"/> has the same shape as <paramref name="like"/>.</summary>
    public static void SameShape(Tensor t, string name, Tensor like, string likeName)
    {
        if (!t.SameShape(like)) throw new ArgumentException($"{name} {Of(t)} must have the shape of {likeName} {Of(like)}");
    }
}
