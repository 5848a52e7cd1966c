// ModelIdentity.cs: what ties codes and priors to one autoencoder: the hash of its config (and MVQ bank) and of its weights.
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace MvqNative.Models;

/// <summary>Hashes that identify an autoencoder: codes files and priors record them and are refused by another model.</summary>
internal static class ModelIdentity
{
    /// <summary>SHA-256 (hex) of what decoding depends on besides the weights: the model config and the evaluation bank.</summary>
    public static string ConfigHash(Autoencoder model)
    {
        var text = model.Config.ToJson();
        if (model.Bottleneck is MvqBottleneck m) text += $"|bank_seed={m.BankSeed}|eval_hypotheses={m.EvalHypotheses}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>SHA-256 (hex) of every parameter and buffer (name, shape, float bits) in checkpoint order.</summary>
    public static string WeightsHash(Autoencoder model)
    {
        model.PrepareSave();
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var p in model.Parameters())
        {
            h.AppendData(Encoding.UTF8.GetBytes(p.Name + "[" + p.Value.ShapeString + "]"));
            h.AppendData(MemoryMarshal.AsBytes(p.Value.ToArray().AsSpan()));
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>First 12 hex digits, for messages.</summary>
    public static string Short(string hash) => hash.Length > 12 ? hash[..12] : hash;
}
