// Every registered op has a CUDA implementation (no device needed: it checks the registry).
using MvqNative.Ops;
using Xunit;

namespace MvqNative.Tests.Cuda;

public sealed class CudaCoverageTests
{
    [Fact]
    public void EveryRegisteredOpHasACudaImplementation()
    {
        var all = OpRegistry.All;
        Assert.NotEmpty(all);
        var missing = all.Where(o => o.Cuda is null).Select(o => o.Name).ToList();
        Assert.True(missing.Count == 0, "ops without a CUDA implementation: " + string.Join(", ", missing));
    }
}
