using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// A layer with explicit Forward and Backward (no autograd tape). Forward keeps what
/// Backward needs; Backward writes the input gradient (=) and accumulates parameter
/// gradients (+=). Returned tensors belong to the module's arena and stay valid until
/// the module's next call.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Module Child)> _children = new();
    private readonly List<Parameter> _params = new();

    protected Module(Backend backend)
    {
        Backend = backend;
        Arena = new Arena(backend);
    }

    public Backend Backend { get; }
    protected Arena Arena { get; }

    /// <summary>Training mode: dropout-like behaviour, EMA updates, batch statistics.</summary>
    public bool Training { get; private set; } = true;

    public void SetTraining(bool training)
    {
        Training = training;
        foreach (var (_, c) in _children) c.SetTraining(training);
    }

    public abstract Tensor Forward(Tensor x);
    public abstract Tensor Backward(Tensor dy);

    protected T AddChild<T>(string name, T child) where T : Module
    {
        _children.Add((name, child));
        return child;
    }

    protected Parameter AddParameter(string name, Tensor value, bool decay = true, bool trainable = true)
    {
        var p = new Parameter(name, value, decay, trainable);
        _params.Add(p);
        return p;
    }

    public IReadOnlyList<(string Name, Module Child)> Children => _children;

    /// <summary>All parameters of this module and its children, named by dotted path.</summary>
    public IEnumerable<Parameter> Parameters(string prefix = "")
    {
        foreach (var p in _params)
        {
            var local = p.Name.Contains('.') ? p.Name[(p.Name.LastIndexOf('.') + 1)..] : p.Name;
            p.Name = prefix + local;
            yield return p;
        }
        foreach (var (name, c) in _children)
            foreach (var p in c.Parameters(name.Length == 0 ? prefix : prefix + name + "."))
                yield return p;
    }

    /// <summary>Called on every module before its parameters are written to a checkpoint (sync host state into buffers).</summary>
    public void PrepareSave()
    {
        BeforeSave();
        foreach (var (_, c) in _children) c.PrepareSave();
    }

    /// <summary>Called on every module after a checkpoint's parameters were loaded (restore host state from buffers).</summary>
    public void CompleteLoad()
    {
        AfterLoad();
        foreach (var (_, c) in _children) c.CompleteLoad();
    }

    protected virtual void BeforeSave() { }
    protected virtual void AfterLoad() { }

    /// <summary>Every parameter below this module, without assigning names (Parameters(prefix) renames as it goes).</summary>
    private IEnumerable<Parameter> ParametersUnnamed() => _params.Concat(_children.SelectMany(c => c.Child.ParametersUnnamed()));

    /// <summary>Whether this module or a child holds any parameter.</summary>
    public bool HasParameters => ParametersUnnamed().Any();

    public long ParameterCount => ParametersUnnamed().Sum(p => (long)p.Value.Length);

    public virtual void Dispose()
    {
        foreach (var (_, c) in _children) c.Dispose();
        foreach (var p in _params) p.Dispose();
        Arena.Dispose();
        GC.SuppressFinalize(this);
    }
}
