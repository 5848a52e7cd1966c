// Trains a FeatureNet as an image classifier (softmax cross-entropy, AdamW, warmup + cosine,
// random flips and shifts) and measures its test accuracy.
using MvqNative.Backends;
using MvqNative.Data;
using MvqNative.Optim;

namespace MvqNative.Metrics;

/// <summary>Settings of `mvq features train`.</summary>
internal sealed record FeatureTrainConfig(int Epochs = 8, int Batch = 128, float Lr = 2e-3f, float MinLr = 2e-5f, int WarmupSteps = 100,
    float WeightDecay = 0.05f, int Seed = 1, int MaxShift = 2, bool Flip = true);

/// <summary>One log line of classifier training.</summary>
internal sealed record FeatureTrainLog(int Epoch, int Step, double Loss, double TrainAccuracy, double? TestAccuracy, double Seconds);

internal static class FeatureTrainer
{
    /// <summary>Trains <paramref name="net"/> on labelled <paramref name="train"/>; logs after every epoch with the test accuracy.</summary>
    public static double Train(FeatureNet net, ImageDataset train, ImageDataset test, FeatureTrainConfig cfg, Action<FeatureTrainLog>? log = null)
    {
        if (train.Labels is null || test.Labels is null) throw new ArgumentException("classifier training needs labelled datasets");
        var c = net.Config;
        int per = c.Channels * c.Height * c.Width;
        if (train.ImageSize != per || test.ImageSize != per) throw new ArgumentException($"datasets must hold {c.Channels}x{c.Height}x{c.Width} images");
        var backend = net.Backend;
        int stepsPerEpoch = train.Count / cfg.Batch, total = stepsPerEpoch * cfg.Epochs;
        var batcher = new Batcher(train, cfg.Batch, cfg.Seed);
        var opt = new AdamW(net.Parameters(), cfg.Lr, 0.9f, 0.999f, 1e-8f, cfg.WeightDecay, 5.0f);
        var host = new float[cfg.Batch * per];
        var aug = new float[cfg.Batch * per];
        var idx = new int[cfg.Batch];
        var labels = new int[cfg.Batch];
        var dlogits = new float[cfg.Batch * c.Classes];
        var rng = new Random(cfg.Seed);
        using var x = backend.Empty(cfg.Batch, c.Channels, c.Height, c.Width);
        using var dl = backend.Empty(cfg.Batch, c.Classes);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        double acc = 0;
        for (int epoch = 0; epoch < cfg.Epochs; epoch++)
        {
            double lossSum = 0; long correct = 0;
            net.SetTraining(true);
            for (int s = 0; s < stepsPerEpoch; s++)
            {
                int step = epoch * stepsPerEpoch + s;
                batcher.NextBatch(host, idx);
                for (int i = 0; i < cfg.Batch; i++) labels[i] = train.Labels[idx[i]];
                Augment(host, aug, cfg.Batch, c.Channels, c.Height, c.Width, cfg, rng);
                x.CopyFrom(aug);
                opt.ZeroGrad();
                var logits = net.Forward(x).ToArray();
                var (loss, hits) = SoftmaxCrossEntropy(logits, labels, c.Classes, dlogits);
                lossSum += loss; correct += hits;
                dl.CopyFrom(dlogits);
                net.Backward(dl);
                opt.Step(LrSchedule.WarmupCosine(step, cfg.WarmupSteps, total, cfg.Lr, cfg.MinLr));
            }
            acc = Accuracy(net, test);
            log?.Invoke(new FeatureTrainLog(epoch + 1, (epoch + 1) * stepsPerEpoch, lossSum / stepsPerEpoch, correct / (double)(stepsPerEpoch * cfg.Batch), acc, sw.Elapsed.TotalSeconds));
        }
        opt.Dispose();
        net.SetTraining(false);
        return acc;
    }

    /// <summary>
    /// Mean softmax cross-entropy of logits [B, K] against labels, its gradient (softmax - onehot) / B written
    /// into <paramref name="dlogits"/>, and the number of correct argmax predictions. On the host: a [B, 10]
    /// classifier head is small, and this keeps the classifier independent of the prior's fused op.
    /// </summary>
    public static (double Loss, int Correct) SoftmaxCrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, Span<float> dlogits)
    {
        int b = labels.Length;
        double loss = 0; int correct = 0;
        for (int i = 0; i < b; i++)
        {
            var row = logits.Slice(i * classes, classes);
            int y = labels[i];
            if ((uint)y >= (uint)classes) throw new ArgumentException($"label {y} outside [0, {classes})");
            double max = double.NegativeInfinity; int arg = 0;
            for (int k = 0; k < classes; k++) if (row[k] > max) { max = row[k]; arg = k; }
            double sum = 0;
            for (int k = 0; k < classes; k++) sum += Math.Exp(row[k] - max);
            double lse = max + Math.Log(sum);
            loss += lse - row[y];
            if (arg == y) correct++;
            for (int k = 0; k < classes; k++) dlogits[i * classes + k] = (float)((Math.Exp(row[k] - lse) - (k == y ? 1 : 0)) / b);
        }
        return (loss / b, correct);
    }

    /// <summary>Top-1 accuracy on a labelled dataset, evaluation mode.</summary>
    public static double Accuracy(FeatureNet net, ImageDataset data, int batch = 500)
    {
        if (data.Labels is null) throw new ArgumentException("accuracy needs labels");
        net.SetTraining(false);
        int per = data.ImageSize, k = net.Config.Classes;
        long correct = 0;
        for (int s = 0; s < data.Count; s += batch)
        {
            int b = Math.Min(batch, data.Count - s);
            using var x = net.Backend.FromArray(data.Pixels.AsSpan(s * per, b * per), b, data.Channels, data.Height, data.Width);
            var logits = net.Forward(x).ToArray();
            for (int i = 0; i < b; i++)
            {
                int arg = 0;
                for (int j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + arg]) arg = j;
                if (arg == data.Labels[s + i]) correct++;
            }
        }
        return correct / (double)data.Count;
    }

    /// <summary>Random horizontal flip (p = 0.5) and a random shift of up to MaxShift pixels per axis (zero fill), per image.</summary>
    private static void Augment(float[] src, float[] dst, int b, int ch, int h, int w, FeatureTrainConfig cfg, Random rng)
    {
        int per = ch * h * w;
        Array.Clear(dst, 0, b * per);
        for (int i = 0; i < b; i++)
        {
            bool flip = cfg.Flip && rng.Next(2) == 1;
            int dy = cfg.MaxShift > 0 ? rng.Next(-cfg.MaxShift, cfg.MaxShift + 1) : 0;
            int dx = cfg.MaxShift > 0 ? rng.Next(-cfg.MaxShift, cfg.MaxShift + 1) : 0;
            for (int c = 0; c < ch; c++)
                for (int y = 0; y < h; y++)
                {
                    int sy = y - dy;
                    if (sy < 0 || sy >= h) continue;
                    for (int xo = 0; xo < w; xo++)
                    {
                        int sx = xo - dx;
                        if (sx < 0 || sx >= w) continue;
                        if (flip) sx = w - 1 - sx;
                        dst[i * per + (c * h + y) * w + xo] = src[i * per + (c * h + sy) * w + sx];
                    }
                }
        }
    }
}
