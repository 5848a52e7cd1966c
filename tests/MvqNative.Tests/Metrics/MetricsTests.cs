// Tests of the distribution metrics (FID, KID, precision/recall, PRD), the symmetric eigensolver and
// the code budget. Expected numbers come from tools/reference/metrics_reference.py (numpy/scipy) on
// the same closed-form inputs.
using MvqNative.Metrics;
using MvqNative.Models;
using Xunit;

namespace MvqNative.Tests.Metrics;

public class MetricsTests
{
    internal static FeatureSet Real(int n = 40, int d = 5) =>
        Build(n, d, (i, j) => Math.Sin(0.37 * i * (j + 1) + 1.1 * j) + 0.1 * j);

    internal static FeatureSet Fake(int n = 40, int d = 5) =>
        Build(n, d, (i, j) => 1.3 * Math.Cos(0.23 * i * (j + 2) + 0.5 * j) + 0.05 * i / n);

    internal static FeatureSet Build(int n, int d, Func<int, int, double> f)
    {
        var v = new float[n * d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) v[i * d + j] = (float)f(i, j);
        return new FeatureSet(v, n, d);
    }

    private static double[] Sym(int n = 6)
    {
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double x = Math.Cos(0.9 * i * j + 0.3 * (i + j)) + (i == j ? 2.0 + i : 0);
                double y = Math.Cos(0.9 * j * i + 0.3 * (j + i)) + (i == j ? 2.0 + j : 0);
                a[i * n + j] = (x + y) / 2;
            }
        return a;
    }

    [Fact]
    public void EigenvaluesMatchScipyEigh()
    {
        double[] want = [1.3542454289389458, 2.6203447890730183, 3.724937984541027, 5.345776214512388, 6.20849730397577, 8.4878798360932];
        var a = Sym();
        var (values, vectors) = SymmetricEigen.Decompose(a, 6);
        for (int i = 0; i < 6; i++) Assert.Equal(want[i], values[i], 12);
        // A V = V diag(values)
        for (int i = 0; i < 6; i++)
            for (int k = 0; k < 6; k++)
            {
                double av = 0;
                for (int j = 0; j < 6; j++) av += a[i * 6 + j] * vectors[j * 6 + k];
                Assert.Equal(values[k] * vectors[i * 6 + k], av, 11);
            }
    }

    [Fact]
    public void SquareRootMatchesScipySqrtm()
    {
        var s = Sym();
        var spd = Fid.Multiply(s, s, 6); // s is symmetric: s s^T
        for (int i = 0; i < 6; i++) spd[i * 6 + i] += 1;
        var r = SymmetricEigen.SqrtPsd(spd, 6);
        double[] row0 = [3.205635315763533, 0.874566010373688, 0.7720917088194488, 0.5919179300161249, 0.3512736207123975, 0.0755211744729074];
        for (int j = 0; j < 6; j++) Assert.Equal(row0[j], r[j], 11);
        double tr = 0;
        for (int i = 0; i < 6; i++) tr += r[i * 6 + i];
        Assert.Equal(28.61855682368509, tr, 10);
        var back = Fid.Multiply(r, r, 6);
        for (int i = 0; i < 36; i++) Assert.Equal(spd[i], back[i], 10);
    }

    [Fact]
    public void FidMatchesScipyAndIsZeroOnItself()
    {
        // Full-rank covariances (a rank-deficient one puts sqrt of rounding noise, ~1e-8, into the trace term).
        Assert.Equal(0.4983840186172106, Fid.Compute(Real(), Fake()), 11);
        Assert.Equal(0.0, Fid.Compute(Real(), Real()), 10);
        Assert.Equal(Fid.Compute(Real(), Fake()), Fid.Compute(Fake(), Real()), 9);
    }

    [Fact]
    public void KidMatchesNumpyUnbiasedMmd()
    {
        // Dot products are float32 (SIMD) before the cubic kernel: 1e-5 relative, not float64 rounding.
        double mmd = Kid.Mmd2Unbiased(Real(), Fake());
        Assert.True(Math.Abs(mmd - 0.07735540115059658) < 1e-5 * 0.0774, $"{mmd}");
        // Subsets of the whole set: every subset is a permutation of it, MMD is permutation invariant.
        var kid = Kid.Compute(Real(), Fake(), subsets: 5, subsetSize: 1000, seed: 3);
        Assert.Equal(40, kid.SubsetSize);
        Assert.Equal(mmd, kid.Mean, 6);
        Assert.True(kid.Std < 1e-6);
        // Same distribution: KID near zero (unbiased, so it may be slightly negative).
        var a = Build(200, 4, (i, j) => Math.Sin(1.7 * i + j));
        var b = Build(200, 4, (i, j) => Math.Sin(1.7 * (i + 200) + j));
        Assert.True(Math.Abs(Kid.Compute(a, b, 4, 100, 1).Mean) < 0.05);
    }

    [Fact]
    public void PrecisionRecallOnConstructedSets()
    {
        var reals = Build(10, 2, (i, j) => j == 0 ? i : 0);
        // Identical sets: every point lies on a point of the other set.
        var same = PrecisionRecall.Compute(reals, reals, 3);
        Assert.Equal((1.0, 1.0), (same.Precision, same.Recall));
        // Far apart: nothing inside.
        var far = PrecisionRecall.Compute(reals, Build(10, 2, (i, j) => j == 0 ? 1000 + i : 0), 3);
        Assert.Equal((0.0, 0.0), (far.Precision, far.Recall));
        // Fakes at x = 0..4 and x = 100..104. Real radii (3rd neighbour): 3 at the ends, 2 inside, so precision = 5/10.
        // Fake radii: 3 at x = 0 and 4, 2 at 1..3: the ball of x = 4 reaches real 7, so reals 0..7 are covered: recall 8/10.
        var fakes = Build(10, 2, (i, j) => j == 0 ? (i < 5 ? i : 95 + i) : 0);
        var pr = PrecisionRecall.Compute(reals, fakes, 3);
        Assert.Equal(0.5, pr.Precision, 12);
        Assert.Equal(0.8, pr.Recall, 12);
        // k = 1: real radii are 1, fake radius of x = 4 is 1: reals 0..5 covered.
        Assert.Equal(0.6, PrecisionRecall.Compute(reals, fakes, 1).Recall, 12);
    }

    [Fact]
    public void PrdCurveAndFScoresMatchNumpy()
    {
        double[] real = [0.1, 0.2, 0.3, 0.4, 0.0], fake = [0.25, 0.25, 0.25, 0.0, 0.25];
        var (p, r) = Prd.Curve(real, fake, 1001);
        Assert.Equal(0.55, p[500], 12);
        Assert.Equal(0.55, r[500], 12);
        var (f8, f18) = Prd.FScores(p, r);
        Assert.Equal(0.5981495135446103, f8, 10);
        Assert.Equal(0.733052815718426, f18, 10);
    }

    [Fact]
    public void PrdOfIdenticalAndDisjointSets()
    {
        var a = Build(300, 3, (i, j) => Math.Sin(0.7 * i * (j + 1)));
        var same = Prd.Compute(a, a, clusters: 10, runs: 2);
        Assert.True(same.F8 > 0.999 && same.F1_8 > 0.999, $"{same.F8} {same.F1_8}");
        var far = Prd.Compute(a, Build(300, 3, (i, j) => 100 + Math.Sin(0.7 * i * (j + 1))), clusters: 10, runs: 2);
        Assert.True(far.F8 < 0.01 && far.F1_8 < 0.01, $"{far.F8} {far.F1_8}");
    }

    [Fact]
    public void BitsPerInstanceCountEveryTokenAndTheWinner()
    {
        var vq = CodeBudget.Of([new CodeSegment("k1", 0, 2, 16)]);
        Assert.Equal((2, 8.0), (vq.Tokens, vq.Bits));
        var mvq = CodeBudget.Of([new CodeSegment("k1", 0, 2, 8), new CodeSegment("k2", 2, 1, 8), new CodeSegment("w", 3, 1, 256)]);
        Assert.Equal(4, mvq.Tokens);
        Assert.Equal(6 + 3 + 8, mvq.Bits, 12);
        Assert.Equal(8.0, mvq.BitsPerSegment["w"], 12);
    }
}
