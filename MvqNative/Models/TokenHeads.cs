using MvqNative.Backends;
using MvqNative.Layers;

namespace MvqNative.Models;

/// <summary>
/// Builders of the token heads of docs/model.md: trunk map [B, c1, H', W'] to tokens
/// [B*L, D], and tokens back to a decoder input map.
/// </summary>
internal static class TokenHeads
{
    /// <summary>Encoder head: grid = 1x1 conv + NCHW->tokens; global = flatten + linear + [B*L, D].</summary>
    public static Chain Encode(Backend b, ModelConfig c, int tokens, int dim, Random rng)
    {
        int c1 = c.Encoder.Channels[1], hw = c.LatentHeight * c.LatentWidth;
        return c.Head == HeadKind.Grid
            ? new Chain(b, new Conv2d(b, c1, dim, 1, 1, 0, rng), new ToTokens(b))
            : new Chain(b, new Flatten(b), new Linear(b, c1 * hw, tokens * dim, rng), new Reshape(b, -1, dim));
    }

    /// <summary>Decoder head: grid = tokens->NCHW + 1x1 conv; global = [B, L*D] + linear + [B, c1, H', W'].</summary>
    public static Chain Decode(Backend b, ModelConfig c, int tokens, int dim, Random rng)
    {
        int c1 = c.Encoder.Channels[1], h = c.LatentHeight, w = c.LatentWidth;
        return c.Head == HeadKind.Grid
            ? new Chain(b, new FromTokens(b, h, w), new Conv2d(b, dim, c1, 1, 1, 0, rng))
            : new Chain(b, new Reshape(b, -1, tokens * dim), new Linear(b, tokens * dim, c1 * h * w, rng), new Reshape(b, -1, c1, h, w));
    }
}
