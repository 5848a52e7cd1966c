// `mvq selftest`: the JSON report's shape, full coverage on the CPU, no failures on the CUDA device of the run, --list.
using System.Text.Json;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Cli;

[Collection("cli")]
public sealed class SelftestCliTests(ITestOutputHelper output)
{
    private static JsonElement Parse(string stdout)
    {
        using var doc = JsonDocument.Parse(stdout);
        return doc.RootElement.Clone();
    }

    /// <summary>Checks the fields every report has, and that the counts agree with the per-case results.</summary>
    private static void AssertShape(JsonElement r, string device)
    {
        Assert.Equal(device, r.GetProperty("device").GetString());
        int cases = r.GetProperty("cases").GetInt32(), passed = r.GetProperty("passed").GetInt32(), failed = r.GetProperty("failed").GetInt32();
        Assert.True(r.GetProperty("ops").GetInt32() > 0);
        Assert.Equal(JsonValueKind.Array, r.GetProperty("uncovered").ValueKind);
        var results = r.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(cases, results.Count);
        Assert.Equal(cases, passed + failed);
        Assert.Equal(passed, results.Count(x => x.GetProperty("passed").GetBoolean()));
        foreach (var x in results)
        {
            Assert.False(string.IsNullOrEmpty(x.GetProperty("op").GetString()));
            Assert.False(string.IsNullOrEmpty(x.GetProperty("case").GetString()));
        }
    }

    [Fact]
    public void CpuPassesEverythingWithNothingUncovered()
    {
        var (code, stdout, err) = CliHarness.Run("selftest", "--device", "cpu", "--json");
        var r = Parse(stdout);
        AssertShape(r, "cpu");
        foreach (var x in r.GetProperty("results").EnumerateArray().Where(x => !x.GetProperty("passed").GetBoolean()))
            output.WriteLine($"FAIL {x.GetProperty("op")} / {x.GetProperty("case")}: {x.GetProperty("message")}");
        Assert.Equal(0, r.GetProperty("failed").GetInt32());
        Assert.Empty(r.GetProperty("uncovered").EnumerateArray());
        Assert.True(code == 0, err);
        Assert.True(r.GetProperty("cases").GetInt32() >= r.GetProperty("ops").GetInt32(), "every op has at least one case");
    }

    [Fact]
    public void FilterKeepsOnlyMatchingOps()
    {
        var (code, stdout, _) = CliHarness.Run("selftest", "--device", "cpu", "--json", "--filter", "vq_lookup");
        var r = Parse(stdout);
        Assert.Equal(0, code);
        Assert.Equal(1, r.GetProperty("ops").GetInt32());
        Assert.All(r.GetProperty("results").EnumerateArray(), x => Assert.Equal("vq_lookup", x.GetProperty("op").GetString()));
    }

    [Fact]
    public void ListShowsEveryOpsSignatureAndMath()
    {
        var (code, stdout, err) = CliHarness.Run("selftest", "--list", "--json");
        Assert.True(code == 0, err);
        var ops = Parse(stdout).EnumerateArray().ToList();
        Assert.Equal(Ops.OpRegistry.All.Select(o => o.Name), ops.Select(o => o.GetProperty("op").GetString()));
        Assert.All(ops, o => Assert.False(string.IsNullOrWhiteSpace(o.GetProperty("math").GetString()), o.GetProperty("op").GetString()));
        var conv = ops.Single(o => o.GetProperty("op").GetString() == "conv2d_forward");
        Assert.Equal("conv2d_forward(x, w, b) -> y =", conv.GetProperty("signature").GetString());
        Assert.Equal("conv2d_backward", conv.GetProperty("gradient").GetString());
    }

    [Fact]
    public void FilterMatchingNothingIsAnError()
    {
        var (code, _, err) = CliHarness.Run("selftest", "--device", "cpu", "--filter", "no_such_op_anywhere");
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", err);
    }

    /// <summary>
    /// On cuda-emu (or cuda with MVQ_TEST_CUDA=1): every op is covered, no case fails, exit code 0.
    /// </summary>
    [Fact]
    public void CudaDeviceRunsWithoutFailures()
    {
        var device = TestDevices.Cuda.FirstOrDefault();
        if (device is null)
        {
            Assert.True(TestDevices.EmulatorSkipped, "no CUDA device here: only with the opt-out MVQ_SKIP_EMU=1");
            output.WriteLine("no CUDA device or emulator here: nothing to run (CI sets MVQ_REQUIRE_EMU=1)");
            return;
        }
        var (code, stdout, err) = CliHarness.Run("selftest", "--device", device, "--json");
        Assert.True(stdout.Length > 0, err);
        var r = Parse(stdout);
        AssertShape(r, device);
        foreach (var x in r.GetProperty("results").EnumerateArray().Where(x => !x.GetProperty("passed").GetBoolean()))
            output.WriteLine($"FAIL {x.GetProperty("op")} / {x.GetProperty("case")}: {x.GetProperty("message")}");
        Assert.Equal(0, r.GetProperty("failed").GetInt32());
        Assert.True(r.GetProperty("cases").GetInt32() > 0, "at least one op has a CUDA kernel");
        var uncovered = r.GetProperty("uncovered").EnumerateArray().Select(u => u.GetString()).ToList();
        foreach (var u in uncovered) output.WriteLine("uncovered: " + u);
        Assert.Empty(uncovered);
        Assert.Equal(0, code);
    }
}
