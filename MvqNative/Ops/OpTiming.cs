using System.Diagnostics;

namespace MvqNative.Ops;

/// <summary>
/// Optional wall time per op name, for `mvq bench train --op-times` (finding where a CPU step spends its
/// time). Off by default: OpDef.Run then pays one static bool test. Only meaningful on a synchronous
/// backend (the CPU); on CUDA it would time launches, not kernels. Not thread-safe: ops are issued from
/// one thread (their kernels may fan out internally).
/// </summary>
internal static class OpTiming
{
    private static readonly Dictionary<string, (double Ms, long Calls, double MinMs)> Totals = new();

    /// <summary>True while op times are being collected.</summary>
    public static bool Enabled { get; private set; }

    public static void Start() { Totals.Clear(); Enabled = true; }

    /// <summary>Stops collecting and returns (op, total ms, calls, fastest call in ms) sorted by time, largest first.</summary>
    public static List<(string Op, double Ms, long Calls, double MinMs)> Stop()
    {
        Enabled = false;
        return Totals.Select(kv => (kv.Key, kv.Value.Ms, kv.Value.Calls, kv.Value.MinMs)).OrderByDescending(t => t.Ms).ToList();
    }

    /// <summary>With MVQ_OP_TIMES_SHAPES=1 the rows are per op and input shapes (e.g. one row per convolution layer).</summary>
    private static readonly bool ByShape = Environment.GetEnvironmentVariable("MVQ_OP_TIMES_SHAPES") == "1";

    internal static void Add(OpDef def, in OpCall call, long startTimestamp)
    {
        double ms = Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds;
        string op = def.Name;
        if (ByShape)
        {
            var shapes = new List<string>();
            for (int i = 0; i < Math.Min(2, call.In.Length); i++) if (call.In[i] is { } x) shapes.Add("[" + x.ShapeString + "]");
            op += " " + string.Join(" ", shapes);
        }
        var (t, n, min) = Totals.TryGetValue(op, out var v) ? v : (0, 0, double.MaxValue);
        Totals[op] = (t + ms, n + 1, Math.Min(min, ms));
    }
}
