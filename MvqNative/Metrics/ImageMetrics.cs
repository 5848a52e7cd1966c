namespace MvqNative.Metrics;

/// <summary>
/// Per-image quality figures for pixels in [0, 1]: MSE, PSNR (10 log10(1/mse), capped at
/// 100 dB for exact matches) and SSIM (Wang et al. 2004: 7x7 uniform window, K1 = 0.01,
/// K2 = 0.03, L = 1, sample covariance, mean over the valid windows and channels).
/// </summary>
internal static class ImageMetrics
{
    public static double Mse(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException("images differ in size");
        double s = 0;
        for (int i = 0; i < a.Length; i++) { double d = a[i] - b[i]; s += d * d; }
        return s / Math.Max(1, a.Length);
    }

    public static double Psnr(double mse) => mse <= 1e-10 ? 100.0 : 10.0 * Math.Log10(1.0 / mse);

    /// <summary>SSIM of two images [C, H, W]; the window shrinks for images smaller than 7.</summary>
    public static double Ssim(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int channels, int height, int width)
    {
        const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
        int win = Math.Min(7, Math.Min(height, width));
        int n = win * win;
        double total = 0; int count = 0;
        for (int c = 0; c < channels; c++)
        {
            int off = c * height * width;
            for (int i = 0; i + win <= height; i++)
                for (int j = 0; j + win <= width; j++)
                {
                    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
                    for (int u = 0; u < win; u++)
                        for (int v = 0; v < win; v++)
                        {
                            int k = off + (i + u) * width + j + v;
                            double a = x[k], b = y[k];
                            sx += a; sy += b; sxx += a * a; syy += b * b; sxy += a * b;
                        }
                    double mx = sx / n, my = sy / n;
                    double cov = n / (n - 1.0);
                    double vx = (sxx / n - mx * mx) * cov, vy = (syy / n - my * my) * cov, vxy = (sxy / n - mx * my) * cov;
                    total += (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
                    count++;
                }
        }
        return total / Math.Max(1, count);
    }
}
