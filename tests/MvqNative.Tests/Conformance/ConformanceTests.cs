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
