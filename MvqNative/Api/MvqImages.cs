// MvqImages.cs: a set of images at one shape, held in memory, for training and evaluation.
using MvqNative.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace MvqNative;

/// <summary>
/// Images held in memory as floats in [0, 1], [Count, Channels, Height, Width] (NCHW, row-major):
/// the data of <see cref="MvqModel.Train"/> and <see cref="MvqModel.Evaluate(MvqImages, MvqEvalOptions)"/>. Immutable.
/// </summary>
public sealed class MvqImages
{
    internal MvqImages(ImageDataset data) => Data = data;

    internal ImageDataset Data { get; }

    /// <summary>Wraps a loaded dataset (not copied).</summary>
    internal static MvqImages FromDataset(ImageDataset data) => new(data);

    /// <summary>Name of the source (a data spec, a folder, or the name given).</summary>
    public string Name => Data.Name;
    /// <summary>Number of images.</summary>
    public int Count => Data.Count;
    /// <summary>1 (gray) or 3 (RGB).</summary>
    public int Channels => Data.Channels;
    /// <summary>Rows of pixels.</summary>
    public int Height => Data.Height;
    /// <summary>Columns of pixels.</summary>
    public int Width => Data.Width;
    /// <summary>The pixels, [Count, Channels, Height, Width], in [0, 1].</summary>
    public ReadOnlySpan<float> Pixels => Data.Pixels.AsSpan(0, Data.Count * Data.ImageSize);

    /// <summary>
    /// Loads a data spec at the given shape: <c>fashion-mnist[:train|:test]</c>, <c>folder:PATH</c>,
    /// <c>idx:PATH</c> or <c>imagenet64:PATH</c> (images are resized and centre-cropped to the shape).
    /// </summary>
    /// <param name="spec">The data spec.</param>
    /// <param name="channels">1 or 3.</param>
    /// <param name="height">Rows.</param>
    /// <param name="width">Columns.</param>
    /// <param name="limit">Keep only the first <paramref name="limit"/> images (null: all).</param>
    /// <param name="convert">Convert colour to gray (or gray to RGB) instead of refusing a channel mismatch.</param>
    /// <exception cref="MvqInputException">A file is missing, corrupt, too large or of the wrong channel count; or the set is empty.</exception>
    /// <exception cref="MvqUsageException">The spec is malformed.</exception>
    public static MvqImages Load(string spec, int channels, int height, int width, int? limit = null, bool convert = false)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (limit is < 1) throw new ArgumentOutOfRangeException(nameof(limit), limit, "must be >= 1");
        var ds = DataSpec.Parse(spec).Load(channels, height, width, convert);
        if (limit is int n && n < ds.Count) ds = ds.Subset(n);
        if (ds.Count < 1) throw new MvqInputException(spec, "no images");
        return new MvqImages(ds);
    }

    /// <summary>As <see cref="Load(string, int, int, int, int?, bool)"/>, at the input shape of <paramref name="model"/>.</summary>
    public static MvqImages Load(string spec, MvqModel model, int? limit = null, bool convert = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Load(spec, model.Channels, model.Height, model.Width, limit, convert);
    }

    /// <summary>Wraps pixels [count, channels, height, width] in [0, 1] (copied).</summary>
    /// <exception cref="ArgumentException">The span is not a whole, non-zero number of images of that shape.</exception>
    public static MvqImages FromPixels(ReadOnlySpan<float> pixels, int channels, int height, int width, string name = "pixels")
    {
        int per = ImageSize(channels, height, width);
        if (pixels.Length == 0 || pixels.Length % per != 0)
            throw new ArgumentException($"{pixels.Length} floats are not a whole number of {channels}x{height}x{width} images", nameof(pixels));
        return new MvqImages(new ImageDataset(name, pixels.Length / per, channels, height, width, pixels.ToArray()));
    }

    /// <summary>
    /// Converts ImageSharp images to [count, channels, height, width] floats in [0, 1]: each image is resized and
    /// centre-cropped to height x width; for 1 channel the luminance, for 3 the R, G, B planes.
    /// </summary>
    /// <exception cref="ArgumentException">No images, or a channel count other than 1 or 3.</exception>
    public static MvqImages FromImages(IReadOnlyList<Image<Rgb24>> images, int channels, int height, int width, string name = "images")
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("no images", nameof(images));
        int per = ImageSize(channels, height, width);
        var pixels = new float[(long)images.Count * per];
        for (int i = 0; i < images.Count; i++) ImageFile.FromImage(images[i], channels, height, width, pixels.AsSpan(i * per, per));
        return new MvqImages(new ImageDataset(name, images.Count, channels, height, width, pixels));
    }

    internal static int ImageSize(int channels, int height, int width)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 or 3 channels");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        return checked(channels * height * width);
    }
}
