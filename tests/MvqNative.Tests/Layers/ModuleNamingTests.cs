// Parameter names are given once, when a child is added, and listing never renames them.
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using MvqNative.Models;
using Xunit;

namespace MvqNative.Tests.Layers;

public class ModuleNamingTests
{
    [Fact]
    public void ListingASubModuleKeepsTheCheckpointNames()
    {
        using var model = new Autoencoder(CpuBackend.Instance, Presets.Get("fmnist-mvq-global").Model, 1);
        var before = model.Parameters().Select(p => p.Name).ToList();
        Assert.Contains("bottleneck.head.weight", before);
        Assert.Equal(before.Count, before.Distinct().Count());
        foreach (var (name, child) in model.Children)
        {
            var sub = child.Parameters().Select(p => p.Name).ToList();
            Assert.All(sub, n => Assert.StartsWith(name + ".", n));
            Assert.All(sub, n => Assert.Contains(n, before));
        }
        Assert.Equal(before, model.Parameters().Select(p => p.Name));
    }

    private sealed class Leaf : Module
    {
        public Leaf() : base(CpuBackend.Instance) => AddParameter("w", CpuBackend.Instance.Zeros(2));
        public void Late() => AddParameter("late", CpuBackend.Instance.Zeros(1));
        public override Tensors.Tensor Forward(Tensors.Tensor x) => x;
        public override Tensors.Tensor Backward(Tensors.Tensor dy) => dy;
    }

    private sealed class Parent : Module
    {
        public readonly Leaf Child;
        public Parent(Leaf leaf) : base(CpuBackend.Instance) => Child = AddChild("leaf", leaf);
        public void Adopt(Leaf other) => AddChild("again", other);
        public override Tensors.Tensor Forward(Tensors.Tensor x) => x;
        public override Tensors.Tensor Backward(Tensors.Tensor dy) => dy;
    }

    [Fact]
    public void NamesAreGivenWhenAChildIsAddedAndLateAdditionsGetTheirPath()
    {
        using var parent = new Parent(new Leaf());
        Assert.Equal(["leaf.w"], parent.Parameters().Select(p => p.Name));
        Assert.Equal(["leaf.w"], parent.Child.Parameters().Select(p => p.Name));
        parent.Child.Late();
        Assert.Equal(["leaf.w", "leaf.late"], parent.Parameters().Select(p => p.Name));
        using var other = new Parent(new Leaf());
        Assert.Throws<InvalidOperationException>(() => other.Adopt(parent.Child));
    }
}
