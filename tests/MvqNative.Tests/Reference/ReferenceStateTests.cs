// The C# models against the PyTorch reference states (tests/data/reference/): same weights in,
// same forward tensors, loss terms, gradients, EMA buffers, 10-step AdamW trajectory and final
// weights out. (The presets are one set of files that both sides read: MvqNative/Models/Presets.)
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using MvqNative.Models;
using MvqNative.Optim;
using MvqNative.Quantizers;
using MvqNative.Tensors;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Reference;

public class ReferenceStateTests(ITestOutputHelper log)
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    // Tolerances: max abs error relative to the reference tensor's max abs value. Observed on the
    // tiny states (VQ and MVQ): <= 5e-7 for forward, losses, gradients and the trajectory, <= 7e-6 for final weights.
    // Forward activations and loss terms: float32 dot products summed in a different order than
    // PyTorch's (im2col GEMM vs oneDNN), a few ulps per layer over ~10 layers.
    private const double ForwardTol = 1e-5;
    // Gradients: the same rounding carried through the backward chain and the batch sums.
    private const double GradTol = 1e-5;
    // Loss and gradient-norm trajectory of the 10 steps: rounding only, as long as no code flips.
    private const double TrajectoryTol = 1e-5;
    // Weights after 10 AdamW steps at lr 1e-2: m/sqrt(v) normalises each gradient element, so an
    // element whose gradient is near rounding level moves by up to lr per step differently.
    private const double FinalTol = 1e-4;

    /// <summary>
    /// Our checkpoint buffers that the reference does not have: the dead-code restart counts
    /// and step counter of each VectorQuantizer (kept so a resumed run restarts exactly; the
    /// reference models no restarts).
    /// </summary>
    private static bool OursOnly(string name) => name.EndsWith(".restart_usage", StringComparison.Ordinal) || name.EndsWith(".steps", StringComparison.Ordinal);

    [Theory]
    [InlineData("vq_grid")]
    [InlineData("vq_global")]
    public void VqModelMatchesThePyTorchReference(string name) => Run(ReferenceState.Load(name), mvq: null);

    /// <summary>Hooks of the MVQ-only parts (masks in, hypothesis tensors out).</summary>
    internal interface IMvqHooks
    {
        /// <summary>Installs the reference's masks of <paramref name="step"/> ([B, J] words) before that step's forward.</summary>
        void SetMasks(Autoencoder model, int[] masks, int batch, int hypotheses);

        /// <summary>Compares the MVQ forward tensors of step 0 (after the training forward).</summary>
        void CompareForward(Autoencoder model, ReferenceState st, Action<string, double> report);
    }

    internal void Run(ReferenceState st, IMvqHooks? mvq)
    {
        using var model = new Autoencoder(Cpu, st.Config, seed: 0);
        var ps = model.Parameters().ToList();
        var byName = ps.ToDictionary(p => p.Name);

        // Same names: every reference parameter/buffer is ours and vice versa (ours-only bookkeeping aside).
        var refNames = st.Names("param/");
        var ourNames = ps.Select(p => p.Name).Where(n => !OursOnly(n)).OrderBy(n => n, StringComparer.Ordinal).ToList();
        Assert.Equal(refNames, ourNames);
        foreach (var n in refNames)
        {
            var p = byName[n];
            Assert.True(st.Shape("param/" + n).SequenceEqual(p.Value.Shape), $"{n}: ours [{p.Value.ShapeString}], reference [{string.Join(',', st.Shape("param/" + n))}]");
            p.Value.CopyFrom(st.F("param/" + n));
        }
        // Same weight-decay set, and the same trainable set as the reference's gradients.
        Assert.Equal(st.DecayParams.OrderBy(n => n, StringComparer.Ordinal), ps.Where(p => p.Trainable && p.Decay).Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal));
        Assert.Equal(st.Names("grad/"), ps.Where(p => p.Trainable).Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal));

        using var x = Cpu.FromArray(st.F("input/x"), st.Shape("input/x"));
        using var opt = new AdamW(ps, st.Lr, st.Beta1, st.Beta2, st.Eps, st.WeightDecay, st.Clip);
        using var rec = new ReconstructionLoss(Cpu, LossKind.Mse);
        void Report(string what, double err) => log.WriteLine($"{st.Path}: {what} rel err {err:E2}");

        ProbeForward(model, st, x, Report);

        int[]? masks = st.Has("input/masks") ? st.I("input/masks") : null;
        var losses = new float[st.Steps];
        var norms = new float[st.Steps];
        for (int step = 0; step < st.Steps; step++)
        {
            model.SetTraining(true);
            opt.ZeroGrad();
            if (mvq != null)
            {
                int j = st.Config.Mvq!.Hypotheses;
                mvq.SetMasks(model, masks!.AsSpan(step * st.Batch * j, st.Batch * j).ToArray(), st.Batch, j);
            }
            var xhat = model.Forward(x);
            rec.Compute(xhat, x);
            double total = rec.Read();
            var terms = model.Bottleneck.LossTerms.Select(t => (t.Name, Value: (double)t.Value.ToArray()[0])).ToList();
            total += terms.Sum(t => t.Value);
            if (step == 0)
            {
                Report("fwd/x_hat", RefCompare.AssertClose("fwd/x_hat", st.F("fwd/x_hat"), xhat.ToArray(), ForwardTol));
                Report("loss/rec", RefCompare.AssertClose("loss/rec", st.F("loss/rec"), [rec.Read()], ForwardTol));
                foreach (var (n, v) in terms)
                {
                    // Our VQ bottleneck calls its single term "vq"; the reference calls it "vq1".
                    var key = "loss/" + (n == "vq" ? "vq1" : n);
                    Report(key, RefCompare.AssertClose(key, st.F(key), [(float)v], ForwardTol));
                }
                var refTerms = st.Names("loss/").Where(n => n is "vq1" or "vq2" or "wta").ToList();
                Assert.Equal(refTerms, terms.Select(t => t.Name == "vq" ? "vq1" : t.Name).OrderBy(n => n, StringComparer.Ordinal));
                Report("loss/total", RefCompare.AssertClose("loss/total", st.F("loss/total"), [(float)total], ForwardTol));
                mvq?.CompareForward(model, st, Report);
                foreach (var n in st.Names("step0/"))
                    Report("step0/" + n, RefCompare.AssertClose("step0/" + n, st.F("step0/" + n), byName[n].Value.ToArray(), ForwardTol));
            }
            model.Backward(rec.Grad);
            if (step == 0)
                foreach (var n in st.Names("grad/"))
                    Report("grad/" + n, RefCompare.AssertClose("grad/" + n, st.F("grad/" + n), byName[n].Grad.ToArray(), GradTol));
            opt.Step();
            losses[step] = (float)total;
            norms[step] = opt.LastGradNorm;
        }
        Report("train/loss", RefCompare.AssertClose("train/loss", st.F("train/loss"), losses, TrajectoryTol));
        Report("train/grad_norm", RefCompare.AssertClose("train/grad_norm", st.F("train/grad_norm"), norms, TrajectoryTol));
        Assert.Equal(refNames, st.Names("final/"));
        foreach (var n in refNames)
            Report("final/" + n, RefCompare.AssertClose("final/" + n, st.F("final/" + n), byName[n].Value.ToArray(), FinalTol));
    }

    /// <summary>
    /// Step 0's h, z1, k1, q1 (and z2, k2, q2 for MVQ) from the pure parts of the model, run in
    /// evaluation mode before the training step so that no EMA or BatchNorm state moves.
    /// </summary>
    private static void ProbeForward(Autoencoder model, ReferenceState st, Tensor x, Action<string, double> report)
    {
        model.SetTraining(false);
        var h = Child(model, "encoder").Forward(x);
        report("fwd/h", RefCompare.AssertClose("fwd/h", st.F("fwd/h"), h.ToArray(), ForwardTol));
        foreach (var (head, vq, s) in new[] { ("head", "vq", "1"), ("head2", "vq2", "2") })
        {
            if (!st.Has("fwd/z" + s)) continue;
            var z = Child(model.Bottleneck, head).Forward(h);
            report("fwd/z" + s, RefCompare.AssertClose("fwd/z" + s, st.F("fwd/z" + s), z.ToArray(), ForwardTol));
            var quantizer = (VectorQuantizer)Child(model.Bottleneck, vq);
            var q = quantizer.Forward(z);
            RefCompare.AssertExact("fwd/k" + s, st.I("fwd/k" + s), quantizer.Indices.ToIntArray());
            RefCompare.AssertBitwise("fwd/q" + s, st.F("fwd/q" + s), q.ToArray());
        }
        model.SetTraining(true);
    }

    private static Module Child(Module m, string name) =>
        m.Children.FirstOrDefault(c => c.Name == name).Child ?? throw new KeyNotFoundException($"{m.GetType().Name} has no child '{name}'");
}
