using System.Collections.Concurrent;

namespace MvqNative.Ops;

/// <summary>
/// Every op of the library. Op families register themselves from a module initializer in
/// their own file, so adding an op never edits a shared list. Dispatch
/// (<see cref="OpDef.Run"/>), `supports` and the test coverage report all derive from here.
/// </summary>
internal static class OpRegistry
{
    private static readonly ConcurrentDictionary<string, OpDef> Ops = new();

    /// <summary>Registers ops; a duplicate name is a programming error.</summary>
    public static void Add(params OpDef[] ops)
    {
        foreach (var op in ops)
            if (!Ops.TryAdd(op.Name, op)) throw new InvalidOperationException($"op {op.Name} registered twice");
    }

    public static OpDef Get(string name) =>
        Ops.TryGetValue(name, out var op) ? op : throw new KeyNotFoundException($"no op named {name}");

    public static bool TryGet(string name, out OpDef op) => Ops.TryGetValue(name, out op!);

    /// <summary>All ops, sorted by name.</summary>
    public static IReadOnlyList<OpDef> All => Ops.Values.OrderBy(o => o.Name, StringComparer.Ordinal).ToList();
}
