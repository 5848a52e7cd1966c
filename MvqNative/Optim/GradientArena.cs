// GradientArena.cs: the gradients of an optimiser's parameters in one buffer, so that zeroing them is one fill
// (one memset node in a captured CUDA step instead of one per parameter).
using MvqNative.Backends;
using MvqNative.Backends.Cuda;
using MvqNative.Layers;
using MvqNative.Tensors;

namespace MvqNative.Optim;

/// <summary>
/// One zeroed buffer holding the gradient of every given parameter at a 64-element (256-byte) aligned offset, the
/// alignment of a cuMemAlloc allocation, so kernels see the same alignment as before. Each parameter's
/// <see cref="Parameter.Grad"/> becomes a view into it (its old contents are copied in, the old tensor freed). On the
/// emulator every view is registered as a sub-region, so memcheck still catches a kernel that runs past one gradient
/// into the next. Shared ownership: the optimiser and each parameter hold a reference; the last release frees it.
/// </summary>
internal sealed class GradientArena
{
    private const int Align = 64;
    private readonly Tensor _all;
    private readonly List<ulong> _regions = [];
    private int _refs = 1;   // the creator's (the optimiser's)

    public GradientArena(Backend backend, IReadOnlyList<Parameter> parameters)
    {
        long total = 0;
        var offsets = new long[parameters.Count];
        for (int i = 0; i < parameters.Count; i++)
        {
            offsets[i] = total;
            total += (parameters[i].Grad.Length + Align - 1) / Align * Align;
        }
        if (total > int.MaxValue) throw new InvalidOperationException($"gradients of {total} floats do not fit one tensor");
        _all = backend.Zeros((int)Math.Max(total, 1));
        var emu = backend is CudaBackend { IsEmulator: true };
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            var view = _all.Slice0((int)offsets[i], p.Grad.Length).Reshape(p.Grad.Shape);
            view.CopyFrom(p.Grad);
            if (emu && view.Length > 0)
            {
                ulong ptr = CudaBackend.Ptr(view);
                Bindings.MvqEmu.RegisterRegion(ptr, view.Length * 4L, $"gradient of {p.Name}");
                _regions.Add(ptr);
            }
            _refs++;
            p.UseArenaGradient(view, this);
        }
    }

    /// <summary>Zeroes every gradient: one fill over the whole buffer.</summary>
    public void Zero() => _all.Zero();

    /// <summary>Drops one reference; the last one frees the buffer.</summary>
    public void Release()
    {
        if (--_refs != 0) return;
        foreach (var r in _regions) Bindings.MvqEmu.TryUnregisterRegion(r);
        _all.Dispose();
    }
}
