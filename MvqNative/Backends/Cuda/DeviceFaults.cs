// DeviceFaults.cs: how a kernel reports bad input that the CPU twin would throw on. A kernel cannot throw, so it
// records the first fault in a small device word and the host raises it at the next synchronisation it does anyway.
namespace MvqNative.Backends.Cuda;

/// <summary>
/// The fault word of one <see cref="CudaBackend"/>: four ints on the device, [code, a, b, c], zero while no fault
/// happened. A kernel that finds an input the CPU twin would reject claims the word with
/// <c>atomicCAS(&amp;fault[0], 0, code)</c> and, if it won, writes three integers that locate the fault. The
/// word is read with every <see cref="CudaBackend.Download{T}"/> and <see cref="CudaBackend.Synchronize"/> once a
/// kernel that can fault has been launched (one 16-byte copy queued before the wait those calls already do: no
/// extra synchronisation, and nothing inside a training step, which never downloads), then cleared and thrown
/// as <see cref="ArgumentOutOfRangeException"/>, the exception the CPU backend throws for the same input.
/// </summary>
internal sealed class DeviceFaults(CudaBackend backend)
{
    /// <summary>mvq_select_words: [index, instance, J] (native/kernels/mvq.cu).</summary>
    public const int SelectWordsIndex = 1;

    private readonly int[] _host = new int[4];
    private DeviceBuffer? _buffer;
    private ulong _word;

    /// <summary>True once a kernel that can fault was given the word: from then on every wait reads it.</summary>
    public bool Armed => _word != 0;

    /// <summary>The device address of the word, allocated and zeroed on first use (outside any step: the first eager step).</summary>
    public ulong Word
    {
        get
        {
            if (_word != 0) return _word;
            var buffer = backend.Allocate(_host.Length);
            backend.Fill(buffer, 0, _host.Length, 0);
            _buffer = buffer;
            return _word = ((CudaBuffer)buffer).Ptr;
        }
    }

    /// <summary>The host copy the word is read into (pinned by the caller for the copy).</summary>
    internal int[] Host => _host;

    /// <summary>Called after the wait: throws the recorded fault, after clearing the word so the backend stays usable.</summary>
    public void ThrowIfRaised()
    {
        int code = _host[0];
        if (code == 0) return;
        int a = _host[1], b = _host[2], c = _host[3];
        Array.Clear(_host);
        backend.Fill(_buffer!, 0, _host.Length, 0);
        throw new ArgumentOutOfRangeException(null, Describe(code, a, b, c) + " (reported by the device at the next synchronisation)");
    }

    internal static string Describe(int code, int a, int b, int c) => code switch
    {
        SelectWordsIndex => $"mvq_select_words: index {a} of instance {b} outside [0, {c})",
        _ => $"device fault {code} ({a}, {b}, {c})",
    };
}
