// "Where is op X?": every registered op lives in one family whose name is the same in all four
// places (docs/ops.md): Ops/<Family>Ops.cs, Cpu<Family>, Cuda<Family> and native/kernels/<family>.cu.
using System.Reflection;
using System.Text;
using MvqNative.Backends.Cuda;
using MvqNative.Ops;
using Xunit;

namespace MvqNative.Tests.Conformance;

public sealed class FamilyNamingTests
{
    /// <summary>The Ops class that declares each registered OpDef as a static field.</summary>
    private static Dictionary<OpDef, Type> Owners()
    {
        var owners = new Dictionary<OpDef, Type>(ReferenceEqualityComparer.Instance);
        foreach (var t in typeof(OpDef).Assembly.GetTypes())
            foreach (var f in t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
                if (f.FieldType == typeof(OpDef) && f.GetValue(null) is OpDef op) owners.TryAdd(op, t);
        return owners;
    }

    private static string Snake(string pascal)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            if (char.IsUpper(pascal[i]) && i > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(pascal[i]));
        }
        return sb.ToString();
    }

    [Fact]
    public void EveryOpSitsInOneFamilyNamedAlikeInAllFourPlaces()
    {
        var owners = Owners();
        var problems = new List<string>();
        foreach (var op in OpRegistry.All)
        {
            if (!owners.TryGetValue(op, out var owner)) { problems.Add($"{op.Name}: no static field holds it"); continue; }
            if (!owner.Name.EndsWith("Ops", StringComparison.Ordinal) || owner.Namespace != "MvqNative.Ops")
            {
                problems.Add($"{op.Name}: declared in {owner.FullName}, not MvqNative.Ops.<Family>Ops");
                continue;
            }
            string family = owner.Name[..^3];
            var cpu = op.Cpu?.Method.DeclaringType;
            if (cpu?.FullName != $"MvqNative.Backends.Cpu.Cpu{family}") problems.Add($"{op.Name}: CPU kernel in {cpu?.FullName ?? "nothing"}, expected Cpu{family}");
            var cuda = op.Cuda?.Method.DeclaringType;
            if (cuda?.FullName != $"MvqNative.Backends.Cuda.Kernels.Cuda{family}") problems.Add($"{op.Name}: CUDA launcher in {cuda?.FullName ?? "nothing"}, expected Cuda{family}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void EveryLauncherClassUsesOnlyItsFamilysKernelFile()
    {
        var files = KernelCompiler.KernelFiles.ToHashSet();
        var problems = new List<string>();
        var used = new HashSet<string>();
        var launchers = typeof(OpDef).Assembly.GetTypes()
            .Where(t => t.Namespace == "MvqNative.Backends.Cuda.Kernels" && t.Name.StartsWith("Cuda", StringComparison.Ordinal) && !t.IsNested).ToList();
        Assert.NotEmpty(launchers);
        foreach (var t in launchers)
        {
            string expected = Snake(t.Name["Cuda".Length..]) + ".cu";
            foreach (var f in t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            {
                if (f.FieldType != typeof(KernelRef) || f.GetValue(null) is not KernelRef k) continue;
                if (k.File != expected) problems.Add($"{t.Name}.{f.Name} names {k.File}, expected {expected}");
                if (!files.Contains(k.File)) problems.Add($"{t.Name}.{f.Name} names {k.File}, which is not an embedded kernel file");
                used.Add(k.File);
            }
        }
        // Every kernel file belongs to a family, except the toolchain tests' own kernels.
        foreach (var file in files.Where(f => f != "testing.cu" && !used.Contains(f))) problems.Add($"{file}: no launcher class names it");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
