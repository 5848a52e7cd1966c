// Registry-driven gradient checks. For every op whose GradSpec is smooth, on every conformance
// case of that op and every backend: (a) the backward op's float64 reference against central
// differences of the forward op's float64 reference (L = sum over the seeded outputs of dy * y),
// at sampled coordinates of every differentiated input; (b) the backend's backward (float32)
// against that reference backward, over every element. Outputs the backward writes (=) start as
// NaN and outputs it accumulates (+=) start random (the start is subtracted), so a backward that
// reads a written output or overwrites an accumulated one fails. Piecewise-constant ops declare
// GradSpec.ClosedForm and are checked by hand-derived tests instead (VqGradTests).
using System.Runtime.InteropServices;
using MvqNative.Backends;
using MvqNative.Conformance;
using MvqNative.Ops;
using MvqNative.Tensors;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Gradients;

public sealed class GradientCheckTests(ITestOutputHelper output)
{
    /// <summary>Central-difference step (inputs are O(1); the reference is float64).</summary>
    private const double H = 1e-4;
    /// <summary>Coordinates per differentiated input whose numeric gradient is computed.</summary>
    private const int Samples = 12;
    /// <summary>Reference backward against central differences of the reference forward: float64 on both sides, O(H^2) truncation.</summary>
    private const double RefTolerance = 1e-6;

    public static IEnumerable<object[]> Cases() =>
        from d in TestDevices.All
        from op in OpRegistry.All
        where op.Grad is { ClosedForm: null }
        from c in op.Cases
        select new object[] { d, op.Name, c.Label };

    [Fact]
    public void EveryGradSpecNamesARegisteredBackwardWithMatchingArity()
    {
        var problems = new List<string>();
        int smooth = 0;
        foreach (var op in OpRegistry.All)
        {
            if (op.Grad is not { } g) continue;
            if (g.ClosedForm is null) smooth++;
            if (g.Fused is { } f)
            {
                if (f.Value >= op.Outputs.Count || f.Gradient >= op.Outputs.Count || f.Input >= op.Inputs.Count) problems.Add($"{op.Name}: fused indices outside the signature");
                continue;
            }
            if (g.Op is null || !OpRegistry.TryGet(g.Op, out var bw)) { problems.Add($"{op.Name}: backward op {g.Op} is not registered"); continue; }
            if (g.ClosedForm is not null) continue;
            if (bw.Inputs.Count != g.Inputs.Count) problems.Add($"{op.Name}: {g.Inputs.Count} backward inputs declared, {bw.Name} takes {bw.Inputs.Count}");
            if (bw.Outputs.Count != g.Of.Count) problems.Add($"{op.Name}: {g.Of.Count} gradients declared, {bw.Name} has {bw.Outputs.Count} outputs");
            foreach (var a in g.Inputs)
                if (a.Index >= (a.From == GradArg.Source.Input ? op.Inputs.Count : op.Outputs.Count)) problems.Add($"{op.Name}: {a} outside the forward signature");
            foreach (var i in g.Of)
                if (i >= op.Inputs.Count || op.Inputs[i].DType != DType.F32) problems.Add($"{op.Name}: gradient of input {i}, which is not a float input");
            foreach (var s in g.Seeds)
                if (s >= op.Outputs.Count) problems.Add($"{op.Name}: seed {s} outside the outputs");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(smooth >= 10, $"only {smooth} smooth gradients declared");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BackwardMatchesCentralDifferences(string device, string opName, string caseLabel)
    {
        var backend = TestDevices.Get(device);
        var op = OpRegistry.Get(opName);
        var spec = op.Grad!;
        var c = op.Cases.Single(x => x.Label == caseLabel);
        var (insF, _) = ConformanceRunner.Generate(c);
        // Inputs as doubles that are exact floats, so that float and double runs see the same values.
        var ins = insF.Select((a, i) => a is null ? null! : ToDouble(a, c.In[i]!.DType)).ToArray();
        spec.Prepare?.Invoke(ins);
        for (int i = 0; i < ins.Length; i++)
            if (ins[i] is not null && c.In[i]!.DType == DType.F32)
                for (int k = 0; k < ins[i].Length; k++) ins[i][k] = (float)ins[i][k];
        var inShapes = c.In.Select(s => s?.Shape!).ToArray();
        var outShapes = c.Out.Select(s => s.Shape).ToArray();
        var rng = new Random(c.Seed + 1);

        var fwd = RefRun(op, ins, inShapes, outShapes, c.Attrs, outShapes.Select(s => new double[Count(s)]).ToArray());
        double[][] seeds = spec.Seeds.Select(s => RandFloats(rng, fwd[s].Length)).ToArray();
        double Objective()
        {
            var y = RefRun(op, ins, inShapes, outShapes, c.Attrs, outShapes.Select(s => new double[Count(s)]).ToArray());
            if (spec.Fused is { } f) return y[f.Value][0];
            double l = 0;
            for (int k = 0; k < spec.Seeds.Count; k++)
                for (int i = 0; i < seeds[k].Length; i++) l += seeds[k][i] * y[spec.Seeds[k]][i];
            return l;
        }

        // The gradients: per differentiated input, the reference's and the backend's.
        int[] wrt; double[][] refGrad, devGrad;
        if (spec.Fused is { } fused)
        {
            wrt = [fused.Input];
            refGrad = [fwd[fused.Gradient]];
            devGrad = [DeviceRun(backend, op, ins, inShapes, c.In.Select(s => s?.DType).ToArray(), outShapes, c.Attrs, [.. op.Outputs.Select(a => a.Access)], rng)[fused.Gradient]];
        }
        else
        {
            var bw = OpRegistry.Get(spec.Op!);
            object? attrs = spec.Attrs is null ? c.Attrs : spec.Attrs(c.Attrs);
            // The reference backward gets the forward's saved outputs in float64; the backend gets them
            // rounded to float, as its own forward would hand them over.
            var bIn = spec.Inputs.Select(a => a.From switch
            {
                GradArg.Source.Input => ins[a.Index],
                GradArg.Source.Output => fwd[a.Index],
                _ => seeds[spec.Seeds.ToList().IndexOf(a.Index)],
            }).ToArray();
            var bInShapes = spec.Inputs.Select(a => a.From == GradArg.Source.Input ? inShapes[a.Index] : outShapes[a.Index]).ToArray();
            var bInTypes = spec.Inputs.Select(a => (DType?)(a.From == GradArg.Source.Input ? c.In[a.Index]!.DType : c.Out[a.Index].DType)).ToArray();
            var bOutShapes = spec.Of.Select(i => inShapes[i]).ToArray();
            var access = bw.Outputs.Select(a => a.Access).ToArray();
            var init = Starts(bOutShapes, access, rng);
            var r = RefRun(bw, bIn, bInShapes, bOutShapes, attrs, init.Select(a => (double[])a.Clone()).ToArray());
            refGrad = r.Select((g, k) => Minus(g, init[k], access[k])).ToArray();
            var bInDev = bIn.Select((a, i) => bInTypes[i] == DType.I32 ? a : a?.Select(v => (double)(float)v).ToArray()!).ToArray();
            devGrad = DeviceRun(backend, bw, bInDev, bInShapes, bInTypes, bOutShapes, attrs, access, rng);
            wrt = [.. spec.Of];
        }

        for (int k = 0; k < wrt.Length; k++)
        {
            string what = spec.Fused is null ? $"d{op.Inputs[wrt[k]].Name}" : $"d{op.Outputs[spec.Fused.Value.Value].Name}/d{op.Inputs[wrt[k]].Name}";
            var x = ins[wrt[k]];
            // (a) the reference backward against central differences at sampled coordinates.
            var at = Enumerable.Range(0, x.Length).OrderBy(_ => rng.Next()).Take(Samples).ToArray();
            var num = new double[at.Length]; var got = new double[at.Length];
            for (int j = 0; j < at.Length; j++)
            {
                double keep = x[at[j]];
                x[at[j]] = keep + H; double up = Objective();
                x[at[j]] = keep - H; double down = Objective();
                x[at[j]] = keep;
                num[j] = (up - down) / (2 * H);
                got[j] = refGrad[k][at[j]];
            }
            double e1 = RelErr(num, got);
            // (b) the backend against the reference backward, every element.
            double e2 = RelErr(refGrad[k], devGrad[k]);
            output.WriteLine($"{device} {opName} [{caseLabel}] {what}: reference vs differences {e1:E2}, {device} vs reference {e2:E2}");
            Assert.True(e1 <= RefTolerance, $"{opName} [{caseLabel}] {what}: reference backward vs central differences {e1:E2} > {RefTolerance:E0}");
            Assert.True(devGrad[k].All(double.IsFinite), $"{opName} [{caseLabel}] {what}: non-finite value on {device} (an output left unwritten?)");
            Assert.True(e2 <= spec.Tolerance, $"{opName} [{caseLabel}] {what}: {device} vs float64 reference {e2:E2} > {spec.Tolerance:E0}");
        }
    }

    private static int Count(int[] shape) { int n = 1; foreach (var d in shape) n *= d; return n; }

    private static double[] RandFloats(Random rng, int n)
    {
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    private static double[] ToDouble(float[] a, DType t)
    {
        var d = new double[a.Length];
        if (t == DType.I32) { var ints = MemoryMarshal.Cast<float, int>(a.AsSpan()); for (int i = 0; i < a.Length; i++) d[i] = ints[i]; }
        else for (int i = 0; i < a.Length; i++) d[i] = a[i];
        return d;
    }

    /// <summary>Starting contents of outputs: NaN for written ones, random for accumulated (and updated) ones.</summary>
    private static double[][] Starts(int[][] shapes, Access[] access, Random rng) =>
        shapes.Select((s, k) => access[k] == Access.Write ? Enumerable.Repeat(double.NaN, Count(s)).ToArray() : RandFloats(rng, Count(s))).ToArray();

    private static double[] Minus(double[] got, double[] start, Access access) =>
        access == Access.Write ? got : got.Select((v, i) => v - start[i]).ToArray();

    private static double[][] RefRun(OpDef op, double[][] ins, int[][] inShapes, int[][] outShapes, object? attrs, double[][] outs)
    {
        var rc = new RefCall { In = ins, InShapes = inShapes, Out = outs, OutShapes = outShapes, Attrs = attrs };
        op.Reference!(rc);
        return rc.Out;
    }

    /// <summary>Runs <paramref name="op"/> on the backend (float32 tensors); returns its outputs minus their starts.</summary>
    private static double[][] DeviceRun(Backend b, OpDef op, double[][] ins, int[][] inShapes, DType?[] inTypes, int[][] outShapes, object? attrs, Access[] access, Random rng)
    {
        var start = Starts(outShapes, access, rng);
        var tin = new Tensor[ins.Length];
        var tout = new Tensor[outShapes.Length];
        try
        {
            for (int i = 0; i < ins.Length; i++)
            {
                if (ins[i] is null) continue;
                if (inTypes[i] == DType.I32) tin[i] = b.FromArray(ins[i].Select(v => (int)v).ToArray(), inShapes[i]);
                else tin[i] = b.FromArray(ins[i].Select(v => (float)v).ToArray(), inShapes[i]);
            }
            for (int k = 0; k < outShapes.Length; k++) tout[k] = b.FromArray(start[k].Select(v => (float)v).ToArray(), outShapes[k]);
            op.Run(b, tin, tout, attrs);
            return tout.Select((t, k) => Minus(t.ToArray().Select(v => (double)v).ToArray(), start[k].Select(v => (double)(float)v).ToArray(), access[k])).ToArray();
        }
        finally
        {
            foreach (var t in tin) t?.Dispose();
            foreach (var t in tout) t?.Dispose();
        }
    }

    /// <summary>||got - want|| / ||want|| (absolute below a norm of 1e-6); NaN gives infinity.</summary>
    private static double RelErr(double[] want, double[] got)
    {
        double err = 0, norm = 0;
        for (int i = 0; i < want.Length; i++)
        {
            double d = got[i] - want[i];
            if (double.IsNaN(d)) return double.PositiveInfinity;
            err += d * d; norm += want[i] * want[i];
        }
        return Math.Sqrt(err) / Math.Max(Math.Sqrt(norm), 1e-6);
    }
}
