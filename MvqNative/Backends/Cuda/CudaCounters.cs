// What the CUDA backend asked the driver to do, counted in the managed backend so the same counters
// work on a real GPU and on the emulator (which can cross-check launches with its own count).
namespace MvqNative.Backends.Cuda;

/// <summary>
/// Totals of driver work issued by one <see cref="CudaBackend"/> since it was created. Take a
/// <see cref="Snapshot"/> before and after a piece of work and subtract (<see cref="CudaCounts.operator-"/>).
/// Every increment is one interlocked add, so counting costs nothing measurable next to a driver call.
/// </summary>
internal sealed class CudaCounters
{
    internal long Launches, BlasCalls, HtoD, HtoDAsync, DtoH, DtoD, Memsets, Syncs, DeviceAllocs, PinnedAllocs, Frees, GraphLaunches, GraphNodes;

    /// <summary>The totals now.</summary>
    public CudaCounts Snapshot() => new(
        Interlocked.Read(ref Launches), Interlocked.Read(ref BlasCalls), Interlocked.Read(ref HtoD), Interlocked.Read(ref HtoDAsync), Interlocked.Read(ref DtoH),
        Interlocked.Read(ref DtoD), Interlocked.Read(ref Memsets), Interlocked.Read(ref Syncs), Interlocked.Read(ref DeviceAllocs),
        Interlocked.Read(ref PinnedAllocs), Interlocked.Read(ref Frees), Interlocked.Read(ref GraphLaunches), Interlocked.Read(ref GraphNodes));
}

/// <summary>
/// Counts of driver work. <see cref="KernelLaunches"/> and <see cref="BlasCalls"/> count calls made by the host
/// (a replayed graph is one <see cref="GraphLaunches"/> and adds its recorded nodes to <see cref="GraphNodes"/>);
/// <see cref="Syncs"/> counts every host wait: stream or context synchronisation, a device-to-host copy (which
/// waits for the stream), an event wait.
/// </summary>
internal readonly record struct CudaCounts(long KernelLaunches, long BlasCalls, long CopiesHtoD, long CopiesHtoDAsync, long CopiesDtoH, long CopiesDtoD,
    long Memsets, long Syncs, long DeviceAllocs, long PinnedAllocs, long Frees, long GraphLaunches, long GraphNodes)
{
    public static CudaCounts operator -(CudaCounts a, CudaCounts b) => new(
        a.KernelLaunches - b.KernelLaunches, a.BlasCalls - b.BlasCalls, a.CopiesHtoD - b.CopiesHtoD, a.CopiesHtoDAsync - b.CopiesHtoDAsync, a.CopiesDtoH - b.CopiesDtoH,
        a.CopiesDtoD - b.CopiesDtoD, a.Memsets - b.Memsets, a.Syncs - b.Syncs, a.DeviceAllocs - b.DeviceAllocs,
        a.PinnedAllocs - b.PinnedAllocs, a.Frees - b.Frees, a.GraphLaunches - b.GraphLaunches, a.GraphNodes - b.GraphNodes);

    public static CudaCounts operator +(CudaCounts a, CudaCounts b) => new(
        a.KernelLaunches + b.KernelLaunches, a.BlasCalls + b.BlasCalls, a.CopiesHtoD + b.CopiesHtoD, a.CopiesHtoDAsync + b.CopiesHtoDAsync, a.CopiesDtoH + b.CopiesDtoH,
        a.CopiesDtoD + b.CopiesDtoD, a.Memsets + b.Memsets, a.Syncs + b.Syncs, a.DeviceAllocs + b.DeviceAllocs,
        a.PinnedAllocs + b.PinnedAllocs, a.Frees + b.Frees, a.GraphLaunches + b.GraphLaunches, a.GraphNodes + b.GraphNodes);

    /// <summary>(name, value) pairs in snake_case for JSON reports.</summary>
    public IEnumerable<(string Name, long Value)> Fields()
    {
        yield return ("kernel_launches", KernelLaunches);
        yield return ("blas_calls", BlasCalls);
        yield return ("copies_htod", CopiesHtoD);
        yield return ("copies_htod_async", CopiesHtoDAsync);
        yield return ("copies_dtoh", CopiesDtoH);
        yield return ("copies_dtod", CopiesDtoD);
        yield return ("memsets", Memsets);
        yield return ("syncs", Syncs);
        yield return ("device_allocs", DeviceAllocs);
        yield return ("pinned_allocs", PinnedAllocs);
        yield return ("frees", Frees);
        yield return ("graph_launches", GraphLaunches);
        yield return ("graph_nodes", GraphNodes);
    }
}
