// Entry point of the `mvq` command-line tool: builds the command tree and maps failures
// to one-line errors with a non-zero exit code.
using System.CommandLine;
using MvqNative.Cli;
using MvqNative.Cli.Commands;

var root = new RootCommand("mvq: train and run Masked Vector Quantization (MVQ) and VQ-VAE autoencoders on the CPU or NVIDIA GPUs.");
foreach (var c in CommandCatalog.All()) root.Subcommands.Add(c);
return Cli.Run(root, args);
