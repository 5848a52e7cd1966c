// MvqModel.cs: the managed facade: create or load an autoencoder, train it, encode, decode, reconstruct,
// evaluate and save. Everything a program needs without touching the library's internals.
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Metrics;
using MvqNative.Models;
using MvqNative.Training;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace MvqNative;

/// <summary>
/// A VQ-VAE or MVQ autoencoder on one device. Images are floats in [0, 1], laid out
/// [count, <see cref="Channels"/>, <see cref="Height"/>, <see cref="Width"/>] (NCHW, row-major); codes are
/// [count, <see cref="CodeLength"/>] ints (<see cref="MvqCodes"/>).
/// <para><b>Threading.</b> A model may be shared by threads: every member that runs the network takes the
/// model's lock, so calls on one model run one at a time, each seeing the weights the last one left.
/// Different models run concurrently on the CPU. Dispose a model only when no call on it is running.</para>
/// <para>Inference runs in evaluation mode in batches of <see cref="InferenceBatch"/> images, so a result does not
/// depend on how many images one call passes.</para>
/// </summary>
public sealed class MvqModel : IDisposable
{
    /// <summary>Images per forward pass inside <see cref="Encode(ReadOnlySpan{float}, Span{int})"/>, <see cref="Decode(ReadOnlySpan{int}, Span{float})"/> and <see cref="Reconstruct(ReadOnlySpan{float}, Span{float})"/> (as <c>mvq reconstruct</c>).</summary>
    public const int InferenceBatch = 64;

    private readonly object _gate = new();
    private readonly Backend _backend;
    private readonly bool _ownsBackend;
    private Trainer? _trainer;
    private TrainConfig _train;
    private bool _disposed;

    private MvqModel(Backend backend, bool ownsBackend, Autoencoder net, TrainConfig train, string device, string source)
    {
        Source = source;
        _backend = backend;
        _ownsBackend = ownsBackend;
        Net = net;
        _train = train;
        Device = device;
    }

    /// <summary>The network (library-internal).</summary>
    internal Autoencoder Net { get; }

    internal object Gate => _gate;

    /// <summary>Where the model came from (its checkpoint path, or the recipe's source): the name in error messages.</summary>
    internal string Source { get; }

    /// <summary>The device name the model was opened on: cpu, cuda[:N] or cuda-emu[:N].</summary>
    public string Device { get; }
    /// <summary>The backend the model runs on: "cpu", "cuda" or "cuda-emu" (<see cref="Device"/> is the name as given).</summary>
    public string DeviceKind => _backend.Name;
    /// <summary>Threads the CPU backend uses (MVQ_THREADS, else the processor count), process-wide.</summary>
    public static int CpuThreads => CpuParallel.Threads;
    /// <summary>SHA-256 (hex) of what decoding depends on besides the weights: codes files and priors are tied to it.</summary>
    public string ConfigHash { get { lock (_gate) { ThrowIfDisposed(); return ModelIdentity.ConfigHash(Net); } } }
    /// <summary>SHA-256 (hex) of the weights: a prior is tied to the exact weights it was trained on.</summary>
    public string WeightsHash { get { lock (_gate) { ThrowIfDisposed(); return ModelIdentity.WeightsHash(Net); } } }
    /// <summary>"vq" or "mvq".</summary>
    public string Kind => Net.Config.Kind.Name();
    /// <summary>Channels of an input image (1 or 3).</summary>
    public int Channels => Net.Config.Image.Channels;
    /// <summary>Rows of an input image, in pixels.</summary>
    public int Height => Net.Config.Image.Height;
    /// <summary>Columns of an input image, in pixels.</summary>
    public int Width => Net.Config.Image.Width;
    /// <summary>Floats per image: Channels x Height x Width.</summary>
    public int ImageSize => Channels * Height * Width;
    /// <summary>Ints per code.</summary>
    public int CodeLength => Net.Bottleneck.CodeLength;
    /// <summary>The layout of a code: k1 (and for MVQ k2 and w).</summary>
    public IReadOnlyList<MvqCodeSegment> Segments => Net.Bottleneck.Segments.Select(s => new MvqCodeSegment(s.Name, s.Start, s.Length, s.Vocabulary)).ToArray();
    /// <summary>MVQ: bits of a mask word (D2, the secondary tokens a mask selects from); 0 for VQ.</summary>
    public int MaskBits => Net.Bottleneck is MvqBottleneck m ? m.Sizes.D2 : 0;

    /// <summary>
    /// MVQ: the mask word that code token w selects (word w of the evaluation bank, bit i set = secondary token i kept).
    /// Decoding a code with <see cref="MvqCodes.MaskWords"/> replaces this word per image.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model is not MVQ.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="w"/> is outside the w segment's vocabulary.</exception>
    public uint EvaluationMask(int w)
    {
        var m = Net.Bottleneck as MvqBottleneck ?? throw new InvalidOperationException($"a {Kind} model has no masks");
        var bank = m.EvalBank;
        ArgumentOutOfRangeException.ThrowIfNegative(w);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(w, bank.Length);
        return bank[w];
    }

    /// <summary>
    /// MVQ: <paramref name="count"/> random mask words of <see cref="MaskBits"/> bits, each bit dropped with the model's
    /// drop rate, from a counter-based hash of (<paramref name="seed"/>, index): the same seed gives the same words.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model is not MVQ.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> &lt; 0.</exception>
    public uint[] RandomMasks(int count, int seed)
    {
        var m = Net.Bottleneck as MvqBottleneck ?? throw new InvalidOperationException($"a {Kind} model has no masks");
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return count == 0 ? [] : Mvq.MaskHash.Bank(seed, 0, count, m.Sizes.D2, Net.Config.Mvq!.DropRate);
    }

    /// <summary>Trainable values.</summary>
    public long ParameterCount => Net.ParameterCount;
    /// <summary>The model config as JSON (camelCase keys, as in the preset files).</summary>
    public string ModelJson => Net.Config.ToJson();
    /// <summary>Training steps completed by <see cref="Train"/> since the model was made or loaded (0 for a loaded checkpoint until it trains).</summary>
    public int Step { get { lock (_gate) return _trainer?.Step ?? 0; } }

    /// <summary>A new model with freshly initialised weights.</summary>
    /// <param name="recipe">Model and train settings (<see cref="MvqRecipe.Preset"/>).</param>
    /// <param name="device">cpu, cuda[:N] or cuda-emu[:N].</param>
    /// <param name="seed">Seed of the initial weights and of training's data order; null: the recipe's train seed.</param>
    /// <exception cref="MvqUsageException">Unknown device, or a device that cannot be opened here.</exception>
    /// <exception cref="MvqConfigException">The recipe's model does not fit the memory limit.</exception>
    public static MvqModel Create(MvqRecipe recipe, string device = "cpu", int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        var mc = recipe.Model();
        var tc = recipe.Train();
        if (seed is int s) tc.Seed = s;
        return Create(mc, tc, device, recipe.Source);
    }

    internal static MvqModel Create(ModelConfig mc, TrainConfig tc, string device, string source)
    {
        ArgumentNullException.ThrowIfNull(device);
        mc.Validate();
        ConfigChecks.CheckMemory(mc, 1, training: false, source);
        var (backend, owns) = OpenDevice(device);
        try { return new MvqModel(backend, owns, new Autoencoder(backend, mc, tc.Seed), tc, device, source); }
        catch { if (owns) backend.Dispose(); throw; }
    }

    /// <summary>Loads a checkpoint written by <see cref="Save"/> or <c>mvq train</c>.</summary>
    /// <param name="path">The model.safetensors file.</param>
    /// <param name="device">cpu, cuda[:N] or cuda-emu[:N].</param>
    /// <exception cref="MvqInputException">Missing, too large, corrupt, or not an MvqNative checkpoint: "FILE: problem".</exception>
    /// <exception cref="MvqUsageException">Unknown device, or a device that cannot be opened here.</exception>
    public static MvqModel Load(string path, string device = "cpu")
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(device);
        var file = ModelCheckpoint.ReadFile(path);
        var train = ModelCheckpoint.ReadTrainConfig(file, path) ?? new TrainConfig();
        var (backend, owns) = OpenDevice(device);
        try { return new MvqModel(backend, owns, ModelCheckpoint.Load(path, backend), train, device, path); }
        catch { if (owns) backend.Dispose(); throw; }
    }

    internal static (Backend, bool Owns) OpenDevice(string device) =>
        device.Trim().Equals("cpu", StringComparison.OrdinalIgnoreCase) ? (CpuBackend.Instance, false) : (Devices.Open(device), true);

    /// <summary>Codes of images [count, C, H, W] (count = images.Length / ImageSize).</summary>
    /// <exception cref="ArgumentException"><paramref name="images"/> is empty or not a whole number of images.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public MvqCodes Encode(ReadOnlySpan<float> images)
    {
        var codes = new int[checked(Count(images, nameof(images)) * CodeLength)];
        Encode(images, codes);
        return new MvqCodes(codes, Segments);
    }

    /// <summary>Codes of images [count, C, H, W] written into <paramref name="codes"/> [count, CodeLength].</summary>
    /// <exception cref="ArgumentException"><paramref name="images"/> is empty or not a whole number of images, or <paramref name="codes"/> is shorter than count x CodeLength.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public void Encode(ReadOnlySpan<float> images, Span<int> codes)
    {
        int n = Count(images, nameof(images));
        if (codes.Length < (long)n * CodeLength) throw new ArgumentException($"codes holds {codes.Length} ints, {n} codes need {(long)n * CodeLength}", nameof(codes));
        RunForward(images, n, null, codes, InferenceBatch);
    }

    /// <summary>
    /// Codes of images [count, C, H, W], running <paramref name="batch"/> images per forward pass instead of
    /// <see cref="InferenceBatch"/> (as <c>mvq encode --batch</c>): a larger batch uses more memory; on some devices
    /// it can change float rounding, so codes equal those of the same batch size.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="images"/> is empty or not a whole number of images.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batch"/> &lt; 1.</exception>
    /// <exception cref="MvqConfigException">A forward pass of min(batch, count) images does not fit the memory limit.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public MvqCodes Encode(ReadOnlySpan<float> images, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        int n = Count(images, nameof(images));
        int bs = Math.Min(batch, n);
        ConfigChecks.CheckMemory(Net.Config, bs, training: false, Source);
        var codes = new int[checked(n * CodeLength)];
        RunForward(images, n, null, codes, bs);
        return new MvqCodes(codes, Segments);
    }

    /// <summary>Codes of ImageSharp images (each resized and centre-cropped to the model's size; colour converted to gray or the reverse where needed).</summary>
    /// <exception cref="ArgumentException">No images.</exception>
    public MvqCodes Encode(IReadOnlyList<Image<Rgb24>> images) =>
        Encode(MvqImages.FromImages(images, Channels, Height, Width).Pixels);

    /// <summary>Reconstructions (encode then decode, evaluation mode) of images [count, C, H, W], as a new array of the same shape.</summary>
    /// <exception cref="ArgumentException"><paramref name="images"/> is empty or not a whole number of images.</exception>
    public float[] Reconstruct(ReadOnlySpan<float> images)
    {
        var output = new float[images.Length];
        Reconstruct(images, output);
        return output;
    }

    /// <summary>Reconstructions of images [count, C, H, W] written into <paramref name="output"/> (same shape; may not overlap the input).</summary>
    /// <exception cref="ArgumentException">Not a whole number of images, or <paramref name="output"/> too short.</exception>
    public void Reconstruct(ReadOnlySpan<float> images, Span<float> output)
    {
        int n = Count(images, nameof(images));
        if (output.Length < images.Length) throw new ArgumentException($"output holds {output.Length} floats, {n} images need {images.Length}", nameof(output));
        RunForward(images, n, output, default, InferenceBatch);
    }

    /// <summary>Reconstructions of ImageSharp images, as images of the model's size.</summary>
    public Image<Rgb24>[] Reconstruct(IReadOnlyList<Image<Rgb24>> images)
    {
        var rec = Reconstruct(MvqImages.FromImages(images, Channels, Height, Width).Pixels);
        return Enumerable.Range(0, images.Count).Select(i => ToImage(rec.AsSpan(i * ImageSize, ImageSize))).ToArray();
    }

    /// <summary>Images [count, C, H, W] decoded from codes (for MVQ random-mask samples, with their mask words).</summary>
    /// <exception cref="ArgumentException">The codes' length differs from <see cref="CodeLength"/>, or a token is outside its segment's vocabulary.</exception>
    public float[] Decode(MvqCodes codes) => Decode(codes, InferenceBatch);

    /// <summary>
    /// As <see cref="Decode(MvqCodes)"/>, decoding <paramref name="batch"/> codes per pass instead of
    /// <see cref="InferenceBatch"/> (a larger batch uses more memory; on some devices it can change float rounding).
    /// </summary>
    /// <exception cref="ArgumentException">The codes' length differs from <see cref="CodeLength"/>, a token is outside its segment's vocabulary, or mask words for a VQ model.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batch"/> &lt; 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public float[] Decode(MvqCodes codes, int batch)
    {
        ArgumentNullException.ThrowIfNull(codes);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        if (codes.Length != CodeLength) throw new ArgumentException($"codes of length {codes.Length}, this model's are {CodeLength}", nameof(codes));
        lock (_gate)
        {
            ThrowIfDisposed();
            return new InferenceSession(Net, batch).Decode(codes.Values, codes.MaskWords);
        }
    }

    /// <summary>Images decoded from codes [count, CodeLength] into <paramref name="output"/> [count, C, H, W].</summary>
    /// <exception cref="ArgumentException">Not a whole number of codes, a token outside its vocabulary, or <paramref name="output"/> too short.</exception>
    public void Decode(ReadOnlySpan<int> codes, Span<float> output)
    {
        if (codes.Length == 0 || codes.Length % CodeLength != 0)
            throw new ArgumentException($"{codes.Length} ints are not a whole, non-zero number of codes of length {CodeLength}", nameof(codes));
        int n = codes.Length / CodeLength;
        if (output.Length < (long)n * ImageSize) throw new ArgumentException($"output holds {output.Length} floats, {n} images need {(long)n * ImageSize}", nameof(output));
        var arr = codes.ToArray();
        lock (_gate)
        {
            ThrowIfDisposed();
            new InferenceSession(Net, InferenceBatch).Decode(arr).AsSpan().CopyTo(output);
        }
    }

    /// <summary>One image [C, H, W] in [0, 1] as an ImageSharp image (values clamped, rounded to 8 bits; gray copied to R, G, B).</summary>
    /// <exception cref="ArgumentException"><paramref name="pixels"/> is not one image of this model's size.</exception>
    public Image<Rgb24> ToImage(ReadOnlySpan<float> pixels)
    {
        if (pixels.Length != ImageSize) throw new ArgumentException($"{pixels.Length} floats, one image is {ImageSize}", nameof(pixels));
        var img = new Image<Rgb24>(Width, Height);
        int plane = Height * Width;
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
            {
                int o = y * Width + x;
                img[x, y] = Channels == 1
                    ? new Rgb24(Byte(pixels[o]), Byte(pixels[o]), Byte(pixels[o]))
                    : new Rgb24(Byte(pixels[o]), Byte(pixels[plane + o]), Byte(pixels[2 * plane + o]));
            }
        return img;
    }

    private static byte Byte(float v) => v >= 1f ? (byte)255 : v > 0f ? (byte)MathF.Round(v * 255f) : (byte)0;

    private int Count(ReadOnlySpan<float> images, string name)
    {
        int per = ImageSize;
        if (images.Length == 0 || images.Length % per != 0)
            throw new ArgumentException($"{images.Length} floats are not a whole, non-zero number of {Channels}x{Height}x{Width} images", name);
        return images.Length / per;
    }

    // Forward passes of InferenceBatch images: reconstructions into output and/or codes into codes.
    private void RunForward(ReadOnlySpan<float> images, int n, Span<float> output, Span<int> codes, int batch)
    {
        int per = ImageSize, cl = CodeLength;
        lock (_gate)
        {
            ThrowIfDisposed();
            Net.SetTraining(false);
            var im = Net.Config.Image;
            var host = codes.IsEmpty ? null : new int[batch * cl];
            for (int start = 0; start < n; start += batch)
            {
                int b = Math.Min(batch, n - start);
                using var x = _backend.FromArray(images.Slice(start * per, b * per), b, im.Channels, im.Height, im.Width);
                var y = Net.Forward(x);
                if (!output.IsEmpty) _backend.Download(y.Buffer, y.Offset, output.Slice(start * per, b * per));
                if (host is not null)
                {
                    Net.Bottleneck.ReadCodes(host.AsSpan(0, b * cl));
                    host.AsSpan(0, b * cl).CopyTo(codes.Slice(start * cl));
                }
            }
        }
    }

    /// <summary>
    /// Trains the model on <paramref name="data"/> from the current weights: <see cref="MvqTrainOptions.Steps"/> steps of
    /// AdamW with the recipe's warm-up and cosine schedule. Each call starts a new optimiser and schedule.
    /// </summary>
    /// <param name="data">Images of the model's shape.</param>
    /// <param name="options">Steps, batch, learning rate, seed and checkpointing; null: the recipe's (or the checkpoint's) train settings.</param>
    /// <param name="progress">Told every <c>logEvery</c> steps (25 by default) and after the last step.</param>
    /// <param name="cancellationToken">Checked between steps; the model keeps the weights of the last completed step.</param>
    /// <returns>Steps run, seconds, and the last reported losses.</returns>
    /// <exception cref="ArgumentException">The data's image shape differs from the model's.</exception>
    /// <exception cref="MvqConfigException">An option is out of range.</exception>
    /// <exception cref="TrainingDivergedException">A loss or gradient went non-finite; no checkpoint is written after it.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the weights are those of the last completed step.</exception>
    public MvqTrainResult Train(MvqImages data, MvqTrainOptions? options = null, IProgress<MvqTrainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        return TrainCore(data, options, progress, cancellationToken, null);
    }

    /// <summary>Hooks of `mvq train` (resume from a checkpoint file, profiler steps, the divergence message).</summary>
    internal sealed class TrainHooks
    {
        public Func<Trainer, string?>? Resume;
        public TrainerOptions? TrainerOptions;
        public int ProfileFrom = -1, ProfileTo = -1;
        public Action<StepStats>? OnLog;
    }

    internal MvqTrainResult TrainCore(MvqImages data, MvqTrainOptions? options, IProgress<MvqTrainProgress>? progress, CancellationToken ct, TrainHooks? hooks)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            var tc = TrainConfig.FromJson(_train.ToJson());
            options?.ApplyTo(tc);
            ConfigChecks.Check(tc, "train options");
            var ds = data.Data;
            var im = Net.Config.Image;
            if (ds.Channels != im.Channels || ds.Height != im.Height || ds.Width != im.Width)
                throw new ArgumentException($"the data ({ds.Name}) has {ds.Channels}x{ds.Height}x{ds.Width} images, the model takes {im.Channels}x{im.Height}x{im.Width}", nameof(data));
            // A batch larger than the dataset repeats images within one step and only costs memory.
            if (tc.Batch > ds.Count) tc.Batch = ds.Count;
            ConfigChecks.CheckMemory(Net.Config, tc.Batch, training: true, "train options");
            _trainer?.Dispose();
            _trainer = null;
            var trainer = new Trainer(_backend, Net, tc, ds, hooks?.TrainerOptions);
            _trainer = trainer;
            _train = tc;
            string? ckpt = options?.CheckpointPath;
            int? savedStep = null;
            if (hooks?.Resume is not null)
            {
                var resumedFrom = hooks.Resume(trainer);
                if (resumedFrom is not null && ckpt is not null && Path.GetFullPath(resumedFrom) == Path.GetFullPath(ckpt)) savedStep = trainer.Step;
            }
            var started = System.Diagnostics.Stopwatch.StartNew();
            var lastSave = System.Diagnostics.Stopwatch.StartNew();
            int firstStep = trainer.Step;
            StepStats? last = null;
            TrainingDivergedException? reported = null;
            TrainingDivergedException Diverged(TrainingDivergedException e) => new(e.Step, e.What,
                ckpt is null ? "no checkpoint was written"
                : savedStep is int k ? $"{ckpt} is kept as it was (step {k})"
                : File.Exists(ckpt) ? $"{ckpt} is kept as it was" : "no checkpoint was written");
            try
            {
                while (trainer.Step < tc.Steps)
                {
                    ct.ThrowIfCancellationRequested();
                    if (trainer.Step == hooks?.ProfileFrom) _backend.ProfilerStart();
                    var st = trainer.TrainStep();
                    if (trainer.Step == hooks?.ProfileTo) _backend.ProfilerStop();
                    if (st != null)
                    {
                        last = st;
                        hooks?.OnLog?.Invoke(st);
                        progress?.Report(new MvqTrainProgress(st.Step, tc.Steps, st.Loss, st.Reconstruction, st.GradNorm, st.Lr, st.ImagesPerSecond) { Stats = st });
                    }
                    bool byStep = tc.CheckpointEvery > 0 && trainer.Step % tc.CheckpointEvery == 0;
                    bool byTime = tc.CheckpointMinutes > 0 && lastSave.Elapsed.TotalMinutes >= tc.CheckpointMinutes;
                    if (ckpt is not null && (byStep || byTime) && trainer.Step < tc.Steps)
                    {
                        try { ModelCheckpoint.Save(ckpt, Net, trainer); }
                        catch (TrainingDivergedException e) { throw reported = Diverged(e); }
                        savedStep = trainer.Step;
                        lastSave.Restart();
                    }
                }
                if (ckpt is null) trainer.ThrowIfDiverged();   // with a checkpoint, Save refuses a diverged run itself
                if (ckpt is not null)
                {
                    try { ModelCheckpoint.Save(ckpt, Net, trainer); }
                    catch (TrainingDivergedException e) { throw reported = Diverged(e); }
                }
            }
            catch (TrainingDivergedException e) when (!ReferenceEquals(e, reported))
            {
                throw Diverged(e);
            }
            finally
            {
                Net.SetTraining(false);
            }
            return new MvqTrainResult(trainer.Step, trainer.Step - firstStep, started.Elapsed.TotalSeconds, last?.Loss ?? double.NaN, last?.Reconstruction ?? double.NaN);
        }
    }

    /// <summary>
    /// Reconstruction quality and code usage over the first <paramref name="limit"/> images (evaluation mode, 256 images
    /// per pass): mean MSE, PSNR (dB) and SSIM per image, and the share of primary codes used. No feature-space figures
    /// (see <see cref="Evaluate(MvqImages, MvqEvalOptions)"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The data's image shape differs from the model's.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> &lt; 1.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public MvqEvaluation Evaluate(MvqImages data, int? limit = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (limit is < 1) throw new ArgumentOutOfRangeException(nameof(limit), limit, "must be >= 1");
        var ds = CheckShape(data);
        lock (_gate)
        {
            ThrowIfDisposed();
            return ToPublic(Evaluator.Run(Net, ds, 256, limit));
        }
    }

    /// <summary>
    /// The figures of <c>mvq eval</c> over the first <see cref="MvqEvalOptions.Limit"/> images: MSE, PSNR (dB), SSIM,
    /// code usage per segment and the code's bits, and, through a feature network, rFID, KID, precision/recall, the PRD
    /// F-scores and the perceptual distance of the reconstructions against the originals. The embedded network takes
    /// 1x28x28 images; for other shapes the feature figures are skipped (<see cref="MvqEvaluation.FeatureMetricsSkipped"/>
    /// says why) unless <see cref="MvqEvalOptions.FeaturesPath"/> names a network of that shape.
    /// </summary>
    /// <exception cref="ArgumentException">The data's image shape differs from the model's.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Limit or Batch &lt; 1.</exception>
    /// <exception cref="MvqUsageException">The network of <see cref="MvqEvalOptions.FeaturesPath"/> takes images of another shape.</exception>
    /// <exception cref="MvqInputException">The feature network file is missing or not a feature network.</exception>
    /// <exception cref="MvqConfigException">A pass of Batch images does not fit the memory limit.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public MvqEvaluation Evaluate(MvqImages data, MvqEvalOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Limit is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Limit, "Limit must be >= 1");
        if (options.Batch < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Batch, "Batch must be >= 1");
        var ds = CheckShape(data);
        lock (_gate)
        {
            ThrowIfDisposed();
            int bs = Math.Min(options.Batch, ds.Count);
            ConfigChecks.CheckMemory(Net.Config, bs, training: false, Source);
            int c = Channels, h = Height, w = Width;
            string? skipped = !options.Features ? "not asked for"
                : options.FeaturesPath is null && !FeatureNet.HasDefault ? "no feature network is embedded in this build; pass --features" : null;
            var net = skipped != null ? null : FeatureNet.Load(_backend, options.FeaturesPath);
            if (net != null && options.FeaturesPath is null && (net.Config.Channels, net.Config.Height, net.Config.Width) != (c, h, w))
            {
                // The embedded network is FashionMNIST's; other image shapes need their own (FeaturesPath, mvq eval --features).
                skipped = $"the default feature network takes {net.Config.Channels}x{net.Config.Height}x{net.Config.Width} images, the model {c}x{h}x{w}; pass --features";
                net.Dispose(); net = null;
            }
            if (net != null && (net.Config.Channels, net.Config.Height, net.Config.Width) != (c, h, w))
            {
                var nc = net.Config; net.Dispose();
                throw new MvqUsageException($"--features: the network takes {nc.Channels}x{nc.Height}x{nc.Width} images, the model {c}x{h}x{w}");
            }
            EvalReport rep;
            try { rep = Evaluator.Run(Net, ds, bs, options.Limit, features: net, options: DistributionOptionsOf(options)); }
            finally { net?.Dispose(); }
            return ToPublic(rep) with { FeatureMetricsSkipped = skipped };
        }
    }

    internal static DistributionOptions DistributionOptionsOf(MvqEvalOptions o) =>
        new(KidSubsets: Math.Max(1, o.KidSubsets), PrLimit: Math.Max(4, o.PrLimit), Batch: Math.Max(1, o.Batch));

    private ImageDataset CheckShape(MvqImages data)
    {
        var ds = data.Data;
        if (ds.Channels != Channels || ds.Height != Height || ds.Width != Width)
            throw new ArgumentException($"the data ({ds.Name}) has {ds.Channels}x{ds.Height}x{ds.Width} images, the model takes {Channels}x{Height}x{Width}", nameof(data));
        return ds;
    }

    private static MvqEvaluation ToPublic(EvalReport r) =>
        new(r.Images, r.Mse, r.Psnr, r.Ssim, r.CodebookUsage, r.Perplexity, r.Seconds)
        {
            Dataset = r.Dataset,
            Codes = r.Codes.ToDictionary(kv => kv.Key, kv => new MvqCodeUsage(kv.Value.Vocabulary, kv.Value.UsedFraction, kv.Value.Perplexity)),
            TokensPerInstance = r.Budget?.Tokens ?? 0,
            BitsPerInstance = r.Budget?.Bits ?? 0,
            BitsPerSegment = r.Budget?.BitsPerSegment ?? new Dictionary<string, double>(),
            Distribution = r.Distribution is { } d ? ToPublic(d) : null,
            ReconstructionSeconds = r.ReconstructionSeconds,
        };

    internal static MvqDistributionScores ToPublic(DistributionReport d) =>
        new(d.Images, d.Fid, d.Kid, d.KidStd, d.Precision, d.Recall, d.F8, d.F1_8, d.Perceptual, d.PrImages, d.Network) { StageSeconds = d.Seconds };

    /// <summary>
    /// Writes the model (and, after <see cref="Train"/>, the optimiser state and step, so <c>mvq train --resume</c>
    /// continues it) to <paramref name="path"/> atomically: an interrupted save never leaves a half-written file.
    /// </summary>
    /// <exception cref="TrainingDivergedException">A weight is not finite; nothing is written.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        lock (_gate)
        {
            ThrowIfDisposed();
            ModelCheckpoint.Save(path, Net, _trainer);
        }
    }

    internal Backend Backend => _backend;

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Frees the model's memory (and its CUDA device, when it opened one). Calls after it throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _trainer?.Dispose();
            Net.Dispose();
            if (_ownsBackend) _backend.Dispose();
        }
    }
}
