// Learning-rate schedules.
namespace MvqNative.Optim;

/// <summary>Learning-rate schedules as pure functions of the (0-based) step.</summary>
internal static class LrSchedule
{
    /// <summary>
    /// Linear warmup to <paramref name="peakLr"/> over <paramref name="warmupSteps"/> steps
    /// (step 0 gives peak/warmup), then cosine decay to <paramref name="minLr"/> at
    /// <paramref name="totalSteps"/>; constant minLr after.
    /// </summary>
    public static float WarmupCosine(int step, int warmupSteps, int totalSteps, float peakLr, float minLr)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), $"step must be >= 0, got {step}");
        if (warmupSteps > 0 && step < warmupSteps) return peakLr * (step + 1) / warmupSteps;
        int decaySteps = totalSteps - Math.Max(0, warmupSteps);
        if (decaySteps <= 0) return step >= totalSteps ? minLr : peakLr;
        double progress = Math.Clamp((double)(step - Math.Max(0, warmupSteps)) / decaySteps, 0, 1);
        return (float)(minLr + 0.5 * (peakLr - minLr) * (1 + Math.Cos(Math.PI * progress)));
    }
}
