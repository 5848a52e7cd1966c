using System.CommandLine;
using MvqNative.Cli.Commands;
using Xunit;

namespace MvqNative.Tests.Cli;

[CollectionDefinition("cli", DisableParallelization = true)]
public class CliCollection { }

/// <summary>Runs `mvq` in-process and captures its exit code, stdout and stderr.</summary>
public static class CliHarness
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("mvq");
        foreach (var c in CommandCatalog.All()) root.Subcommands.Add(c);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o); Console.SetError(e);
        try { return (MvqNative.Cli.Cli.Run(root, args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }
}
