// ConfigChecksTests.cs: the parameter count computed from a config alone (used to refuse a checkpoint whose config
// claims more than its file holds, and for the memory estimate) equals what the built model has.
using MvqNative.Backends.Cpu;
using MvqNative.Models;
using Xunit;

namespace MvqNative.Tests.Hostile;

public sealed class ConfigChecksTests
{
    public static TheoryData<string> PresetNames() => new(Presets.Names);

    [Theory]
    [MemberData(nameof(PresetNames))]
    public void ParameterCountFromTheConfigMatchesTheModel(string preset)
    {
        var cfg = Presets.Get(preset).Model;
        using var model = new Autoencoder(CpuBackend.Instance, cfg, 1);
        long actual = model.Parameters().Sum(p => (long)p.Value.Length);
        Assert.Equal(actual, ConfigChecks.ParameterCount(cfg));
    }

    [Fact]
    public void TheMemoryEstimateGrowsWithTheBatchAndRefusesPastTheLimit()
    {
        var cfg = Presets.Get("fmnist-vq").Model;
        Assert.True(ConfigChecks.EstimateBytes(cfg, 256, training: true) > ConfigChecks.EstimateBytes(cfg, 1, training: true));
        ConfigChecks.CheckMemory(cfg, 64, training: true, "preset");
        var e = Assert.Throws<MvqInputException>(() => ConfigChecks.CheckMemory(cfg, 1_000_000, training: true, "preset"));
        Assert.Contains("MVQ_MAX_MODEL_MB", e.Message);
    }
}
