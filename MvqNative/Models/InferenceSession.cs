using MvqNative.Data;
using MvqNative.Tensors;

namespace MvqNative.Models;

/// <summary>
/// Runs a model in evaluation mode on batches of a dataset or on codes: the reconstruction
/// and the codes of each image (encode), or reconstructions from codes (decode).
/// </summary>
internal sealed class InferenceSession : IDisposable
{
    private readonly Autoencoder _model;
    private readonly int _batch;
    private readonly int _per;

    public InferenceSession(Autoencoder model, int batch)
    {
        _model = model;
        _batch = batch;
        var im = model.Config.Image;
        _per = im.Channels * im.Height * im.Width;
        model.SetTraining(false);
    }

    public int CodeLength => _model.Bottleneck.CodeLength;

    /// <summary>Originals, reconstructions and codes [b, CodeLength] of images [start, start + b).</summary>
    public (float[] Original, float[] Reconstruction, int[] Codes) Run(ImageDataset data, int start, int b)
    {
        if (b > _batch) throw new ArgumentOutOfRangeException(nameof(b));
        var im = _model.Config.Image;
        var host = new float[b * _per];
        var idx = Enumerable.Range(start, b).ToArray();
        data.CopyImages(idx, host);
        using var x = _model.Backend.FromArray(host, b, im.Channels, im.Height, im.Width);
        var y = _model.Forward(x).ToArray();
        var codes = new int[b * CodeLength];
        _model.Bottleneck.ReadCodes(codes);
        return (host, y, codes);
    }

    /// <summary>Reconstructions [n, C, H, W] from codes [n, CodeLength].</summary>
    public float[] Decode(int[] codes) => Decode(codes, null);

    /// <summary>
    /// Reconstructions [n, C, H, W] from codes [n, CodeLength]; for MVQ, <paramref name="maskWords"/> [n] (or null)
    /// replaces each instance's evaluation-bank mask EvalBank[w] by the given word (a random mask).
    /// </summary>
    public float[] Decode(int[] codes, uint[]? maskWords)
    {
        var mvq = _model.Bottleneck as MvqBottleneck;
        if (maskWords is not null && mvq is null) throw new ArgumentException("mask words need an MVQ model");
        if (maskWords is not null && maskWords.Length != codes.Length / CodeLength) throw new ArgumentException($"{maskWords.Length} mask words for {codes.Length / CodeLength} codes");
        int n = codes.Length / CodeLength;
        var segs = _model.Bottleneck.Segments;
        for (int i = 0; i < n; i++)
            foreach (var s in segs)
                for (int k = 0; k < s.Length; k++)
                {
                    int v = codes[i * CodeLength + s.Start + k];
                    if ((uint)v >= (uint)s.Vocabulary) throw new ArgumentException($"code {s.Name}[{k}] of instance {i} is {v}, outside [0, {s.Vocabulary})");
                }
        var output = new float[n * _per];
        for (int start = 0; start < n; start += _batch)
        {
            int b = Math.Min(_batch, n - start);
            using var c = _model.Backend.FromArray(codes.AsSpan(start * CodeLength, b * CodeLength), b, CodeLength);
            if (maskWords is not null) mvq!.OverrideDecodeWords(maskWords[start..(start + b)]);
            try { _model.Decode(c).ToArray().CopyTo(output, start * _per); }
            finally { if (maskWords is not null) mvq!.OverrideDecodeWords(null); }
        }
        return output;
    }

    public void Dispose() { }
}
