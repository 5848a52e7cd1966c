// PublicApiTests.cs: the public surface of the MvqNative and MvqNative.Bindings assemblies, listed by reflection,
// must equal the committed listing docs/api/public-api.txt, so it changes only on purpose. After a deliberate
// change, regenerate the listing with
//   MVQ_UPDATE_PUBLIC_API=1 dotnet test tests/MvqNative.Tests -c Release --filter PublicApiTests
// and commit it with the change.
using System.Reflection;
using System.Text;
using Xunit;

namespace MvqNative.Tests.Api;

public class PublicApiTests
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    [Fact]
    public void The_public_API_is_the_committed_listing()
    {
        var listing = Listing(typeof(MvqModel).Assembly) + Listing(typeof(MvqNative.Bindings.CudaException).Assembly);
        var file = Path.Combine(RepoRoot(), "docs", "api", "public-api.txt");
        if (Environment.GetEnvironmentVariable("MVQ_UPDATE_PUBLIC_API") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllText(file, listing);
            return;
        }
        Assert.True(File.Exists(file), $"{file} is missing; write it with MVQ_UPDATE_PUBLIC_API=1 (see the head of PublicApiTests.cs)");
        var committed = File.ReadAllText(file).ReplaceLineEndings("\n");
        if (committed != listing)
        {
            var want = committed.Split('\n').ToHashSet();
            var got = listing.Split('\n').ToHashSet();
            var added = got.Except(want).Take(20);
            var removed = want.Except(got).Take(20);
            Assert.Fail("the public API differs from docs/api/public-api.txt (regenerate it on purpose with MVQ_UPDATE_PUBLIC_API=1):\n" +
                        string.Join("\n", added.Select(l => "+ " + l).Concat(removed.Select(l => "- " + l))));
        }
    }

    /// <summary>One line per public type, then one per public or protected member, sorted.</summary>
    internal static string Listing(Assembly assembly)
    {
        var sb = new StringBuilder();
        sb.Append("assembly ").Append(assembly.GetName().Name).Append('\n');
        foreach (var t in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            sb.Append(Kind(t)).Append(' ').Append(t.FullName);
            if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum)) sb.Append(" : ").Append(b.FullName);
            sb.Append('\n');
            var members = t.GetMembers(Declared).Where(Visible).Select(Describe).Where(s => s is not null).Distinct().Order(StringComparer.Ordinal);
            foreach (var m in members) sb.Append("  ").Append(m).Append('\n');
        }
        return sb.ToString();
    }

    private static string Kind(Type t) =>
        t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? "struct" : t.IsAbstract && t.IsSealed ? "static class" : t.IsSealed ? "sealed class" : t.IsAbstract ? "abstract class" : "class";

    private static bool Visible(MemberInfo m) => m switch
    {
        MethodBase mb => (mb.IsPublic || mb.IsFamily || mb.IsFamilyOrAssembly) && !(mb.IsSpecialName && !(mb is ConstructorInfo)),
        FieldInfo f => (f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly) && !f.IsSpecialName,
        PropertyInfo p => (p.GetMethod ?? p.SetMethod) is { } acc && (acc.IsPublic || acc.IsFamily || acc.IsFamilyOrAssembly),
        EventInfo e => e.AddMethod is { } add && (add.IsPublic || add.IsFamily),
        Type nested => false,   // nested public types are listed as types of their own
        _ => false,
    };

    private static string? Describe(MemberInfo m) => m switch
    {
        PropertyInfo p => $"property {p.PropertyType} {p.Name} {{ {Accessors(p)}}}",
        FieldInfo f => $"{(f.IsLiteral ? "const" : f.IsStatic ? "static field" : "field")} {f.FieldType} {f.Name}{(f.IsLiteral ? " = " + f.GetRawConstantValue() : "")}",
        ConstructorInfo c => $"ctor({string.Join(", ", c.GetParameters().Select(Param))})",
        MethodInfo mi when mi.Name.Contains("<Clone>") => null,
        MethodInfo mi => $"{(mi.IsStatic ? "static " : mi.IsAbstract ? "abstract " : mi.IsVirtual && mi.GetBaseDefinition() == mi ? "virtual " : "")}{mi.ReturnType} {mi.Name}{Generic(mi)}({string.Join(", ", mi.GetParameters().Select(Param))})",
        EventInfo e => $"event {e.EventHandlerType} {e.Name}",
        _ => null,
    };

    private static string Accessors(PropertyInfo p)
    {
        var s = new StringBuilder();
        if (p.GetMethod is { } g && (g.IsPublic || g.IsFamily)) s.Append("get; ");
        if (p.SetMethod is { } st && (st.IsPublic || st.IsFamily))
            s.Append(st.ReturnParameter.GetRequiredCustomModifiers().Any(t => t.Name == "IsExternalInit") ? "init; " : "set; ");
        return s.ToString();
    }

    private static string Generic(MethodInfo m) => m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";

    private static string Param(ParameterInfo p) =>
        $"{(p.IsOut ? "out " : p.ParameterType.IsByRef ? "ref " : "")}{p.ParameterType} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : "")}";

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "MvqNative.sln"))) return d.FullName;
        throw new InvalidOperationException("MvqNative.sln not found above " + AppContext.BaseDirectory);
    }
}
