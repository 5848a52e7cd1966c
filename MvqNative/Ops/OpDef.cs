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

/// <summary>
/// One named tensor argument of an op: element type, how it is used, and whether it may be absent (null).
/// A <see cref="Repeated"/> argument stands for a list of tensors (e.g. every parameter of a model):
/// the repeated arguments of an op come last among its inputs and among its outputs, and a call
/// passes them as T groups (T &gt;= 1, the same T for inputs and outputs), group by group.
/// </summary>
internal sealed record Arg(string Name, DType DType, Access Access, bool Optional = false)
{
    /// <summary>Whether the argument is one of the op's repeated group (see the type's summary).</summary>
    public bool Repeated { get; init; }

    /// <summary>This argument as a repeated one.</summary>
    public Arg Each() => this with { Repeated = true };

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

    public override string ToString() => $"{Name}{(DType == DType.I32 ? ":i32" : "")}{(Optional ? "?" : "")}{(Repeated ? "[T]" : "")}";
}

/// <summary>
/// One op, registered once: its signature (named inputs and outputs, attribute type, shape
/// rule), its CPU implementation, its CUDA launcher, its float64 reference, how its gradients
/// are computed (<see cref="GradSpec"/>), and its conformance cases. Outputs are allocated by the caller.
/// </summary>
internal sealed class OpDef
{
    private Arg[] _inputs = [];
    private Arg[] _outputs = [];

    public OpDef(string name) => Name = name;

    /// <summary>snake_case name; the CUDA kernels of the op start with it.</summary>
    public string Name { get; }
    /// <summary>Inputs in call order.</summary>
    public IReadOnlyList<Arg> Inputs { get => _inputs; init { _inputs = [.. value]; FixedIn = _inputs.Count(a => !a.Repeated); } }
    /// <summary>Outputs in call order, each written (=), accumulated (+=) or updated in place.</summary>
    public IReadOnlyList<Arg> Outputs { get => _outputs; init { _outputs = [.. value]; FixedOut = _outputs.Count(a => !a.Repeated); } }
    /// <summary>Type of the attribute record, or null for an op without attributes.</summary>
    public Type? AttrsType { get; init; }
    /// <summary>Checks that the shapes (and attributes) of a call fit together; run by <see cref="Run"/> before dispatch.</summary>
    public ShapeRule? Shapes { get; init; }
    public OpImpl? Cpu { get; init; }
    public OpImpl? Cuda { get; init; }
    public RefImpl? Reference { get; init; }
    /// <summary>How this op's gradients are computed and checked (<see cref="GradSpec"/>), or null for an op without gradients.</summary>
    public GradSpec? Grad { get; init; }
    /// <summary>One line: the math (shown by `mvq selftest --list`).</summary>
    public string Doc { get; init; } = "";
    /// <summary>Conformance cases: every op has at least one (a test fails otherwise).</summary>
    public IReadOnlyList<Conformance.OpCase> Cases { get; init; } = [];

    /// <summary>Leading inputs / outputs that are not repeated.</summary>
    private int FixedIn { get; init; }
    private int FixedOut { get; init; }
    private int RepIn => _inputs.Length - FixedIn;
    private int RepOut => _outputs.Length - FixedOut;

    /// <summary>Whether the op takes a repeated group of arguments (a tensor list).</summary>
    public bool IsVariadic => RepIn + RepOut > 0;

    /// <summary>
    /// The number of groups T of a call with these argument counts (1 for an op without repeated
    /// arguments when the counts match its signature), or -1 when the counts fit no T.
    /// </summary>
    public int Groups(int inputs, int outputs)
    {
        int fi = FixedIn, fo = FixedOut, ri = RepIn, ro = RepOut;
        if (ri + ro == 0) return inputs == fi && outputs == fo ? 1 : -1;
        int t = ri > 0 ? (inputs - fi) / ri : (outputs - fo) / ro;
        return t >= 1 && inputs == fi + t * ri && outputs == fo + t * ro ? t : -1;
    }

    /// <summary>The signature argument of call position <paramref name="i"/> (input or output).</summary>
    public Arg ArgAt(bool input, int i)
    {
        var args = input ? _inputs : _outputs;
        int f = input ? FixedIn : FixedOut;
        return i < f ? args[i] : args[f + (i - f) % (args.Length - f)];
    }

    /// <summary>The name of call position <paramref name="i"/>: the argument's name, with the group index for a repeated one ("grad[2]").</summary>
    public string ArgName(bool input, int i)
    {
        var a = ArgAt(input, i);
        if (!a.Repeated) return a.Name;
        int f = input ? FixedIn : FixedOut, r = input ? RepIn : RepOut;
        return $"{a.Name}[{(i - f) / r}]";
    }

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
        if (!OpTiming.Enabled) { impl(call); return; }
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        impl(call);
        OpTiming.Add(this, call, t0);
    }

    /// <summary>
    /// The central signature check: argument counts, presence, device, element types, attribute
    /// type and the shape rule. Throws <see cref="ArgumentException"/> "op NAME: problem"; the
    /// message depends only on the call, never on the backend (except a tensor on another device).
    /// </summary>
    public void Check(in OpCall c)
    {
        if (!IsVariadic)
        {
            if (c.In.Length != _inputs.Length || c.Out.Length != _outputs.Length)
                throw Error($"takes {_inputs.Length} inputs and {_outputs.Length} outputs ({Signature}), got {c.In.Length} and {c.Out.Length}");
        }
        else if (Groups(c.In.Length, c.Out.Length) < 0)
            throw Error($"takes {FixedIn} + {RepIn} T inputs and {FixedOut} + {RepOut} T outputs for T >= 1 tensor groups ({Signature}), got {c.In.Length} and {c.Out.Length}");
        for (int i = 0; i < c.In.Length; i++) CheckTensor(c.In[i], i, true, c.Backend);
        for (int i = 0; i < c.Out.Length; i++) CheckTensor(c.Out[i], i, false, c.Backend);
        if (AttrsType is null ? c.Attrs is not null : !AttrsType.IsInstanceOfType(c.Attrs))
            throw Error(AttrsType is null ? $"takes no attributes, got {c.Attrs!.GetType().Name}"
                : $"attributes must be {AttrsType.Name}, got {(c.Attrs is null ? "none" : c.Attrs.GetType().Name)}");
        if (Shapes is null) return;
        try { Shapes(c); }
        catch (ArgumentException e) { throw Error(e.Message, e); }
    }

    private void CheckTensor(Tensor? t, int i, bool input, Backend b)
    {
        var a = input ? (i < _inputs.Length ? _inputs[i] : ArgAt(true, i)) : (i < _outputs.Length ? _outputs[i] : ArgAt(false, i));
        string role = input ? "input" : "output";
        if (t is null)
        {
            if (!a.Optional) throw Error($"{role} {ArgName(input, i)} is missing (null)");
            return;
        }
        if (t.Backend != b) throw Error($"{role} {ArgName(input, i)} {t} is not on {b.Name}");
        if (t.DType != a.DType) throw Error($"{role} {ArgName(input, i)} must be {a.DType}, got {t.DType} [{t.ShapeString}]");
    }

    private ArgumentException Error(string problem, Exception? inner = null) => new($"op {Name}: {problem}", inner);

    /// <summary>
    /// The same op (signature, reference, cases) with another CUDA implementation: a kernel
    /// variant selected by name (e.g. mvq_score's simple kernel), for tests and benchmarks. Not registered.
    /// </summary>
    public OpDef WithCuda(OpImpl cuda) => new(Name)
    {
        Inputs = Inputs, Outputs = Outputs, AttrsType = AttrsType, Shapes = Shapes,
        Cuda = cuda, Reference = Reference, Grad = Grad, Doc = Doc, Cases = Cases,
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
