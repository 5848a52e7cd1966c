// HandleTable.cs: opaque 64-bit handles for objects given to C callers. A handle is a slot index, the slot's
// generation and a kind tag, never a pointer: a freed handle (generation moved on), a handle of another kind
// or any made-up number is found out and refused, and nothing is dereferenced on the way.
namespace MvqNative.Abi;

/// <summary>A thread-safe table of objects behind handles: bits 0-23 slot + 1, 24-47 generation, 48-63 kind tag.</summary>
internal sealed class HandleTable<T>(ushort tag, string what) where T : class, IDisposable
{
    private const int MaxSlots = (1 << 24) - 2;
    private readonly object _gate = new();
    private readonly List<(uint Generation, T? Item)> _slots = [];
    private readonly Stack<int> _free = new();

    /// <summary>What the handles name, for messages ("model", "prior").</summary>
    public string What { get; } = what;

    public ulong Add(T item)
    {
        lock (_gate)
        {
            int i;
            if (_free.Count > 0) i = _free.Pop();
            else
            {
                if (_slots.Count >= MaxSlots) throw new InvalidOperationException($"too many open {What}s");
                _slots.Add((0, null));
                i = _slots.Count - 1;
            }
            uint gen = (_slots[i].Generation + 1) & 0xFFFFFF;
            if (gen == 0) gen = 1;
            _slots[i] = (gen, item);
            return ((ulong)tag << 48) | ((ulong)gen << 24) | (uint)(i + 1);
        }
    }

    /// <summary>The object behind a live handle, or null with the reason.</summary>
    public T? Get(ulong handle, out string? problem)
    {
        lock (_gate)
        {
            if (!Decode(handle, out int i, out uint gen, out problem)) return null;
            var (g, item) = _slots[i];
            if (g != gen || item is null) { problem = $"{What} handle 0x{handle:x} was freed"; return null; }
            return item;
        }
    }

    /// <summary>Takes the object out of the table (the handle is dead from now on); null with the reason when it is not live.</summary>
    public T? Remove(ulong handle, out string? problem)
    {
        lock (_gate)
        {
            if (!Decode(handle, out int i, out uint gen, out problem)) return null;
            var (g, item) = _slots[i];
            if (g != gen || item is null) { problem = $"{What} handle 0x{handle:x} was already freed"; return null; }
            _slots[i] = (g, null);
            _free.Push(i);
            return item;
        }
    }

    private bool Decode(ulong handle, out int index, out uint gen, out string? problem)
    {
        index = (int)(handle & 0xFFFFFF) - 1;
        gen = (uint)(handle >> 24) & 0xFFFFFF;
        problem = null;
        if (handle == 0) problem = $"{What} handle is 0 (never loaded, or the load failed)";
        else if ((ushort)(handle >> 48) != tag) problem = $"0x{handle:x} is not a {What} handle";
        else if (index < 0 || index >= _slots.Count || gen == 0) problem = $"0x{handle:x} is not a {What} handle of this library";
        return problem is null;
    }
}
