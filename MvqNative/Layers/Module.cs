using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// A layer with explicit Forward and Backward (no autograd tape). Forward keeps what
/// Backward needs; Backward writes the input gradient (=) and accumulates parameter
/// gradients (+=). Returned tensors belong to the module's arena and stay valid until
/// the module's next call.
/// </summary>
internal abstract class Module : IDisposable
{
    private readonly List<(string Name, Module Child)> _children = new();
    private readonly List<Parameter> _params = new();
    private Module? _parent;
    private string _nameInParent = "";

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

    /// <summary>
    /// Adds a child and names its parameters once: each gets this module's path and "NAME."
    /// (no segment for an unnamed child) in front, so every parameter's name is its dotted path
    /// from the current root. Invariant kept by <see cref="AddParameter"/> too.
    /// </summary>
    protected T AddChild<T>(string name, T child) where T : Module
    {
        if (child._parent is not null) throw new InvalidOperationException($"{child.GetType().Name} is already a child of another module");
        child._parent = this;
        child._nameInParent = name;
        string prefix = PathPrefix() + (name.Length > 0 ? name + "." : "");
        if (prefix.Length > 0)
            foreach (var p in child.Parameters()) p.Name = prefix + p.Name;
        _children.Add((name, child));
        return child;
    }

    protected Parameter AddParameter(string name, Tensor value, bool decay = true, bool trainable = true)
    {
        var p = new Parameter(PathPrefix() + name, value, decay, trainable);
        _params.Add(p);
        return p;
    }

    /// <summary>"a.b." for a module reached from the root by children a then b ("" for the root).</summary>
    private string PathPrefix()
    {
        string path = "";
        for (var m = this; m._parent is not null; m = m._parent)
            if (m._nameInParent.Length > 0) path = m._nameInParent + "." + path;
        return path;
    }

    public IReadOnlyList<(string Name, Module Child)> Children => _children;

    /// <summary>
    /// All parameters of this module and its children, in order. Names were given once, at
    /// AddChild (dotted paths from the root module); listing never renames, so listing a
    /// sub-module gives the same names that checkpoints and optimiser state use.
    /// </summary>
    public IEnumerable<Parameter> Parameters() => _params.Concat(_children.SelectMany(c => c.Child.Parameters()));

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

    /// <summary>Whether this module or a child holds any parameter.</summary>
    public bool HasParameters => Parameters().Any();

    public long ParameterCount => Parameters().Sum(p => (long)p.Value.Length);

    public virtual void Dispose()
    {
        foreach (var (_, c) in _children) c.Dispose();
        foreach (var p in _params) p.Dispose();
        Arena.Dispose();
        GC.SuppressFinalize(this);
    }
}
