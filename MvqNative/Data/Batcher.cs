// Batcher.cs: seeded, resumable shuffling of an ImageDataset into full batches.
namespace MvqNative.Data;

/// <summary>Where a <see cref="Batcher"/> is: epoch number and position within that epoch's permutation.</summary>
internal readonly record struct BatcherState(long Epoch, long Position);

/// <summary>
/// Cuts a dataset into batches of a fixed size in a shuffled order. Epoch <c>e</c> visits every image exactly once,
/// in a permutation drawn by Fisher-Yates from <c>System.Random(SeedFor(seed, e))</c>, so the order depends only on
/// (seed, epoch) and a run resumes exactly from a saved <see cref="State"/>. Batches wrap across epoch boundaries:
/// every batch is full, and a batch may hold the end of one epoch and the start of the next.
/// </summary>
internal sealed class Batcher
{
    private readonly ImageDataset _data;
    private readonly int _seed;
    private int[] _perm;
    private long _permEpoch = -1;

    /// <param name="data">The images (at least one).</param>
    /// <param name="batchSize">Images per batch B (at least 1; may exceed the dataset size).</param>
    /// <param name="seed">Shuffle seed.</param>
    public Batcher(ImageDataset data, int batchSize, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) throw new ArgumentException($"dataset {data.Name} is empty", nameof(data));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        _data = data;
        BatchSize = batchSize;
        _seed = seed;
        _perm = new int[data.Count];
    }

    /// <summary>Images in the dataset.</summary>
    public int DatasetCount => _data.Count;

    /// <summary>B, images per batch.</summary>
    public int BatchSize { get; }
    /// <summary>The current epoch (0-based): the epoch the next image comes from.</summary>
    public long Epoch { get; private set; }
    /// <summary>Index into the current epoch's permutation of the next image (0 .. Count-1).</summary>
    public long Position { get; private set; }
    /// <summary>Floats in one batch: B*C*H*W.</summary>
    public int BatchFloats => BatchSize * _data.ImageSize;

    /// <summary>Epoch and position, for checkpoints.</summary>
    public BatcherState State => new(Epoch, Position);

    /// <summary>Continues from a state saved with <see cref="State"/> (same dataset size, batch size and seed).</summary>
    public void Restore(BatcherState state)
    {
        if (state.Epoch < 0 || state.Position < 0 || state.Position >= _data.Count)
            throw new ArgumentOutOfRangeException(nameof(state), state, $"position must be in [0, {_data.Count}) and epoch >= 0");
        Epoch = state.Epoch;
        Position = state.Position;
    }

    /// <summary>The seed of epoch <paramref name="epoch"/>'s permutation: a SplitMix64 mix of (seed, epoch).</summary>
    public static int SeedFor(int seed, long epoch)
    {
        ulong z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)epoch + 0x632BE59BD9B4E019UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    /// <summary>Fills <paramref name="dst"/> with the next batch, [B, C, H, W]; returns B.</summary>
    public int NextBatch(Span<float> dst) => NextBatch(dst, Span<int>.Empty);

    /// <summary>
    /// Fills <paramref name="dst"/> with the next batch, [B, C, H, W], and, when <paramref name="indices"/> is not
    /// empty, the B dataset indices used (for labels); returns B.
    /// </summary>
    public int NextBatch(Span<float> dst, Span<int> indices)
    {
        int size = _data.ImageSize;
        if ((long)BatchSize * size > dst.Length)
            throw new ArgumentException($"dst holds {dst.Length} floats, a batch needs {(long)BatchSize * size}", nameof(dst));
        if (!indices.IsEmpty && indices.Length < BatchSize)
            throw new ArgumentException($"indices holds {indices.Length}, a batch needs {BatchSize}", nameof(indices));
        for (int b = 0; b < BatchSize; b++)
        {
            if (_permEpoch != Epoch)
            {
                FillPermutation(Epoch, _perm);
                _permEpoch = Epoch;
            }
            int idx = _perm[Position];
            _data.Image(idx).CopyTo(dst.Slice(b * size, size));
            if (!indices.IsEmpty) indices[b] = idx;
            if (++Position == _data.Count)
            {
                Position = 0;
                Epoch++;
            }
        }
        return BatchSize;
    }

    /// <summary>The global image counter epoch * Count + position (where the next batch starts).</summary>
    public long Consumed => Epoch * _data.Count + Position;

    /// <summary>
    /// Advances past <paramref name="images"/> images without reading them (when the batch was drawn elsewhere,
    /// e.g. on the device), so <see cref="State"/> stays the position to resume from.
    /// </summary>
    public void Skip(long images)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        long g = Consumed + images;
        Epoch = g / _data.Count;
        Position = g % _data.Count;
    }

    /// <summary>
    /// Fills <paramref name="dst"/> with the next batch in <see cref="HashSampler"/> order (the order of batches drawn on
    /// the device), [B, C, H, W]; returns B. The batch at global counter g holds images g .. g+B-1 of that order.
    /// </summary>
    public int NextHashBatch(Span<float> dst)
    {
        int size = _data.ImageSize;
        if ((long)BatchSize * size > dst.Length)
            throw new ArgumentException($"dst holds {dst.Length} floats, a batch needs {(long)BatchSize * size}", nameof(dst));
        HashBatchAt(Consumed, dst);
        Skip(BatchSize);
        return BatchSize;
    }

    /// <summary>
    /// Fills <paramref name="dst"/> with the batch at global image counter <paramref name="g"/> in <see cref="HashSampler"/>
    /// order (images g .. g+B-1), without moving the batcher: a batch staged ahead of the step that uses it.
    /// </summary>
    public void HashBatchAt(long g, Span<float> dst)
    {
        int size = _data.ImageSize;
        if ((long)BatchSize * size > dst.Length)
            throw new ArgumentException($"dst holds {dst.Length} floats, a batch needs {(long)BatchSize * size}", nameof(dst));
        for (int b = 0; b < BatchSize; b++, g++)
            _data.Image(HashSampler.Index(_seed, g / _data.Count, g % _data.Count, _data.Count)).CopyTo(dst.Slice(b * size, size));
    }

    private void FillPermutation(long epoch, int[] p)
    {
        for (int i = 0; i < p.Length; i++) p[i] = i;
        var rng = new Random(SeedFor(_seed, epoch));
        for (int i = p.Length - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
    }
}
