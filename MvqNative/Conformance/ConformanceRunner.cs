using System.Runtime.InteropServices;
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Conformance;

/// <summary>Result of one case on one backend.</summary>
public sealed record CaseResult(string Op, string Case, string Device, bool Passed, double WorstNmse, string Message);

/// <summary>Summary of a conformance run (the body of `mvq selftest --json`).</summary>
public sealed record ConformanceReport(string Device, int Ops, int Cases, int Passed, int Failed, IReadOnlyList<string> Uncovered, IReadOnlyList<CaseResult> Results);

/// <summary>
/// Runs every registered op's cases on a backend against the float64 reference.
/// An op is "uncovered" when it has no case, or when the backend lacks its implementation.
/// </summary>
public static class ConformanceRunner
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
        }
        int passed = results.Count(r => r.Passed);
        return new ConformanceReport(backend.Name, ops, results.Count, passed, results.Count - passed, uncovered, results);
    }

    /// <summary>Random contents of a case, identical for every backend.</summary>
    public static (float[][] In, float[][] Out) Generate(OpCase c)
    {
        var rng = new Random(c.Seed);
        float[] Gen(TensorSpec s)
        {
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
                tin[i] = c.In[i].DType == DType.I32 ? backend.EmptyInt(c.In[i].Shape) : backend.Empty(c.In[i].Shape);
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
                In = ins.Select((a, i) => ToDouble(a, c.In[i].DType)).ToArray(),
                InShapes = c.In.Select(s => s.Shape).ToArray(),
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
