// Eigendecomposition of real symmetric matrices (cyclic Jacobi rotations, float64) and the
// square root of a symmetric positive semi-definite matrix built from it (FID).
namespace MvqNative.Metrics;

/// <summary>
/// Symmetric eigendecomposition A = V diag(values) V^T by cyclic Jacobi rotations in float64.
/// Jacobi is slow for large n (O(n^3) per sweep, ~10 sweeps) but accurate to a few ulps in the
/// eigenvalues, which is what a Frechet distance of 128-wide features needs; written here rather than
/// taking a linear-algebra package for one routine (docs/metrics.md).
/// </summary>
internal static class SymmetricEigen
{
    /// <summary>Eigenvalues (ascending) and eigenvectors (columns of <c>vectors</c>, [n, n] row-major) of the symmetric <paramref name="a"/> [n, n].</summary>
    public static (double[] Values, double[] Vectors) Decompose(ReadOnlySpan<double> a, int n)
    {
        if (a.Length != n * n) throw new ArgumentException($"matrix has {a.Length} values, not {n}x{n}");
        var m = a.ToArray();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
            {
                if (double.IsNaN(m[i * n + j]) || double.IsInfinity(m[i * n + j])) throw new ArgumentException("matrix has NaN or infinite entries");
                double s = 0.5 * (m[i * n + j] + m[j * n + i]); // symmetrise rounding noise
                m[i * n + j] = s; m[j * n + i] = s;
            }
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1;
        double scale = 0;
        for (int i = 0; i < n * n; i++) scale += m[i] * m[i];
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++) off += m[p * n + q] * m[p * n + q];
            if (off <= 1e-30 * scale || off == 0) break;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double apq = m[p * n + q];
                    if (apq == 0) continue;
                    double app = m[p * n + p], aqq = m[q * n + q];
                    // tan of the rotation angle that zeroes a[p, q]: the root of t^2 + 2 theta t - 1 = 0 of smaller magnitude.
                    double theta = (aqq - app) / (2 * apq);
                    double t = (theta >= 0 ? 1.0 : -1.0) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        double akp = m[k * n + p], akq = m[k * n + q];
                        m[k * n + p] = c * akp - s * akq; m[k * n + q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double apk = m[p * n + k], aqk = m[q * n + k];
                        m[p * n + k] = c * apk - s * aqk; m[q * n + k] = s * apk + c * aqk;
                    }
                    m[p * n + q] = 0; m[q * n + p] = 0;
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k * n + p], vkq = v[k * n + q];
                        v[k * n + p] = c * vkp - s * vkq; v[k * n + q] = s * vkp + c * vkq;
                    }
                }
        }
        // Sort ascending, permuting the eigenvector columns with the values.
        var order = Enumerable.Range(0, n).OrderBy(i => m[i * n + i]).ToArray();
        var values = new double[n];
        var vectors = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            values[j] = m[order[j] * n + order[j]];
            for (int k = 0; k < n; k++) vectors[k * n + j] = v[k * n + order[j]];
        }
        return (values, vectors);
    }

    /// <summary>
    /// The symmetric square root V diag(sqrt(max(values, 0))) V^T of a symmetric positive semi-definite
    /// matrix [n, n]; eigenvalues below zero (rounding) are clamped to zero.
    /// </summary>
    public static double[] SqrtPsd(ReadOnlySpan<double> a, int n)
    {
        var (values, vec) = Decompose(a, n);
        var r = new double[n * n];
        for (int k = 0; k < n; k++)
        {
            double s = Math.Sqrt(Math.Max(values[k], 0));
            if (s == 0) continue;
            for (int i = 0; i < n; i++)
            {
                double vi = vec[i * n + k] * s;
                for (int j = 0; j < n; j++) r[i * n + j] += vi * vec[j * n + k];
            }
        }
        return r;
    }
}
