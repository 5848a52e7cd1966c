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

/// <summary>Figures of <see cref="MvqModel.Evaluate"/> (means over images; evaluation mode).</summary>
/// <param name="Images">Images evaluated.</param>
/// <param name="Mse">Mean squared error per pixel, images in [0, 1].</param>
/// <param name="Psnr">Mean PSNR in dB.</param>
/// <param name="Ssim">Mean SSIM.</param>
/// <param name="CodebookUsage">Share of the primary codebook used, in [0, 1].</param>
/// <param name="Perplexity">Perplexity of the primary codes.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record MvqEvaluation(int Images, double Mse, double Psnr, double Ssim, double CodebookUsage, double Perplexity, double Seconds);
