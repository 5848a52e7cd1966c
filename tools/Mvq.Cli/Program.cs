// Entry point of the `mvq` command-line tool: builds the command tree and maps failures
// to one-line errors with a non-zero exit code.
using System.CommandLine;
using MvqNative.Cli;
using MvqNative.Cli.Commands;

var root = new RootCommand("mvq: train and run Masked Vector Quantization (MVQ) and VQ-VAE autoencoders on the CPU or NVIDIA GPUs.");
foreach (var c in CommandCatalog.All()) root.Subcommands.Add(c);
int code = Cli.Run(root, args);
// Test hook: MVQ_PEAK_FILE=PATH writes the process's peak resident memory (VmHWM, bytes) to PATH at exit,
// so the hostile-input tests can bound the memory a crafted input costs. Nothing is printed.
if (Environment.GetEnvironmentVariable("MVQ_PEAK_FILE") is { Length: > 0 } peakFile) Cli.WritePeakMemory(peakFile);
return code;
