// MvqTraining.cs: the options, progress reports and results of MvqModel.Train and MvqModel.Evaluate.
namespace MvqNative;

/// <summary>Settings of one <see cref="MvqModel.Train"/> call; a null property keeps the recipe's (or checkpoint's) value.</summary>
public sealed class MvqTrainOptions
{
    /// <summary>Steps to run (the schedule's length), >= 1.</summary>
    public int? Steps { get; init; }
    /// <summary>Images per step, >= 1 (capped at the dataset's size).</summary>
    public int? Batch { get; init; }
    /// <summary>Peak learning rate, > 0.</summary>
    public float? LearningRate { get; init; }
    /// <summary>Seed of the data order (and of the MVQ masks).</summary>
    public int? Seed { get; init; }
    /// <summary>Steps between progress reports, >= 1.</summary>
    public int? LogEvery { get; init; }
    /// <summary>When set, the checkpoint is written there (atomically) every <see cref="CheckpointEvery"/> steps and at the end.</summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Steps between checkpoints (0: only at the end).</summary>
    public int? CheckpointEvery { get; init; }

    internal void ApplyTo(Training.TrainConfig tc)
    {
        if (Steps is int s) tc.Steps = s;
        if (Batch is int b) tc.Batch = b;
        if (LearningRate is float l) tc.Lr = l;
        if (Seed is int sd) tc.Seed = sd;
        if (LogEvery is int le) tc.LogEvery = le;
        if (CheckpointEvery is int ce) tc.CheckpointEvery = ce;
    }
}

/// <summary>A progress report of <see cref="MvqModel.Train"/>.</summary>
/// <param name="Step">Steps completed.</param>
/// <param name="TotalSteps">Steps of the run.</param>
/// <param name="Loss">Mean total loss since the last report.</param>
/// <param name="Reconstruction">Mean reconstruction loss since the last report.</param>
/// <param name="GradNorm">Gradient norm (before clipping) of the last step.</param>
/// <param name="LearningRate">Learning rate of the last step.</param>
/// <param name="ImagesPerSecond">Training throughput since the last report.</param>
public sealed record MvqTrainProgress(int Step, int TotalSteps, double Loss, double Reconstruction, double GradNorm, float LearningRate, double ImagesPerSecond)
{
    internal Training.StepStats? Stats { get; init; }
}

/// <summary>What a <see cref="MvqModel.Train"/> call did.</summary>
/// <param name="Step">The model's step count at the end.</param>
/// <param name="StepsRun">Steps run by this call.</param>
/// <param name="Seconds">Wall time of the call.</param>
/// <param name="Loss">Last reported total loss (NaN when no step was reported).</param>
/// <param name="Reconstruction">Last reported reconstruction loss.</param>
public sealed record MvqTrainResult(int Step, int StepsRun, double Seconds, double Loss, double Reconstruction);

/// <summary>Figures of <see cref="MvqModel.Evaluate(MvqImages, int?)"/> (means over images; evaluation mode).</summary>
/// <param name="Images">Images evaluated.</param>
/// <param name="Mse">Mean squared error per pixel, images in [0, 1].</param>
/// <param name="Psnr">Mean PSNR in dB.</param>
/// <param name="Ssim">Mean SSIM.</param>
/// <param name="CodebookUsage">Share of the primary codebook used, in [0, 1].</param>
/// <param name="Perplexity">Perplexity of the primary codes.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record MvqEvaluation(int Images, double Mse, double Psnr, double Ssim, double CodebookUsage, double Perplexity, double Seconds)
{
    /// <summary>Name of the data evaluated.</summary>
    public string Dataset { get; init; } = "";
    /// <summary>Usage of each code segment (k1; for MVQ also k2 and w), in the code's segment order.</summary>
    public IReadOnlyDictionary<string, MvqCodeUsage> Codes { get; init; } = new Dictionary<string, MvqCodeUsage>();
    /// <summary>Tokens per image in a code.</summary>
    public int TokensPerInstance { get; init; }
    /// <summary>Bits per image of a code: the sum over tokens of log2(vocabulary).</summary>
    public double BitsPerInstance { get; init; }
    /// <summary>Bits per image of each segment, in the code's segment order.</summary>
    public IReadOnlyDictionary<string, double> BitsPerSegment { get; init; } = new Dictionary<string, double>();
    /// <summary>Feature-space figures of the reconstructions against the originals (rFID, ...), or null when skipped.</summary>
    public MvqDistributionScores? Distribution { get; init; }
    /// <summary>Why the feature-space figures were skipped (asked, no network for this image shape), or null.</summary>
    public string? FeatureMetricsSkipped { get; init; }
    /// <summary>Wall seconds of the reconstruction pass (model, MSE/PSNR/SSIM, code usage).</summary>
    public double ReconstructionSeconds { get; init; }

    /// <summary>
    /// Scores generated images (a folder of image files, e.g. <c>mvq sample</c>'s output) against real ones (a data
    /// spec) through a feature network, both loaded at the network's image shape: gFID, KID, precision/recall and the
    /// PRD F-scores. <see cref="MvqEvalOptions.Limit"/> caps each set; Features is ignored (scoring needs them).
    /// </summary>
    /// <param name="samplesFolder">Folder of generated images.</param>
    /// <param name="dataSpec">The real images (fashion-mnist:test, folder:PATH, ...).</param>
    /// <param name="options">Limit, batch, feature network, KID subsets and precision/recall size.</param>
    /// <param name="device">cpu, cuda[:N] or cuda-emu[:N].</param>
    /// <exception cref="MvqInputException">The folder or data cannot be read, the feature network is missing or invalid, or fewer than two generated images.</exception>
    /// <exception cref="MvqUsageException">A malformed data spec, or a device that cannot be opened here.</exception>
    public static MvqSampleScores ScoreSamples(string samplesFolder, string dataSpec, MvqEvalOptions? options = null, string device = "cpu")
    {
        ArgumentNullException.ThrowIfNull(samplesFolder);
        ArgumentNullException.ThrowIfNull(dataSpec);
        ArgumentNullException.ThrowIfNull(device);
        var o = options ?? new MvqEvalOptions();
        var (backend, owns) = MvqModel.OpenDevice(device);
        try
        {
            using var net = Metrics.FeatureNet.Load(backend, o.FeaturesPath);
            var c = net.Config;
            var full = Path.GetFullPath(samplesFolder);
            if (!Directory.Exists(full)) throw new MvqInputException(full, "image folder not found");
            // A folder written by `mvq sample` / `mvq decode` (it has codes.json) also holds grid.png, the overview of the
            // first instances: that is not a sample, and scoring it as one would add a resized grid to the generated set.
            var skip = File.Exists(Path.Combine(full, "codes.json")) ? new HashSet<string> { "grid.png" } : null;
            var gen = Data.ImageFolder.Load(full, c.Channels, c.Height, c.Width, skipNames: skip);
            var real = Data.DataSpec.Parse(dataSpec).Load(c.Channels, c.Height, c.Width);
            int nGen = Math.Min(gen.Count, o.Limit ?? int.MaxValue), nReal = Math.Min(real.Count, o.Limit ?? int.MaxValue);
            if (nGen < 2) throw new MvqInputException(full, "fewer than two images to score");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var d = Metrics.DistributionMetrics.Score(net, real.Pixels.AsSpan(0, nReal * real.ImageSize), nReal, gen.Pixels.AsSpan(0, nGen * gen.ImageSize), nGen,
                paired: false, MvqModel.DistributionOptionsOf(o));
            return new MvqSampleScores(nGen, real.Name, nReal, MvqModel.ToPublic(d), sw.Elapsed.TotalSeconds);
        }
        finally { if (owns) backend.Dispose(); }
    }
}

/// <summary>Usage of one code segment over the evaluated images.</summary>
/// <param name="Vocabulary">Tokens the segment can take.</param>
/// <param name="UsedFraction">Share of the vocabulary used at least once, in [0, 1].</param>
/// <param name="Perplexity">exp of the entropy of the token histogram.</param>
public sealed record MvqCodeUsage(int Vocabulary, double UsedFraction, double Perplexity);

/// <summary>
/// Feature-space comparison of two image sets through a feature network: FID (rFID for reconstructions, gFID for
/// samples), KID, precision/recall (k = 3), the PRD F-scores, and for reconstructions the perceptual distance.
/// </summary>
/// <param name="Images">Images per set.</param>
/// <param name="Fid">Fréchet distance of the feature distributions.</param>
/// <param name="Kid">Kernel inception distance (mean over subsets).</param>
/// <param name="KidStd">Standard deviation of KID over subsets.</param>
/// <param name="Precision">Precision, or null with too few images.</param>
/// <param name="Recall">Recall, or null with too few images.</param>
/// <param name="F8">PRD F8 (recall-weighted), or null with too few images.</param>
/// <param name="F1_8">PRD F1/8 (precision-weighted), or null with too few images.</param>
/// <param name="Perceptual">Mean perceptual distance of paired images (reconstructions), else null.</param>
/// <param name="PrImages">Images per set used by precision/recall and PRD.</param>
/// <param name="Network">Name of the feature network.</param>
public sealed record MvqDistributionScores(int Images, double Fid, double Kid, double KidStd, double? Precision, double? Recall,
    double? F8, double? F1_8, double? Perceptual, int PrImages, string Network)
{
    /// <summary>Wall seconds of each stage (features, fid, kid, precision_recall, prd).</summary>
    public IReadOnlyDictionary<string, double> StageSeconds { get; init; } = new Dictionary<string, double>();
}

/// <summary>Settings of <see cref="MvqModel.Evaluate(MvqImages, MvqEvalOptions)"/> and <see cref="MvqEvaluation.ScoreSamples"/>.</summary>
public sealed class MvqEvalOptions
{
    /// <summary>Evaluate only the first N images (null: all), >= 1.</summary>
    public int? Limit { get; init; }
    /// <summary>Images per forward pass, >= 1 (capped at the number of images).</summary>
    public int Batch { get; init; } = 256;
    /// <summary>Compute the feature-space figures (rFID, KID, precision/recall, F-scores, perceptual distance).</summary>
    public bool Features { get; init; } = true;
    /// <summary>A feature network file; null: the embedded FashionMNIST network (skipped, not refused, for other image shapes).</summary>
    public string? FeaturesPath { get; init; }
    /// <summary>KID subsets (of 1000 images each), >= 1.</summary>
    public int KidSubsets { get; init; } = 20;
    /// <summary>Images per set for precision/recall and PRD (cost ~ n^2), >= 4.</summary>
    public int PrLimit { get; init; } = 5000;
}

/// <summary>Generated images scored against real ones by <see cref="MvqEvaluation.ScoreSamples"/>.</summary>
/// <param name="SampleImages">Generated images scored.</param>
/// <param name="Dataset">Name of the real data.</param>
/// <param name="RealImages">Real images scored.</param>
/// <param name="Scores">gFID, KID, precision/recall, F-scores.</param>
/// <param name="Seconds">Wall time of the scoring.</param>
public sealed record MvqSampleScores(int SampleImages, string Dataset, int RealImages, MvqDistributionScores Scores, double Seconds);
