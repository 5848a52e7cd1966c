using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// Named activation and workspace buffers of one module, allocated once per shape and
/// reused across steps; a new shape frees the old buffer. Disposed with the module.
/// </summary>
internal sealed class Arena : IDisposable
{
    private readonly Backend _backend;
    private readonly Dictionary<string, Tensor> _buffers = new();

    public Arena(Backend backend) => _backend = backend;

    /// <summary>The float buffer <paramref name="name"/> of the given shape (contents undefined).</summary>
    public Tensor Get(string name, params int[] shape) => Get(name, DType.F32, shape);

    public Tensor GetInt(string name, params int[] shape) => Get(name, DType.I32, shape);

    public Tensor Get(string name, DType dtype, int[] shape)
    {
        if (_buffers.TryGetValue(name, out var t))
        {
            if (t.DType == dtype && t.Shape.AsSpan().SequenceEqual(shape)) return t;
            // A new shape or type: free the old buffer and allocate one of the new size.
            t.Dispose();
        }
        t = dtype == DType.F32 ? _backend.Empty(shape) : _backend.EmptyInt(shape);
        _buffers[name] = t;
        return t;
    }

    public long Bytes => _buffers.Values.Sum(t => (long)t.Length * 4);

    public void Dispose()
    {
        foreach (var t in _buffers.Values) t.Dispose();
        _buffers.Clear();
    }
}
