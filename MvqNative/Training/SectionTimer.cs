using System.Diagnostics;
using MvqNative.Backends;

namespace MvqNative.Training;

/// <summary>
/// Wall time per named section of a step (encoder, bottleneck, decoder, optimiser; forward and
/// backward). Synchronises the backend at section edges, so it is only switched on by benchmarks.
/// </summary>
internal sealed class SectionTimer
{
    private readonly Dictionary<string, double> _ms = new();

    public void Add(string name, double ms) => _ms[name] = _ms.GetValueOrDefault(name) + ms;

    public IReadOnlyDictionary<string, double> Milliseconds => _ms;
}

/// <summary>Brackets a section with an NVTX range and, when a timer is attached, times it.</summary>
internal readonly struct Section : IDisposable
{
    private readonly Backend _backend;
    private readonly SectionTimer? _timer;
    private readonly string _name;
    private readonly long _start;

    public Section(Backend backend, SectionTimer? timer, string name)
    {
        _backend = backend; _timer = timer; _name = name;
        backend.PushRange(name);
        if (timer != null) backend.Synchronize();
        _start = timer != null ? Stopwatch.GetTimestamp() : 0;
    }

    public void Dispose()
    {
        if (_timer != null)
        {
            _backend.Synchronize();
            _timer.Add(_name, Stopwatch.GetElapsedTime(_start).TotalMilliseconds);
        }
        _backend.PopRange();
    }
}
