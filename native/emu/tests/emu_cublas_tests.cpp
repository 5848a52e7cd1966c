// emu_cublas_tests.cpp: the emulated cuBLAS GEMMs against a naive column-major loop in
// double precision: every transpose combination, odd sizes, padded leading dimensions,
// alpha/beta, beta == 0 ignoring NaN in C, strided batches, GemmEx, and argument errors.
#include <cmath>
#include <random>

#include "emu_test_util.h"

namespace {

class Cublas : public EmuTest {
protected:
    void SetUp() override {
        EmuTest::SetUp();
        ASSERT_EQ(cublasCreate_v2(&h_), CUBLAS_STATUS_SUCCESS);
    }
    void TearDown() override {
        EXPECT_EQ(cublasDestroy_v2(h_), CUBLAS_STATUS_SUCCESS);
        EmuTest::TearDown();
    }
    cublasHandle_t h_ = nullptr;
};

std::vector<float> rnd(size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> d(-1, 1);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

/// C = alpha op(A) op(B) + beta C, column-major, as cuBLAS defines it (beta == 0: C not read).
void ref_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const std::vector<float>& A, int lda,
              const std::vector<float>& B, int ldb, float beta, std::vector<float>& C, int ldc) {
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            double s = 0;
            for (int p = 0; p < k; ++p) {
                double a = ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];
                double b = tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];
                s += a * b;
            }
            float& c = C[i + (size_t)j * ldc];
            c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * c));
        }
}

TEST_F(Cublas, SgemmAllTransposesOddSizesAndPaddedLd) {
    const int m = 19, n = 13, k = 27;
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 2, ldc = m + 5;
            auto A = rnd((size_t)lda * (ta ? m : k), 10 + ta), B = rnd((size_t)ldb * (tb ? k : n), 20 + tb);
            auto C = rnd((size_t)ldc * n, 30);
            float alpha = 0.75f, beta = -0.5f;
            CUdeviceptr dA = upload(A), dB = upload(B), dC = upload(C);
            ASSERT_EQ(cublasSgemm_v2(h_, ta, tb, m, n, k, &alpha, (const float*)dA, lda, (const float*)dB, ldb, &beta,
                                     (float*)dC, ldc),
                      CUBLAS_STATUS_SUCCESS)
                << mvqemu_last_error();
            auto got = download<float>(dC, C.size());
            ref_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
            for (size_t i = 0; i < C.size(); ++i) ASSERT_NEAR(got[i], C[i], 1e-4) << "ta=" << ta << " tb=" << tb << " i=" << i;
        }
}

TEST_F(Cublas, BetaZeroDoesNotReadC) {
    const int m = 4, n = 3, k = 5;
    auto A = rnd(m * k, 1), B = rnd(k * n, 2);
    CUdeviceptr dA = upload(A), dB = upload(B), dC = alloc(m * n * 4);  // fresh memory is NaN
    float alpha = 1, beta = 0;
    ASSERT_EQ(cublasSgemm_v2(h_, 0, 0, m, n, k, &alpha, (float*)dA, m, (float*)dB, k, &beta, (float*)dC, m), 0);
    std::vector<float> C(m * n, 0.0f);
    ref_gemm(false, false, m, n, k, 1, A, m, B, k, 0, C, m);
    auto got = download<float>(dC, C.size());
    for (size_t i = 0; i < C.size(); ++i) EXPECT_NEAR(got[i], C[i], 1e-5);
}

TEST_F(Cublas, StridedBatchedAndGemmEx) {
    const int m = 7, n = 5, k = 9, batch = 4;
    long long sA = m * k + 3, sB = k * n + 1, sC = m * n + 2;
    auto A = rnd(sA * batch, 3), B = rnd(sB * batch, 4), C = rnd(sC * batch, 5);
    float alpha = 1.5f, beta = 0.25f;
    CUdeviceptr dA = upload(A), dB = upload(B), dC = upload(C);
    ASSERT_EQ(cublasSgemmStridedBatched(h_, 1, 0, m, n, k, &alpha, (float*)dA, k, sA, (float*)dB, k, sB, &beta, (float*)dC, m,
                                        sC, batch),
              0)
        << mvqemu_last_error();
    auto got = download<float>(dC, C.size());
    for (int b = 0; b < batch; ++b) {
        std::vector<float> Ab(A.begin() + b * sA, A.begin() + b * sA + m * k), Bb(B.begin() + b * sB, B.begin() + b * sB + k * n),
            Cb(C.begin() + b * sC, C.begin() + b * sC + m * n);
        ref_gemm(true, false, m, n, k, alpha, Ab, k, Bb, k, beta, Cb, m);
        for (int i = 0; i < m * n; ++i) ASSERT_NEAR(got[b * sC + i], Cb[i], 1e-4) << "batch " << b;
    }
    // GemmEx with F32 everywhere equals Sgemm.
    auto A2 = rnd(m * k, 6), B2 = rnd(n * k, 7);
    CUdeviceptr dA2 = upload(A2), dB2 = upload(B2), dC2 = alloc(m * n * 4);
    float zero = 0;
    ASSERT_EQ(cublasGemmEx(h_, 0, 1, m, n, k, &alpha, (void*)dA2, 0, m, (void*)dB2, 0, n, &zero, (void*)dC2, 0, m, 68, -1), 0);
    std::vector<float> C2(m * n);
    ref_gemm(false, true, m, n, k, alpha, A2, m, B2, n, 0, C2, m);
    auto got2 = download<float>(dC2, C2.size());
    for (int i = 0; i < m * n; ++i) EXPECT_NEAR(got2[i], C2[i], 1e-4);
    EXPECT_EQ(cublasGemmEx(h_, 0, 1, m, n, k, &alpha, (void*)dA2, 2, m, (void*)dB2, 2, n, &zero, (void*)dC2, 2, m, 64, -1),
              CUBLAS_STATUS_NOT_SUPPORTED);
}

TEST_F(Cublas, ArgumentErrorsAndOutOfRangeMatrices) {
    CUdeviceptr dA = alloc(16 * 4), dB = alloc(16 * 4), dC = alloc(16 * 4);
    float one = 1;
    EXPECT_EQ(cublasSgemm_v2(h_, 0, 0, 4, 4, 4, &one, (float*)dA, 3, (float*)dB, 4, &one, (float*)dC, 4),
              CUBLAS_STATUS_INVALID_VALUE);  // lda < m
    EXPECT_EQ(cublasSgemm_v2(h_, 0, 0, -1, 4, 4, &one, (float*)dA, 4, (float*)dB, 4, &one, (float*)dC, 4),
              CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_EQ(cublasSgemm_v2(nullptr, 0, 0, 4, 4, 4, &one, (float*)dA, 4, (float*)dB, 4, &one, (float*)dC, 4),
              CUBLAS_STATUS_NOT_INITIALIZED);
    // ldc = 5 makes C span 19 floats of a 16-float buffer.
    EXPECT_EQ(cublasSgemm_v2(h_, 0, 0, 4, 4, 4, &one, (float*)dA, 4, (float*)dB, 4, &one, (float*)dC, 5),
              CUBLAS_STATUS_EXECUTION_FAILED);
    EXPECT_NE(std::string(mvqemu_last_error()).find("cublasSgemm_v2"), std::string::npos);
    CUstream s;
    CU_OK(cuStreamCreate(&s, 0));
    EXPECT_EQ(cublasSetStream_v2(h_, s), 0);
    CUstream got = nullptr;
    EXPECT_EQ(cublasGetStream_v2(h_, &got), 0);
    EXPECT_EQ(got, s);
    EXPECT_EQ(cublasSetMathMode(h_, 3), 0);
    EXPECT_STREQ(cublasGetStatusName(13), "CUBLAS_STATUS_EXECUTION_FAILED");
    CU_OK(cuStreamDestroy_v2(s));
}

}  // namespace
