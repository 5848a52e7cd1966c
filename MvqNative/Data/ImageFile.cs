// ImageFile.cs: decode one image file (PNG/JPEG/BMP/GIF) safely into [C, H, W] floats, and save one image as PNG.
using MvqNative.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Advanced;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace MvqNative.Data;

/// <summary>
/// Loads one image for a model that takes [C, H, W] inputs in [0, 1]: decode, center-crop to the target aspect
/// ratio, resize to H x W (bicubic), then convert to C channels. Alpha is dropped.
/// <para>Channel rule: an image is <i>colour</i> when some pixel has R, G, B not all equal, else <i>grayscale</i>
/// (judged on the decoded pixels, not the file's colour type). A colour image for a 1-channel model, or a grayscale
/// image for a 3-channel model, is rejected with <see cref="MvqInputException"/> unless <c>convert: true</c>;
/// then colour becomes luminance (BT.709: 0.2126 R + 0.7152 G + 0.0722 B) and gray is copied into R, G and B.
/// A grayscale image for a 1-channel model and a colour image for a 3-channel model need no conversion.</para>
/// <para>Safety: files over <see cref="MaxFileBytes"/> are refused; dimensions are read from the header and images
/// over <see cref="MaxSide"/> per side or <see cref="MaxPixels"/> in all are refused before any pixel is decoded;
/// the decoder's allocator is also capped.</para>
/// </summary>
internal static class ImageFile
{
    /// <summary>Default largest accepted file, in bytes (256 MiB; <see cref="IO.Limits.ImageFileBytes"/> is the one applied).</summary>
    public const long MaxFileBytes = 256L << 20;
    /// <summary>Largest accepted width or height.</summary>
    public const int MaxSide = 16384;
    /// <summary>Default largest accepted width * height (<see cref="IO.Limits.ImagePixels"/> is the one applied).</summary>
    public const long MaxPixels = 64L << 20;

    // Only the four formats we promise; the allocator cap is a second line behind the header check.
    private static readonly Configuration Decoding = CreateConfiguration();

    private static Configuration CreateConfiguration()
    {
        var cfg = new Configuration(new PngConfigurationModule(), new JpegConfigurationModule(),
            new BmpConfigurationModule(), new GifConfigurationModule());
        // Managed arrays (no unmanaged pool): every decoder buffer is counted by the GC, so the fuzz test can bound
        // what one image costs; the pixel limit, checked from the header, is what bounds it.
        cfg.MemoryAllocator = new SimpleGcMemoryAllocator();
        return cfg;
    }

    /// <summary>File extensions (lower case, with dot) that <see cref="ImageFolder"/> picks up.</summary>
    public static readonly IReadOnlySet<string> Extensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".gif" };

    /// <summary>Loads one image as [C, H, W] floats in [0, 1] (see the class remarks for crop, resize and channel rules).</summary>
    /// <param name="path">PNG, JPEG, BMP or GIF file (format found from the content, not the extension).</param>
    /// <param name="channels">1 (grayscale) or 3 (RGB).</param>
    /// <param name="height">Target H.</param>
    /// <param name="width">Target W.</param>
    /// <param name="convert">Convert colour to gray or gray to RGB instead of rejecting a channel mismatch.</param>
    /// <exception cref="MvqInputException">Missing, too large, not an image, corrupt or truncated, or wrong channel count.</exception>
    public static float[] Load(string path, int channels, int height, int width, bool convert = false)
    {
        var dst = new float[channels * height * width];
        LoadInto(path, channels, height, width, dst, convert);
        return dst;
    }

    /// <summary>As <see cref="Load"/>, writing the [C, H, W] result into <paramref name="dst"/>.</summary>
    public static void LoadInto(string path, int channels, int height, int width, Span<float> dst, bool convert = false)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 or 3 channels");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfLessThan(dst.Length, channels * height * width, nameof(dst));

        using var image = Decode(path);
        Convert(image, channels, height, width, dst, convert, path);
    }

    /// <summary>
    /// Converts an image already in memory to [C, H, W] floats in [0, 1] as <see cref="LoadInto"/> does (centre-crop,
    /// resize, channels), converting colour to gray or gray to RGB where the channel counts differ. The image is not changed.
    /// </summary>
    internal static void FromImage(Image<Rgb24> source, int channels, int height, int width, Span<float> dst)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 or 3 channels");
        ArgumentOutOfRangeException.ThrowIfLessThan(dst.Length, channels * height * width, nameof(dst));
        using var image = source.Clone();
        Convert(image, channels, height, width, dst, convert: true, path: "image");
    }

    private static void Convert(Image<Rgb24> image, int channels, int height, int width, Span<float> dst, bool convert, string path)
    {
        bool colour = IsColour(image);
        if (channels == 1 && colour && !convert)
            throw new MvqInputException(path, "colour image (R, G, B differ) but the model takes 1 channel; pass --convert gray to use its luminance");
        if (channels == 3 && !colour && !convert)
            throw new MvqInputException(path, "grayscale image but the model takes 3 channels (RGB); pass --convert rgb to copy gray into R, G, B");

        CropResize(image, height, width);
        int plane = height * width;
        for (int y = 0; y < height; y++)
        {
            var row = image.DangerousGetPixelRowMemory(y).Span;
            for (int x = 0; x < width; x++)
            {
                var p = row[x];
                int o = y * width + x;
                if (channels == 1)
                {
                    // Gray images have R = G = B, so luminance returns that value exactly.
                    dst[o] = colour ? (0.2126f * p.R + 0.7152f * p.G + 0.0722f * p.B) / 255f : p.R / 255f;
                }
                else
                {
                    dst[o] = p.R / 255f;
                    dst[plane + o] = p.G / 255f;
                    dst[2 * plane + o] = p.B / 255f;
                }
            }
        }
    }

    /// <summary>Saves one [C, H, W] image (C = 1 or 3, values clamped to [0, 1]) as a PNG, atomically.</summary>
    public static void Save(string path, ReadOnlySpan<float> image, int channels, int height, int width) =>
        ImageGrid.Save(path, image, 1, channels, height, width, columns: 1, scale: 1, padding: 0);

    private static Image<Rgb24> Decode(string path)
    {
        // Regular files only, within the size limit, read through a bounded stream.
        long maxBytes = IO.Limits.ImageFileBytes;
        long size = IO.InputFile.RequireRegular(path, "image");
        if (size > maxBytes)
            throw new MvqInputException(path, $"file is {IO.Limits.Size(size)}, over the {IO.Limits.Size(maxBytes)} limit for an image (raise it with {IO.Limits.ImageFileVar})");
        byte[] bytes;
        try { bytes = IO.InputFile.ReadAllBytes(path, maxBytes, "image"); }
        catch (IO.MvqLimitException e) { throw new MvqInputException(e.File, e.Problem, e); }

        long maxPixels = IO.Limits.ImagePixels;
        try
        {
            var format = Image.DetectFormat(Decoding, bytes)
                ?? throw new MvqInputException(path, "not a recognised image (PNG, JPEG, BMP or GIF expected)");
            // One frame (an animated GIF's first), no metadata chunks (a zTXt or EXIF block is never inflated),
            // for identifying as for decoding.
            IImageDecoder decoder = format.Name.ToUpperInvariant() switch
            {
                "GIF" => new GifDecoder { DecodingMode = FrameDecodingMode.First, IgnoreMetadata = true },
                "PNG" => new PngDecoder { IgnoreMetadata = true },
                "JPEG" => new JpegDecoder { IgnoreMetadata = true },
                _ => new BmpDecoder(),
            };
            IImageInfo? info;
            using (var ms = new MemoryStream(bytes, writable: false)) info = ((IImageInfoDetector)decoder).Identify(Decoding, ms, default);
            if (info is null) throw new MvqInputException(path, "not a recognised image (PNG, JPEG, BMP or GIF expected)");
            if (info.Width <= 0 || info.Height <= 0)
                throw new MvqInputException(path, $"invalid image size {info.Width}x{info.Height}");
            if (info.Width > MaxSide || info.Height > MaxSide || (long)info.Width * info.Height > maxPixels)
                throw new MvqInputException(path, $"{format.Name} image of {info.Width}x{info.Height} is over the size limit ({MaxSide} per side, {maxPixels / 1_000_000} megapixels; raise the latter with {IO.Limits.ImagePixelsVar})");
            // The decoders fill truncated or missing data silently: check the structure first.
            ImageChecks.Validate(path, bytes, format.Name, maxPixels);
            return Image.Load<Rgb24>(Decoding, bytes, decoder);
        }
        catch (MvqInputException) { throw; }
        catch (OutOfMemoryException) { throw; }
        // Decoders report bad data with their own exceptions, and sometimes with raw index or argument errors.
        catch (Exception e)
        {
            throw new MvqInputException(path, $"corrupt or truncated image ({e.GetType().Name}: {e.Message})", e);
        }
    }

    private static bool IsColour(Image<Rgb24> image)
    {
        for (int y = 0; y < image.Height; y++)
            foreach (var p in image.DangerousGetPixelRowMemory(y).Span)
                if (p.R != p.G || p.G != p.B) return true;
        return false;
    }

    private static void CropResize(Image<Rgb24> image, int height, int width)
    {
        int w = image.Width, h = image.Height;
        // Largest centered window with the target aspect: compare w/h with width/height without rounding.
        Rectangle crop;
        if ((long)w * height > (long)h * width)
        {
            int cw = Math.Max(1, (int)Math.Round((double)h * width / height));
            crop = new Rectangle((w - cw) / 2, 0, cw, h);
        }
        else
        {
            int ch = Math.Max(1, (int)Math.Round((double)w * height / width));
            crop = new Rectangle(0, (h - ch) / 2, w, ch);
        }
        image.Mutate(ctx =>
        {
            if (crop.Width != w || crop.Height != h) ctx.Crop(crop);
            if (crop.Width != width || crop.Height != height) ctx.Resize(width, height, KnownResamplers.Bicubic);
        });
    }
}
