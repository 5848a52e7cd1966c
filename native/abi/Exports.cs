// Exports.cs: the mvq_* C functions (native/include/mvq.h documents each). Every entry point catches everything:
// no exception ever crosses into C. A failure returns a status code and leaves a one-line message for
// mvq_last_error() on the calling thread; output buffers are written only by calls that return MVQ_OK.
using System.Runtime.InteropServices;
using System.Text;

namespace MvqNative.Abi;

/// <summary>Status codes of mvq.h.</summary>
public enum MvqStatus
{
    /// <summary>Success.</summary>
    Ok = 0,
    /// <summary>A required pointer is NULL.</summary>
    Null = 1,
    /// <summary>A count, size or option is out of range.</summary>
    Argument = 2,
    /// <summary>The image shape or code length given is not the model's.</summary>
    Shape = 3,
    /// <summary>An output buffer is too small.</summary>
    Buffer = 4,
    /// <summary>A handle is 0, freed, of another kind, or not from this library.</summary>
    Handle = 5,
    /// <summary>A file is missing, corrupt, or of the wrong kind.</summary>
    Input = 6,
    /// <summary>The device cannot be opened (or is unknown).</summary>
    Device = 7,
    /// <summary>A bug in the library: the message names the exception.</summary>
    Internal = 8,
}

/// <summary>Sampling settings of mvq_sample (struct mvq_sample_options in mvq.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SampleOptions
{
    /// <summary>Softmax temperature, &gt; 0.</summary>
    public float Temperature;
    /// <summary>Keep the k most probable tokens (0: all).</summary>
    public int TopK;
    /// <summary>Probability mass kept, in (0, 1].</summary>
    public float TopP;
    /// <summary>Seed of the draws.</summary>
    public int Seed;
    /// <summary>MVQ: nonzero decodes with a fresh random mask per image.</summary>
    public int RandomMasks;
    /// <summary>Sequences decoded together (0: 64).</summary>
    public int Batch;
}

/// <summary>The exported functions.</summary>
public static unsafe class Exports
{
    /// <summary>Version of the ABI in mvq.h (MVQ_ABI_VERSION).</summary>
    public const int AbiVersion = 1;

    private static readonly HandleTable<MvqModel> Models = new(0x4D51, "model");   // 'MQ'
    private static readonly HandleTable<MvqPrior> Priors = new(0x5052, "prior");   // 'PR'
    private static readonly Dictionary<MvqPrior, ulong> PriorOwner = [];

    [ThreadStatic] private static byte[]? _lastError;
    [ThreadStatic] private static GCHandle _lastErrorPin;

    [UnmanagedCallersOnly(EntryPoint = "mvq_abi_version")]
    private static int MvqAbiVersion() => AbiVersion;

    [UnmanagedCallersOnly(EntryPoint = "mvq_version")]
    private static byte* MvqVersion() => Version;

    // Allocated once, kept for the life of the process.
    private static readonly byte* Version = Utf8Z($"MvqNative {typeof(MvqModel).Assembly.GetName().Version?.ToString(3) ?? "0.0.0"} (C ABI {AbiVersion})");

    private static byte* Utf8Z(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s + "\0");
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        return p;
    }

    [UnmanagedCallersOnly(EntryPoint = "mvq_last_error")]
    private static byte* MvqLastError()
    {
        if (_lastError is null) SetError("");
        return (byte*)_lastErrorPin.AddrOfPinnedObject();
    }

    [UnmanagedCallersOnly(EntryPoint = "mvq_load")]
    private static int MvqLoad(byte* path, byte* device, ulong* model) => Guard(() =>
    {
        if (model == null) return Fail(MvqStatus.Null, "mvq_load: model (the output handle) is NULL");
        *model = 0;
        if (path == null) return Fail(MvqStatus.Null, "mvq_load: path is NULL");
        string p = Utf8(path), d = device == null ? "cpu" : Utf8(device);
        var m = MvqModel.Load(p, d);
        try { *model = Models.Add(m); }
        catch { m.Dispose(); throw; }
        return Ok();
    });

    [UnmanagedCallersOnly(EntryPoint = "mvq_free")]
    private static int MvqFree(ulong model) => Guard(() =>
    {
        var m = Models.Remove(model, out var problem);
        if (m is null) return Fail(MvqStatus.Handle, "mvq_free: " + problem);
        m.Dispose();
        return Ok();
    });

    [UnmanagedCallersOnly(EntryPoint = "mvq_model_info")]
    private static int MvqModelInfo(ulong model, int* channels, int* height, int* width, int* codeLength) => Guard(() =>
    {
        var m = Models.Get(model, out var problem);
        if (m is null) return Fail(MvqStatus.Handle, "mvq_model_info: " + problem);
        if (channels != null) *channels = m.Channels;
        if (height != null) *height = m.Height;
        if (width != null) *width = m.Width;
        if (codeLength != null) *codeLength = m.CodeLength;
        return Ok();
    });

    [UnmanagedCallersOnly(EntryPoint = "mvq_encode")]
    private static int MvqEncode(ulong model, float* images, long count, int channels, int height, int width, int* codes, long codesCapacity) => Guard(() =>
    {
        const string fn = "mvq_encode";
        var m = Models.Get(model, out var problem);
        if (m is null) return Fail(MvqStatus.Handle, $"{fn}: {problem}");
        var s = CheckImages(fn, m, images, count, channels, height, width, out long nIn);
        if (s != MvqStatus.Ok) return (int)s;
        s = CheckOut(fn, "codes", codes, codesCapacity, count * m.CodeLength, "ints");
        if (s != MvqStatus.Ok) return (int)s;
        m.Encode(new ReadOnlySpan<float>(images, (int)nIn), new Span<int>(codes, (int)(count * m.CodeLength)));
        return Ok();
    });

    [UnmanagedCallersOnly(EntryPoint = "mvq_reconstruct")]
    private static int MvqReconstruct(ulong model, float* images, long count, int channels, int height, int width, float* output, long outputCapacity) => Guard(() =>
    {
        const string fn = "mvq_reconstruct";
        var m = Models.Get(model, out var problem);
        if (m is null) return Fail(MvqStatus.Handle, $"{fn}: {problem}");
        var s = CheckImages(fn, m, images, count, channels, height, width, out long nIn);
        if (s != MvqStatus.Ok) return (int)s;
        s = CheckOut(fn, "output", output, outputCapacity, nIn, "floats");
        if (s != MvqStatus.Ok) return (int)s;
        if (Overlap(images, nIn * 4, output, nIn * 4)) return Fail(MvqStatus.Argument, $"{fn}: output overlaps images");
        m.Reconstruct(new ReadOnlySpan<float>(images, (int)nIn), new Span<float>(output, (int)nIn));
        return Ok();
    });

    [UnmanagedCallersOnly(EntryPoint = "mvq_decode")]
    private static int MvqDecode(ulong model, int* codes, long count, int codeLength, float* images, long imagesCapacity) => Guard(() =>
    {
        const string fn = "mvq_decode";
        var m = Models.Get(model, out var problem);
        if (m is null) return Fail(MvqStatus.Handle, $"{fn}: {problem}");
        if (codes == null) return Fail(MvqStatus.Null, $"{fn}: codes is NULL");
        if (codeLength != m.CodeLength) return Fail(MvqStatus.Shape, $"{fn}: code_length is {codeLength}, this model's codes have {m.CodeLength}");
        var s = CheckCount(fn, count, m.CodeLength, out long nCodes);
        if (s != MvqStatus.Ok) return (int)s;
        s = CheckOut(fn, "images", images, imagesCapacity, count * m.ImageSize, "floats");
        if (s != MvqStatus.Ok) return (int)s;
        try { m.Decode(new ReadOnlySpan<int>(codes, (int)nCodes), new Span<float>(images, (int)(count * m.ImageSize))); }
        catch (ArgumentException e) { return Fail(MvqStatus.Argument, $"{fn}: {e.Message}"); }
        return Ok();
    });

    [UnmanagedCallersOnly(EntryPoint = "mvq_prior_load")]
    private static int MvqPriorLoad(ulong model, byte* path, ulong* prior) => Guard(() =>
    {
        if (prior == null) return Fail(MvqStatus.Null, "mvq_prior_load: prior (the output handle) is NULL");
        *prior = 0;
        var m = Models.Get(model, out var problem);
        if (m is null) return Fail(MvqStatus.Handle, "mvq_prior_load: " + problem);
        if (path == null) return Fail(MvqStatus.Null, "mvq_prior_load: path is NULL");
        var p = MvqPrior.Load(Utf8(path), m);
        try { *prior = Priors.Add(p); }
        catch { p.Dispose(); throw; }
        lock (PriorOwner) PriorOwner[p] = model;
        return Ok();
    });

    [UnmanagedCallersOnly(EntryPoint = "mvq_prior_free")]
    private static int MvqPriorFree(ulong prior) => Guard(() =>
    {
        var p = Priors.Remove(prior, out var problem);
        if (p is null) return Fail(MvqStatus.Handle, "mvq_prior_free: " + problem);
        lock (PriorOwner) PriorOwner.Remove(p);
        try { p.Dispose(); } catch (ObjectDisposedException) { }   // its model was freed first: nothing left to free
        return Ok();
    });

    [UnmanagedCallersOnly(EntryPoint = "mvq_sample")]
    private static int MvqSample(ulong prior, long count, SampleOptions* options, int* codes, long codesCapacity, float* images, long imagesCapacity) => Guard(() =>
    {
        const string fn = "mvq_sample";
        var p = Priors.Get(prior, out var problem);
        if (p is null) return Fail(MvqStatus.Handle, $"{fn}: {problem}");
        ulong owner;
        lock (PriorOwner) owner = PriorOwner.GetValueOrDefault(p);
        var m = Models.Get(owner, out problem);
        if (m is null) return Fail(MvqStatus.Handle, $"{fn}: the prior's model was freed ({problem})");
        if (codes == null && images == null) return Fail(MvqStatus.Null, $"{fn}: codes and images are both NULL");
        var s = CheckCount(fn, count, Math.Max(m.ImageSize, m.CodeLength), out _);
        if (s != MvqStatus.Ok) return (int)s;
        if (codes != null && (s = CheckOut(fn, "codes", codes, codesCapacity, count * m.CodeLength, "ints")) != MvqStatus.Ok) return (int)s;
        if (images != null && (s = CheckOut(fn, "images", images, imagesCapacity, count * m.ImageSize, "floats")) != MvqStatus.Ok) return (int)s;
        var o = options == null ? new SampleOptions { Temperature = 1f, TopP = 1f, Seed = 1 } : *options;
        var r = p.Sample((int)count, new MvqSampleOptions(o.Temperature, o.TopK, o.TopP, o.Seed, o.RandomMasks != 0, o.Batch == 0 ? 64 : o.Batch));
        if (codes != null) r.Codes.Values.AsSpan().CopyTo(new Span<int>(codes, r.Codes.Values.Length));
        if (images != null) r.Images.AsSpan().CopyTo(new Span<float>(images, r.Images.Length));
        return Ok();
    });

    // ---- checks and the error boundary ----

    private static MvqStatus CheckImages(string fn, MvqModel m, float* images, long count, int c, int h, int w, out long floats)
    {
        floats = 0;
        if (images == null) return FailS(MvqStatus.Null, $"{fn}: images is NULL");
        if (c != m.Channels || h != m.Height || w != m.Width)
            return FailS(MvqStatus.Shape, $"{fn}: images are {c}x{h}x{w}, the model takes {m.Channels}x{m.Height}x{m.Width}");
        return CheckCount(fn, count, m.ImageSize, out floats);
    }

    private static MvqStatus CheckCount(string fn, long count, int per, out long total)
    {
        total = 0;
        if (count < 1) return FailS(MvqStatus.Argument, $"{fn}: count is {count}, must be >= 1");
        if (count > int.MaxValue / per) return FailS(MvqStatus.Argument, $"{fn}: count {count} is too large for one call (at most {int.MaxValue / per})");
        total = count * per;
        return MvqStatus.Ok;
    }

    private static MvqStatus CheckOut(string fn, string name, void* p, long capacity, long needed, string unit)
    {
        if (p == null) return FailS(MvqStatus.Null, $"{fn}: {name} is NULL");
        if (capacity < needed) return FailS(MvqStatus.Buffer, $"{fn}: {name} holds {capacity} {unit}, {needed} are needed");
        return MvqStatus.Ok;
    }

    private static bool Overlap(void* a, long aBytes, void* b, long bBytes) =>
        (byte*)a < (byte*)b + bBytes && (byte*)b < (byte*)a + aBytes;

    private static string Utf8(byte* s) => Marshal.PtrToStringUTF8((nint)s) ?? "";

    private static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (MvqInputException e) { return Fail(MvqStatus.Input, e.Message); }
        catch (MvqUsageException e) { return Fail(e.Message.StartsWith("cannot open device", StringComparison.Ordinal) || e.Message.StartsWith("unknown device", StringComparison.Ordinal) ? MvqStatus.Device : MvqStatus.Argument, e.Message); }
        catch (ObjectDisposedException) { return Fail(MvqStatus.Handle, "the handle was freed while the call ran"); }
        catch (ArgumentException e) { return Fail(MvqStatus.Argument, e.Message); }
        catch (IOException e) { return Fail(MvqStatus.Input, e.Message); }
        catch (UnauthorizedAccessException e) { return Fail(MvqStatus.Input, e.Message); }
        catch (OutOfMemoryException e) { return Fail(MvqStatus.Internal, "out of memory: " + e.Message); }
        catch (Exception e) { return Fail(MvqStatus.Internal, $"internal error: {e.GetType().Name}: {e.Message}"); }
    }

    private static int Ok() { SetError(""); return 0; }

    private static int Fail(MvqStatus s, string message) { SetError(message); return (int)s; }

    private static MvqStatus FailS(MvqStatus s, string message) { SetError(message); return s; }

    private static void SetError(string message)
    {
        var one = message.ReplaceLineEndings(" ");
        var bytes = Encoding.UTF8.GetBytes(one + "\0");
        if (_lastErrorPin.IsAllocated) _lastErrorPin.Free();
        _lastError = bytes;
        _lastErrorPin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
    }
}
