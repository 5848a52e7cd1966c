// ImageNet64Tests.cs: the imagenet64:PATH spec reads downsampled-ImageNet .npz batches (written here by the
// test, in the official planar layout and in HWC), RGB end to end, and the imagenet64 presets train on it.
using System.IO.Compression;
using System.Text;
using MvqNative.Backends.Cpu;
using MvqNative.Data;
using MvqNative.Models;
using MvqNative.Training;
using Xunit;

namespace MvqNative.Tests.Data;

public class ImageNet64Tests
{
    /// <summary>Pixel value of image i, channel c, row y, column x (distinct per channel so a layout error shows).</summary>
    internal static byte Px(int i, int c, int y, int x) => (byte)((i * 31 + c * 80 + y * 3 + x * 5) % 256);

    internal static byte[] Npy(string descr, long[] shape, byte[] data)
    {
        var header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({string.Join(", ", shape)}{(shape.Length == 1 ? "," : "")}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        ms.Write(BitConverter.GetBytes((ushort)header.Length));
        ms.Write(Encoding.ASCII.GetBytes(header));
        ms.Write(data);
        return ms.ToArray();
    }

    /// <summary>Writes an .npz with 'data' (planar [N, 3*S*S] or HWC [N, S, S, 3]) and 1-based int64 'labels', compressed.</summary>
    internal static void WriteBatch(string path, int n, int s, bool hwc, int firstImage = 0)
    {
        var data = new byte[n * 3 * s * s];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < s; y++)
                    for (int x = 0; x < s; x++)
                        data[hwc ? ((i * s + y) * s + x) * 3 + c : ((i * 3 + c) * s + y) * s + x] = Px(firstImage + i, c, y, x);
        var labels = new byte[n * 8];
        for (int i = 0; i < n; i++) BitConverter.GetBytes((long)(1 + (firstImage + i) % 7)).CopyTo(labels, i * 8);
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        void Add(string name, byte[] bytes) { using var e = zip.CreateEntry(name, CompressionLevel.Fastest).Open(); e.Write(bytes); }
        Add("data.npy", Npy("|u1", hwc ? [n, s, s, 3] : [n, 3 * s * s], data));
        Add("labels.npy", Npy("<i8", [n], labels));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsBatchFilesInEitherLayout(bool hwc)
    {
        using var dir = new TempDir();
        WriteBatch(dir.File("train_data_batch_1.npz"), 3, 64, hwc);
        WriteBatch(dir.File("train_data_batch_2.npz"), 2, 64, hwc, firstImage: 3);
        var one = DataSpec.Parse("imagenet64:" + dir.File("train_data_batch_1.npz")).Load(3, 64, 64);
        Assert.Equal((3, 3, 64, 64), (one.Count, one.Channels, one.Height, one.Width));
        var all = DataSpec.Parse("imagenet64:" + dir.Path).Load(3, 64, 64);
        Assert.Equal(5, all.Count);
        Assert.Equal([0, 1, 2, 3, 4], all.Labels!); // 1-based in the files
        foreach (var (i, c, y, x) in new[] { (0, 0, 0, 0), (1, 2, 5, 7), (4, 1, 63, 62), (3, 2, 10, 0) })
            Assert.Equal(Px(i, c, y, x) / 255f, all.Pixels[((i * 3 + c) * 64 + y) * 64 + x]);
    }

    [Fact]
    public void BadFilesGiveOneLineErrors()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("bad.npz"), [1, 2, 3, 4]);
        var e = Assert.Throws<MvqInputException>(() => DataSpec.Parse("imagenet64:" + dir.File("bad.npz")).Load(3, 64, 64));
        Assert.Contains("bad.npz", e.Message);
        Assert.Throws<MvqInputException>(() => DataSpec.Parse("imagenet64:" + dir.File("missing.npz")));
        WriteBatch(dir.File("small.npz"), 2, 32, hwc: false);
        var size = Assert.Throws<MvqInputException>(() => DataSpec.Parse("imagenet64:" + dir.File("small.npz")).Load(3, 64, 64));
        Assert.Contains("32x32", size.Message);
        Assert.Throws<MvqInputException>(() => DataSpec.Parse("imagenet64:" + dir.File("small.npz")).Load(1, 32, 32));
    }

    [Theory]
    [InlineData("imagenet64-vq")]
    [InlineData("imagenet64-mvq")]
    public void PresetsTrainAFewStepsOnTheSyntheticFile(string preset)
    {
        using var dir = new TempDir();
        WriteBatch(dir.File("batch.npz"), 4, 64, hwc: false);
        var p = Presets.Get(preset);
        Assert.Equal((3, 64, 64), (p.Model.Image.Channels, p.Model.Image.Height, p.Model.Image.Width));
        var data = DataSpec.Parse("imagenet64:" + dir.File("batch.npz")).Load(3, 64, 64);
        var tc = p.Train; tc.Steps = 2; tc.Batch = 2; tc.LogEvery = 1; tc.WarmupSteps = 1;
        using var model = new Autoencoder(CpuBackend.Instance, p.Model, tc.Seed);
        using var trainer = new Trainer(CpuBackend.Instance, model, tc, data);
        var logs = new List<StepStats>();
        while (trainer.Step < tc.Steps) if (trainer.TrainStep() is { } s) logs.Add(s);
        Assert.Equal(2, logs.Count);
        Assert.All(logs, l => Assert.True(double.IsFinite(l.Loss) && l.Loss > 0));
        var x = model.Forward(CpuBackend.Instance.FromArray(data.Pixels.AsSpan(0, 2 * 3 * 64 * 64), 2, 3, 64, 64));
        Assert.Equal([2, 3, 64, 64], x.Shape); // RGB out
    }
}
