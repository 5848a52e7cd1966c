// ImageDataset.cs: an in-memory set of same-sized images (float pixels in [0,1], NCHW) with optional labels.
namespace MvqNative.Data;

/// <summary>
/// Images held in host memory as one float array: image <c>i</c>, channel <c>c</c>, row <c>y</c>, column <c>x</c>
/// is <c>Pixels[((i*Channels + c)*Height + y)*Width + x]</c>, values in [0, 1].
/// </summary>
internal sealed class ImageDataset
{
    /// <param name="name">Human-readable origin, e.g. "fashion-mnist:train" or a folder path.</param>
    /// <param name="count">Number of images N.</param>
    /// <param name="channels">C (1 = grayscale, 3 = RGB).</param>
    /// <param name="height">H.</param>
    /// <param name="width">W.</param>
    /// <param name="pixels">[N, C, H, W] values in [0, 1]; kept, not copied.</param>
    /// <param name="labels">Optional [N] class labels; kept, not copied.</param>
    public ImageDataset(string name, int count, int channels, int height, int width, float[] pixels, int[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        long want = (long)count * channels * height * width;
        if (pixels.LongLength != want)
            throw new ArgumentException($"pixels has {pixels.LongLength} values, [{count}, {channels}, {height}, {width}] needs {want}", nameof(pixels));
        if (labels is not null && labels.Length != count)
            throw new ArgumentException($"labels has {labels.Length} entries for {count} images", nameof(labels));
        Name = name;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        Pixels = pixels;
        Labels = labels;
    }

    /// <summary>Where the images came from (for logs and error messages).</summary>
    public string Name { get; }
    /// <summary>N, the number of images.</summary>
    public int Count { get; }
    /// <summary>C.</summary>
    public int Channels { get; }
    /// <summary>H.</summary>
    public int Height { get; }
    /// <summary>W.</summary>
    public int Width { get; }
    /// <summary>[N, C, H, W] pixel values in [0, 1].</summary>
    public float[] Pixels { get; }
    /// <summary>[N] class labels, or null when the source has none.</summary>
    public int[]? Labels { get; }

    /// <summary>C*H*W, the number of floats per image.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>The first <paramref name="count"/> images (and labels) as a new dataset with copied arrays.</summary>
    public ImageDataset Subset(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Count);
        var px = Pixels.AsSpan(0, count * ImageSize).ToArray();
        var lb = Labels?.AsSpan(0, count).ToArray();
        return new ImageDataset($"{Name}[:{count}]", count, Channels, Height, Width, px, lb);
    }

    /// <summary>One image as a span of C*H*W floats.</summary>
    public ReadOnlySpan<float> Image(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return Pixels.AsSpan(index * ImageSize, ImageSize);
    }

    /// <summary>
    /// Gathers the images at <paramref name="indices"/> into <paramref name="dst"/> as a [B, C, H, W] batch
    /// (B = indices.Length); <paramref name="dst"/> must hold at least B*C*H*W floats.
    /// </summary>
    public void CopyImages(ReadOnlySpan<int> indices, Span<float> dst)
    {
        int size = ImageSize;
        if ((long)indices.Length * size > dst.Length)
            throw new ArgumentException($"dst holds {dst.Length} floats, {indices.Length} images need {(long)indices.Length * size}", nameof(dst));
        for (int b = 0; b < indices.Length; b++)
            Image(indices[b]).CopyTo(dst.Slice(b * size, size));
    }

    public override string ToString() => $"{Name}: {Count} x [{Channels}, {Height}, {Width}]{(Labels is null ? "" : " with labels")}";
}
