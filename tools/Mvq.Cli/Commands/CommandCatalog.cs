using System.CommandLine;

namespace MvqNative.Cli.Commands;

/// <summary>The subcommands of `mvq`, in help order.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All() =>
    [
        TrainCommand.Create(),
        EvalCommand.Create(),
        FeaturesCommand.Create(),
        ReportCommand.Create(),
        ReconstructCommand.Create(),
        EncodeCommand.Create(),
        DecodeCommand.Create(),
        TraverseCommand.Create(),
        PriorCommand.Create(),
        SampleCommand.Create(),
        BenchCommand.Create(),
        DoctorCommand.Create(),
        SelftestCommand.Create(),
    ];
}
