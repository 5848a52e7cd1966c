// BatcherTests.cs: the batcher covers every image once per epoch, is reproducible from its seed, and resumes exactly.
using MvqNative.Data;
using Xunit;

namespace MvqNative.Tests.Data;

public class BatcherTests
{
    // Image i is 2x2 pixels all equal to i / 1000, so a batch's pixels reveal which images it holds.
    private static ImageDataset Numbered(int n)
    {
        var px = new float[n * 4];
        for (int i = 0; i < px.Length; i++) px[i] = (i / 4) / 1000f;
        return new ImageDataset("numbered", n, 1, 2, 2, px);
    }

    private static List<int> Take(Batcher b, int batches)
    {
        var seen = new List<int>();
        var dst = new float[b.BatchFloats];
        var idx = new int[b.BatchSize];
        for (int k = 0; k < batches; k++)
        {
            Assert.Equal(b.BatchSize, b.NextBatch(dst, idx));
            for (int j = 0; j < b.BatchSize; j++)
            {
                Assert.Equal(idx[j] / 1000f, dst[j * 4]);
                Assert.Equal(idx[j] / 1000f, dst[j * 4 + 3]);
            }
            seen.AddRange(idx);
        }
        return seen;
    }

    [Theory]
    [InlineData(10, 3)]
    [InlineData(7, 7)]
    [InlineData(5, 12)]
    [InlineData(1, 1)]
    public void EveryEpochVisitsEveryImageOnce(int n, int batch)
    {
        var b = new Batcher(Numbered(n), batch, seed: 42);
        var seen = Take(b, 4 * n); // 4*batch epochs, all batches full
        for (int e = 0; e < 4 * batch; e++)
            Assert.Equal(Enumerable.Range(0, n), seen.Skip(e * n).Take(n).Order());
        Assert.Equal(4L * batch, b.Epoch);
        Assert.Equal(0L, b.Position);
    }

    [Fact]
    public void SameSeedSameOrderOtherSeedOrEpochDiffers()
    {
        var a = Take(new Batcher(Numbered(50), 8, 7), 20);
        var b = Take(new Batcher(Numbered(50), 8, 7), 20);
        var c = Take(new Batcher(Numbered(50), 8, 8), 20);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.NotEqual(a.Take(50), a.Skip(50).Take(50)); // a new permutation each epoch
        Assert.NotEqual(Enumerable.Range(0, 50), a.Take(50)); // and actually shuffled
    }

    [Fact]
    public void RestoredStateContinuesExactly()
    {
        var data = Numbered(23);
        var a = new Batcher(data, 5, 99);
        Take(a, 11); // stops mid-epoch (55 images = 2 epochs + 9)
        var state = a.State;
        Assert.Equal(new BatcherState(2, 9), state);
        var expected = Take(a, 13);

        var b = new Batcher(data, 5, 99);
        b.Restore(state);
        Assert.Equal(expected, Take(b, 13));
        Assert.Equal(a.State, b.State);
    }

    [Fact]
    public void RestoreRejectsImpossibleStates()
    {
        var b = new Batcher(Numbered(4), 2, 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => b.Restore(new BatcherState(0, 4)));
        Assert.Throws<ArgumentOutOfRangeException>(() => b.Restore(new BatcherState(-1, 0)));
        Assert.Throws<ArgumentException>(() => b.NextBatch(new float[7]));
    }

    [Fact]
    public void CopyImagesAndSubset()
    {
        var d = Numbered(6);
        var dst = new float[8];
        d.CopyImages([5, 2], dst);
        Assert.Equal(new[] { .005f, .005f, .005f, .005f, .002f, .002f, .002f, .002f }, dst);
        var s = d.Subset(3);
        Assert.Equal(3, s.Count);
        Assert.Equal(d.Pixels.AsSpan(0, 12).ToArray(), s.Pixels);
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Subset(7));
    }
}
