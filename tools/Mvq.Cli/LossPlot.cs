using MvqNative.Training;

namespace MvqNative.Cli;

/// <summary>loss.png: total and reconstruction loss against step (ScottPlot), log-scaled y.</summary>
internal static class LossPlot
{
    public static void Save(string path, IReadOnlyList<StepStats> history, string title)
    {
        var plt = new ScottPlot.Plot();
        if (history.Count > 0)
        {
            double[] xs = history.Select(h => (double)h.Step).ToArray();
            var total = plt.Add.Scatter(xs, history.Select(h => Math.Log10(Math.Max(h.Loss, 1e-12))).ToArray());
            total.LegendText = "total loss";
            var rec = plt.Add.Scatter(xs, history.Select(h => Math.Log10(Math.Max(h.Reconstruction, 1e-12))).ToArray());
            rec.LegendText = "reconstruction";
            plt.ShowLegend();
        }
        plt.Title(title);
        plt.XLabel("step");
        plt.YLabel("log10 loss");
        var tmp = path + ".tmp.png";
        plt.SavePng(tmp, 800, 500);
        File.Move(tmp, path, overwrite: true);
    }
}
