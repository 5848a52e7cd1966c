using System.Runtime.InteropServices;
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Conformance;

/// <summary>Result of one case on one backend.</summary>
internal sealed record CaseResult(string Op, string Case, string Device, bool Passed, double WorstNmse, string Message);

/// <summary>Summary of a conformance run (the body of `mvq selftest --json`).</summary>
internal sealed record ConformanceReport(string Device, int Ops, int Cases, int Passed, int Failed, IReadOnlyList<string> Uncovered, IReadOnlyList<CaseResult> Results);

/// <summary>
/// Runs every registered op's cases on a backend against the float64 reference.
/// An op is "uncovered" when it has no case, or when the backend lacks its implementation.
/// </summary>
internal static class ConformanceRunner
{
    public static ConformanceReport Run(Backend backend, Func<OpDef, bool>? filter = null, Action<CaseResult>? progress = null)
    {
        var results = new List<CaseResult>();
        var uncovered = new List<string>();
        int ops = 0;
        foreach (var op in OpRegistry.All)
        {
            if (filter != null && !filter(op)) continue;
            ops++;
            if (op.Cases.Count == 0 || op.Reference is null) { uncovered.Add($"{op.Name} (no case)"); continue; }
            if (!op.Supports(backend)) { uncovered.Add($"{op.Name} (no {backend.ImplKind} implementation)"); continue; }
            foreach (var c in op.Cases)
            {
                var r = RunCase(backend, op, c);
                results.Add(r);
                progress?.Invoke(r);
            }
            var w = RunWrongShape(backend, op);
            results.Add(w);
            progress?.Invoke(w);
        }
        int passed = results.Count(r => r.Passed);
        return new ConformanceReport(backend.Name, ops, results.Count, passed, results.Count - passed, uncovered, results);
    }

    /// <summary>A call of an op with one tensor's shape spoiled, and the message the signature check gives for it.</summary>
    public sealed record WrongShape(string Label, int[]?[] In, int[][] Out, DType?[] InTypes, DType[] OutTypes, object? Attrs, string Message);

    /// <summary>
    /// The wrong-shape case of an op: its first case with the first single change of one tensor's
    /// shape (inputs, then outputs; each dimension + 1, then one extra trailing dimension) that its
    /// signature rejects, found by <see cref="OpDef.Check"/> on CPU tensors (no kernel runs).
    /// Null when no such change is rejected (a test fails then).
    /// </summary>
    public static WrongShape? FindWrongShape(OpDef op)
    {
        if (op.Cases.Count == 0) return null;
        var c = op.Cases[0];
        var baseIn = c.In.Select(s => s?.Shape).ToArray();
        var baseOut = c.Out.Select(s => s.Shape).ToArray();
        var inTypes = c.In.Select(s => s?.DType).ToArray();
        var outTypes = c.Out.Select(s => s.DType).ToArray();
        int total = baseIn.Length + baseOut.Length;
        for (int t = 0; t < total; t++)
        {
            var shape = t < baseIn.Length ? baseIn[t] : baseOut[t - baseIn.Length];
            if (shape is null) continue;
            for (int d = 0; d <= shape.Length; d++)
            {
                int[] spoiled = d < shape.Length ? shape.Select((v, k) => k == d ? v + 1 : v).ToArray() : [.. shape, 1];
                var ins = (int[]?[])baseIn.Clone(); var outs = (int[][])baseOut.Clone();
                if (t < baseIn.Length) ins[t] = spoiled; else outs[t - baseIn.Length] = spoiled;
                var message = CheckMessage(op, ins, outs, inTypes, outTypes, c.Attrs);
                if (message is null) continue;
                string name = t < baseIn.Length ? op.ArgName(true, t) : op.ArgName(false, t - baseIn.Length);
                return new WrongShape($"wrong shape: {name} [{string.Join(',', spoiled)}]", ins, outs, inTypes, outTypes, c.Attrs, message);
            }
        }
        return null;
    }

    /// <summary>The signature check's message for a call with these shapes on the CPU, or null when it passes.</summary>
    private static string? CheckMessage(OpDef op, int[]?[] ins, int[][] outs, DType?[] inTypes, DType[] outTypes, object? attrs)
    {
        var cpu = Backends.Cpu.CpuBackend.Instance;
        var tin = Allocate(cpu, ins, inTypes);
        var tout = Allocate(cpu, outs, outTypes.Select(t => (DType?)t).ToArray());
        try { op.Check(new OpCall(cpu, tin, tout, attrs)); return null; }
        catch (ArgumentException e) { return e.Message; }
        finally { foreach (var t in tin.Concat(tout)) t?.Dispose(); }
    }

    private static Tensor[] Allocate(Backend backend, int[]?[] shapes, DType?[] types) =>
        shapes.Select((s, i) => s is null ? null! : types[i] == DType.I32 ? backend.EmptyInt(s) : backend.Empty(s)).ToArray();

    /// <summary>
    /// Runs the op's wrong-shape call on <paramref name="backend"/>: it must throw
    /// <see cref="ArgumentException"/> with exactly the message found on the CPU, and leave its
    /// outputs untouched (the check runs before dispatch).
    /// </summary>
    public static CaseResult RunWrongShape(Backend backend, OpDef op)
    {
        var w = FindWrongShape(op);
        if (w is null) return new CaseResult(op.Name, "wrong shape", backend.Name, false, double.PositiveInfinity, "no single change of one tensor's shape is rejected by the signature");
        var tin = Allocate(backend, w.In, w.InTypes);
        var tout = Allocate(backend, w.Out, w.OutTypes.Select(t => (DType?)t).ToArray());
        try
        {
            const float Sentinel = 7f;
            foreach (var t in tout) t.Fill(Sentinel);
            string? got = null;
            try { op.Run(backend, tin, tout, w.Attrs); }
            catch (ArgumentException e) { got = e.Message; }
            backend.Synchronize();
            string problem = got is null ? "the call was accepted"
                : got != w.Message ? $"message differs from the CPU's: '{got}' vs '{w.Message}'"
                : tout.Any(t => t.ToArray().Any(v => BitConverter.SingleToInt32Bits(v) != BitConverter.SingleToInt32Bits(Sentinel))) ? "an output was written"
                : "";
            return new CaseResult(op.Name, w.Label, backend.Name, problem.Length == 0, 0, problem.Length == 0 ? w.Message : problem);
        }
        catch (Exception e)
        {
            return new CaseResult(op.Name, w.Label, backend.Name, false, double.PositiveInfinity, $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            foreach (var t in tin.Concat(tout)) t?.Dispose();
        }
    }

    /// <summary>Random contents of a case, identical for every backend.</summary>
    public static (float[][] In, float[][] Out) Generate(OpCase c)
    {
        var rng = new Random(c.Seed);
        float[] Gen(TensorSpec? s)
        {
            if (s is null) return null!; // an absent optional input
            int n = 1; foreach (var d in s.Shape) n *= d;
            var a = new float[n];
            if (s.DType == DType.I32)
            {
                var ints = MemoryMarshal.Cast<float, int>(a.AsSpan());
                for (int i = 0; i < n; i++) ints[i] = (int)s.Lo + rng.Next(Math.Max(1, (int)s.Hi - (int)s.Lo));
            }
            else for (int i = 0; i < n; i++) a[i] = s.Lo + (s.Hi - s.Lo) * (float)rng.NextDouble();
            return a;
        }
        var ins = c.In.Select(Gen).ToArray();
        var outs = c.Out.Select(Gen).ToArray();
        c.Prepare?.Invoke(ins);
        return (ins, outs);
    }

    private static double[] ToDouble(float[] a, DType t)
    {
        var d = new double[a.Length];
        if (t == DType.I32) { var ints = MemoryMarshal.Cast<float, int>(a.AsSpan()); for (int i = 0; i < a.Length; i++) d[i] = ints[i]; }
        else for (int i = 0; i < a.Length; i++) d[i] = a[i];
        return d;
    }

    public static CaseResult RunCase(Backend backend, OpDef op, OpCase c)
    {
        var (ins, outs) = Generate(c);
        var tin = new Tensor[ins.Length];
        var tout = new Tensor[outs.Length];
        try
        {
            for (int i = 0; i < ins.Length; i++)
            {
                if (c.In[i] is not TensorSpec spec) continue;
                tin[i] = spec.DType == DType.I32 ? backend.EmptyInt(spec.Shape) : backend.Empty(spec.Shape);
                tin[i].CopyFrom((ReadOnlySpan<float>)ins[i]);
            }
            for (int i = 0; i < outs.Length; i++)
            {
                tout[i] = c.Out[i].DType == DType.I32 ? backend.EmptyInt(c.Out[i].Shape) : backend.Empty(c.Out[i].Shape);
                tout[i].CopyFrom((ReadOnlySpan<float>)outs[i]);
            }
            op.Run(backend, tin, tout, c.Attrs);
            backend.Synchronize();

            var rc = new RefCall
            {
                In = ins.Select((a, i) => a is null ? null! : ToDouble(a, c.In[i]!.DType)).ToArray(),
                InShapes = c.In.Select(s => s?.Shape!).ToArray(),
                Out = outs.Select((a, i) => ToDouble(a, c.Out[i].DType)).ToArray(),
                OutShapes = c.Out.Select(s => s.Shape).ToArray(),
                Attrs = c.Attrs,
            };
            op.Reference!(rc);

            double worst = 0;
            var msgs = new List<string>();
            for (int i = 0; i < outs.Length; i++)
            {
                var got = tout[i].ToArray();
                var want = rc.Out[i];
                if (c.Out[i].DType == DType.I32)
                {
                    var gi = MemoryMarshal.Cast<float, int>(got.AsSpan());
                    int bad = 0;
                    for (int k = 0; k < gi.Length; k++) if (gi[k] != (int)want[k]) bad++;
                    double frac = gi.Length == 0 ? 0 : (double)bad / gi.Length;
                    if (frac > c.IntMismatch) msgs.Add($"out{i}: {bad}/{gi.Length} integers differ");
                }
                else
                {
                    double err = 0, norm = 0;
                    bool nan = false;
                    for (int k = 0; k < got.Length; k++)
                    {
                        if (!float.IsFinite(got[k]) && double.IsFinite(want[k])) nan = true;
                        double d = got[k] - want[k];
                        err += d * d; norm += want[k] * want[k];
                    }
                    double nmse = err / Math.Max(norm, 1e-30);
                    if (nan) { nmse = double.PositiveInfinity; msgs.Add($"out{i}: non-finite value"); }
                    worst = Math.Max(worst, nmse);
                    if (!(nmse <= c.Tolerance)) msgs.Add($"out{i}: nmse {nmse:E2} > {c.Tolerance:E0}");
                }
            }
            return new CaseResult(op.Name, c.Label, backend.Name, msgs.Count == 0, worst, string.Join("; ", msgs));
        }
        catch (Exception e)
        {
            return new CaseResult(op.Name, c.Label, backend.Name, false, double.PositiveInfinity, $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            foreach (var t in tin) t?.Dispose();
            foreach (var t in tout) t?.Dispose();
        }
    }
}
