using MvqNative.Backends;
using MvqNative.Conformance;
using MvqNative.Ops;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Conformance;

/// <summary>The conformance table: every registered op, every case, on every backend available here.</summary>
public class ConformanceTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Cases() =>
        from device in TestDevices.All
        from op in OpRegistry.All
        from c in op.Cases
        select new object[] { device, op.Name, c.Label };

    [Theory]
    [MemberData(nameof(Cases))]
    public void OpMatchesFloat64Reference(string device, string opName, string caseLabel)
    {
        var backend = TestDevices.Get(device);
        var op = OpRegistry.Get(opName);
        Assert.True(op.Supports(backend), $"{opName} has no implementation for {device}");
        var c = op.Cases.Single(x => x.Label == caseLabel);
        var r = ConformanceRunner.RunCase(backend, op, c);
        output.WriteLine($"{device} {opName} {caseLabel}: nmse {r.WorstNmse:E2} {r.Message}");
        Assert.True(r.Passed, $"{device} {opName} [{caseLabel}]: {r.Message}");
    }

    public static IEnumerable<object[]> DevicesAndOps() =>
        from device in TestDevices.All
        from op in OpRegistry.All
        select new object[] { device, op.Name };

    /// <summary>
    /// The wrong-shape row of the table: one tensor of the op's first case with a spoiled shape
    /// fails in the signature check, before dispatch, with the same message as on the CPU (the
    /// expected text is found on CPU tensors without running a kernel), and writes nothing.
    /// </summary>
    [Theory]
    [MemberData(nameof(DevicesAndOps))]
    public void WrongShapeFailsBeforeDispatchWithTheSameMessage(string device, string opName)
    {
        var backend = TestDevices.Get(device);
        var op = OpRegistry.Get(opName);
        var r = ConformanceRunner.RunWrongShape(backend, op);
        output.WriteLine($"{device} {opName} [{r.Case}]: {r.Message}");
        Assert.True(r.Passed, $"{device} {opName} [{r.Case}]: {r.Message}");
        Assert.StartsWith($"op {opName}: ", r.Message);
    }

    [Fact]
    public void EveryRegisteredOpDeclaresItsSignature()
    {
        foreach (var op in OpRegistry.All)
        {
            Assert.True(op.Inputs.Count > 0 && op.Outputs.Count > 0, $"{op.Name}: no named inputs/outputs");
            Assert.True(op.Shapes is not null, $"{op.Name}: no shape rule");
            Assert.Equal(op.Inputs.Count + op.Outputs.Count, op.Inputs.Concat(op.Outputs).Select(a => a.Name).Distinct().Count());
            Assert.All(op.Inputs, a => Assert.Equal(Access.Read, a.Access));
            Assert.All(op.Outputs, a => Assert.NotEqual(Access.Read, a.Access));
            // Repeated arguments (a tensor list) come last among the inputs and among the outputs.
            Assert.True(op.Inputs.SkipWhile(a => !a.Repeated).All(a => a.Repeated), $"{op.Name}: a repeated input before a fixed one");
            Assert.True(op.Outputs.SkipWhile(a => !a.Repeated).All(a => a.Repeated), $"{op.Name}: a repeated output before a fixed one");
            foreach (var c in op.Cases)
            {
                Assert.True(op.Groups(c.In.Length, c.Out.Length) >= 1, $"{op.Name} [{c.Label}]: case arity differs from the signature");
                for (int i = 0; i < c.In.Length; i++)
                    Assert.True(c.In[i] is null ? op.ArgAt(true, i).Optional : c.In[i]!.DType == op.ArgAt(true, i).DType, $"{op.Name} [{c.Label}]: input {op.ArgName(true, i)}");
                for (int i = 0; i < c.Out.Length; i++)
                    Assert.True(c.Out[i].DType == op.ArgAt(false, i).DType, $"{op.Name} [{c.Label}]: output {op.ArgName(false, i)}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void ArityTypeAndAttributeErrorsNameTheOpAndTheArgument(string device)
    {
        var b = TestDevices.Get(device);
        using var x = b.Zeros(3, 4); using var w = b.Zeros(5, 4); using var bias = b.Zeros(5); using var y = b.Zeros(3, 5);
        using var idx = b.EmptyInt(3);
        var e = Assert.Throws<ArgumentException>(() => LinearOps.Forward.Run(b, [x, w], [y]));
        Assert.Equal("op linear_forward: takes 3 inputs and 1 outputs (linear_forward(x, w, b) -> y =), got 2 and 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => LinearOps.Forward.Run(b, [x, w, bias], [y], new AxpbyAttrs(1, 1)));
        Assert.Equal("op linear_forward: takes no attributes, got AxpbyAttrs", e.Message);
        e = Assert.Throws<ArgumentException>(() => GatherOps.GatherRows.Run(b, [x, x.View(Tensors.DType.F32).Reshape(12)], [y]));
        Assert.Equal("op gather_rows: input idx must be I32, got F32 [12]", e.Message);
        e = Assert.Throws<ArgumentException>(() => LinearOps.Forward.Run(b, [x, w, bias], [idx]));
        Assert.Equal("op linear_forward: output y must be F32, got I32 [3]", e.Message);
        e = Assert.Throws<ArgumentException>(() => LinearOps.Forward.Run(b, [x, bias.Reshape(5, 1), bias], [y]));
        Assert.Equal("op linear_forward: w [5,1] takes 1 features, x [3,4] has 4", e.Message);
        Assert.Throws<ArgumentException>(() => ConvOps.Forward.Run(b, [x, w, bias], [y]));
    }

    public static IEnumerable<object[]> Devices() => TestDevices.All.Select(d => new object[] { d });

    [Fact]
    public void EveryRegisteredOpHasACaseAndAReference()
    {
        var missing = OpRegistry.All.Where(o => o.Cases.Count == 0 || o.Reference is null).Select(o => o.Name).ToList();
        Assert.True(missing.Count == 0, "ops without a conformance case or reference: " + string.Join(", ", missing));
    }

    [Fact]
    public void CaseLabelsAreUniquePerOp()
    {
        foreach (var op in OpRegistry.All)
            Assert.Equal(op.Cases.Count, op.Cases.Select(c => c.Label).Distinct().Count());
    }
}
