/*
 * abi_checks.c: the C ABI's contract on a real checkpoint: status codes and messages for NULL pointers, short
 * buffers, wrong shapes, bad tokens, missing files, unknown devices, freed and made-up handles; and that
 * decode(encode(x)) equals reconstruct(x) bit for bit, in one call or image by image, from two threads at once.
 * With PRIOR (a prior.safetensors of `mvq prior train` for MODEL), also sampling: seeded, decodable, its errors.
 *   abi_checks MODEL [PRIOR]
 * Prints one line per failed check and "abi_checks: N passed, M failed"; exit 0 only when none failed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mvq.h"

static int passed, failed;

static void check(int ok, const char *what)
{
    if (ok) passed++;
    else { failed++; printf("FAILED: %s (last error: %s)\n", what, mvq_last_error()); }
}

/* A call returns the expected status and leaves a non-empty message mentioning `word`. */
static void expect(mvq_status got, mvq_status want, const char *word, const char *what)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s: status %d, expected %d", what, (int)got, (int)want);
    check(got == want && (want == MVQ_OK ? mvq_last_error()[0] == 0 : strstr(mvq_last_error(), word) != NULL), buf);
}

enum { N = 70 };
static mvq_model shared_model;
static float *shared_images, *shared_expected;
static size_t shared_per;

static void *reconstruct_again(void *arg)
{
    long first = (long)(intptr_t)arg;
    float *out = malloc(10 * shared_per * sizeof(float));
    int same = 1;
    for (int round = 0; round < 3; round++) {
        if (mvq_reconstruct(shared_model, shared_images + first * shared_per, 10, 1, 28, 28, out, (int64_t)(10 * shared_per)) != MVQ_OK) same = 0;
        else if (memcmp(out, shared_expected + first * shared_per, 10 * shared_per * sizeof(float)) != 0) same = 0;
    }
    free(out);
    return (void *)(intptr_t)same;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) { fprintf(stderr, "usage: %s MODEL [PRIOR]\n", argv[0]); return 1; }
    check(mvq_abi_version() == MVQ_ABI_VERSION, "mvq_abi_version");
    check(strncmp(mvq_version(), "MvqNative ", 10) == 0, "mvq_version");
    check(mvq_last_error() != NULL, "mvq_last_error before any call");

    mvq_model m = 77;
    expect(mvq_load(NULL, "cpu", &m), MVQ_ERR_NULL, "path", "load NULL path");
    check(m == 0, "a failed load sets the handle to 0");
    expect(mvq_load(argv[1], "cpu", NULL), MVQ_ERR_NULL, "model", "load NULL output");
    expect(mvq_load("/no/such/model.safetensors", "cpu", &m), MVQ_ERR_INPUT, "/no/such/model.safetensors", "load missing file");
    expect(mvq_load(argv[0], "cpu", &m), MVQ_ERR_INPUT, argv[0], "load a file that is not a checkpoint");
    expect(mvq_load(argv[1], "tpu", &m), MVQ_ERR_DEVICE, "tpu", "load on an unknown device");
    expect(mvq_load(argv[1], NULL, &m), MVQ_OK, "", "load");

    int32_t c = 0, h = 0, w = 0, cl = 0;
    expect(mvq_model_info(m, &c, &h, &w, &cl), MVQ_OK, "", "model_info");
    check(c == 1 && h == 28 && w == 28 && cl > 0, "model_info values");
    expect(mvq_model_info(m, NULL, NULL, NULL, NULL), MVQ_OK, "", "model_info with NULL outputs");

    size_t per = (size_t)c * h * w;
    float *x = malloc(N * per * sizeof(float)), *rec = malloc(N * per * sizeof(float)), *dec = malloc(N * per * sizeof(float));
    int32_t *codes = malloc(N * (size_t)cl * sizeof(int32_t));
    srand(5);
    for (size_t i = 0; i < N * per; i++) x[i] = (float)(rand() % 256) / 255.0f;

    expect(mvq_reconstruct(m, x, N, c, h, w, rec, (int64_t)(N * per)), MVQ_OK, "", "reconstruct");
    expect(mvq_encode(m, x, N, c, h, w, codes, (int64_t)N * cl), MVQ_OK, "", "encode");
    expect(mvq_decode(m, codes, N, cl, dec, (int64_t)(N * per)), MVQ_OK, "", "decode");
    check(memcmp(rec, dec, N * per * sizeof(float)) == 0, "decode(encode(x)) == reconstruct(x) bit for bit");
    for (int i = 0; i < N; i += 23) {
        float one[28 * 28 * 3];
        expect(mvq_reconstruct(m, x + i * per, 1, c, h, w, one, (int64_t)per), MVQ_OK, "", "reconstruct one image");
        check(memcmp(one, rec + i * per, per * sizeof(float)) == 0, "one image at a time == all at once");
    }

    /* Bad arguments: the outputs are left alone. */
    float sentinel = -7.0f;
    rec[0] = sentinel;
    expect(mvq_reconstruct(m, NULL, N, c, h, w, rec, (int64_t)(N * per)), MVQ_ERR_NULL, "images", "reconstruct NULL images");
    expect(mvq_reconstruct(m, x, N, c, h, w, NULL, (int64_t)(N * per)), MVQ_ERR_NULL, "output", "reconstruct NULL output");
    expect(mvq_reconstruct(m, x, N, c, h, w, rec, (int64_t)(N * per) - 1), MVQ_ERR_BUFFER, "output", "reconstruct short output");
    expect(mvq_reconstruct(m, x, N, 3, h, w, rec, (int64_t)(N * per)), MVQ_ERR_SHAPE, "3x28x28", "reconstruct wrong channels");
    expect(mvq_reconstruct(m, x, N, c, 32, 32, rec, (int64_t)(N * per)), MVQ_ERR_SHAPE, "32", "reconstruct wrong size");
    expect(mvq_reconstruct(m, x, 0, c, h, w, rec, (int64_t)(N * per)), MVQ_ERR_ARGUMENT, "count", "reconstruct count 0");
    expect(mvq_reconstruct(m, x, -3, c, h, w, rec, (int64_t)(N * per)), MVQ_ERR_ARGUMENT, "count", "reconstruct negative count");
    expect(mvq_reconstruct(m, x, N, c, h, w, x + 5, (int64_t)(N * per)), MVQ_ERR_ARGUMENT, "overlaps", "reconstruct in place");
    check(rec[0] == sentinel, "failed calls leave the output alone");
    expect(mvq_encode(m, x, N, c, h, w, codes, (int64_t)N * cl - 1), MVQ_ERR_BUFFER, "codes", "encode short codes");
    expect(mvq_encode(m, x, N, c, h, w, NULL, (int64_t)N * cl), MVQ_ERR_NULL, "codes", "encode NULL codes");
    expect(mvq_decode(m, codes, N, cl + 1, dec, (int64_t)(N * per)), MVQ_ERR_SHAPE, "code_length", "decode wrong code length");
    expect(mvq_decode(m, NULL, N, cl, dec, (int64_t)(N * per)), MVQ_ERR_NULL, "codes", "decode NULL codes");
    expect(mvq_decode(m, codes, N, cl, dec, 10), MVQ_ERR_BUFFER, "images", "decode short images");
    int32_t saved = codes[3];
    codes[3] = 1 << 20;
    expect(mvq_decode(m, codes, N, cl, dec, (int64_t)(N * per)), MVQ_ERR_ARGUMENT, "outside", "decode a token outside the vocabulary");
    codes[3] = -1;
    expect(mvq_decode(m, codes, N, cl, dec, (int64_t)(N * per)), MVQ_ERR_ARGUMENT, "outside", "decode a negative token");
    codes[3] = saved;
    expect(mvq_prior_load(m, "/no/such/prior.safetensors", NULL), MVQ_ERR_NULL, "prior", "prior_load NULL output");
    mvq_prior p = 9;
    expect(mvq_prior_load(m, "/no/such/prior.safetensors", &p), MVQ_ERR_INPUT, "/no/such/prior.safetensors", "prior_load missing file");
    check(p == 0, "a failed prior load sets the handle to 0");
    expect(mvq_sample(m, 1, NULL, codes, cl, NULL, 0), MVQ_ERR_HANDLE, "prior", "sample with a model handle");

    if (argc == 3) {
        /* Sampling: the images are the decoded codes, the same seed gives the same samples, errors are codes. */
        mvq_prior pr = 0;
        expect(mvq_prior_load(m, argv[2], &pr), MVQ_OK, "", "prior_load");
        mvq_sample_options so = { 1.0f, 0, 1.0f, 4, 0, 2 };
        int32_t *sc = malloc(3 * (size_t)cl * sizeof(int32_t)), *sc2 = malloc(3 * (size_t)cl * sizeof(int32_t));
        float *si = malloc(3 * per * sizeof(float)), *sd = malloc(3 * per * sizeof(float));
        expect(mvq_sample(pr, 3, &so, sc, 3 * (int64_t)cl, si, 3 * (int64_t)per), MVQ_OK, "", "sample");
        expect(mvq_decode(m, sc, 3, cl, sd, 3 * (int64_t)per), MVQ_OK, "", "decode the samples' codes");
        check(memcmp(si, sd, 3 * per * sizeof(float)) == 0, "sampled images == decode(sampled codes) bit for bit");
        so.batch = 3;
        expect(mvq_sample(pr, 3, &so, sc2, 3 * (int64_t)cl, NULL, 0), MVQ_OK, "", "sample codes only, another batch size");
        check(memcmp(sc, sc2, 3 * (size_t)cl * sizeof(int32_t)) == 0, "the same seed gives the same codes");
        expect(mvq_sample(pr, 3, NULL, sc, 3 * (int64_t)cl - 1, NULL, 0), MVQ_ERR_BUFFER, "codes", "sample short codes");
        expect(mvq_sample(pr, 3, NULL, NULL, 0, NULL, 0), MVQ_ERR_NULL, "NULL", "sample with no output");
        expect(mvq_sample(pr, 0, NULL, sc, 3 * (int64_t)cl, NULL, 0), MVQ_ERR_ARGUMENT, "count", "sample count 0");
        so.temperature = 0.0f;
        expect(mvq_sample(pr, 1, &so, sc, 3 * (int64_t)cl, NULL, 0), MVQ_ERR_ARGUMENT, "temperature", "sample temperature 0");
        expect(mvq_reconstruct(pr, x, 1, c, h, w, rec, (int64_t)per), MVQ_ERR_HANDLE, "not a model handle", "a prior handle as a model");
        expect(mvq_prior_free(pr), MVQ_OK, "", "prior_free");
        expect(mvq_prior_free(pr), MVQ_ERR_HANDLE, "freed", "prior double free");
        expect(mvq_sample(pr, 1, NULL, sc, 3 * (int64_t)cl, NULL, 0), MVQ_ERR_HANDLE, "freed", "sample after prior_free");
        free(sc); free(sc2); free(si); free(sd);
    }

    /* Two threads on one model, each reconstructing its slice three times: the results of the single call. */
    shared_model = m; shared_images = x; shared_expected = dec; shared_per = per;
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, reconstruct_again, (void *)(intptr_t)(i * 10));
    for (int i = 0; i < 4; i++) { void *same; pthread_join(t[i], &same); check(same != NULL, "threads sharing a model get the sequential results"); }

    /* Handles: made-up, 0, of the other kind, freed. */
    expect(mvq_reconstruct(0, x, 1, c, h, w, rec, (int64_t)per), MVQ_ERR_HANDLE, "0", "handle 0");
    expect(mvq_reconstruct(0x1234567890abcdefULL, x, 1, c, h, w, rec, (int64_t)per), MVQ_ERR_HANDLE, "not a model handle", "made-up handle");
    expect(mvq_reconstruct(m + 1, x, 1, c, h, w, rec, (int64_t)per), MVQ_ERR_HANDLE, "handle", "neighbouring slot");
    expect(mvq_reconstruct(m + (1ULL << 24), x, 1, c, h, w, rec, (int64_t)per), MVQ_ERR_HANDLE, "freed", "wrong generation");
    expect(mvq_free(m), MVQ_OK, "", "free");
    expect(mvq_reconstruct(m, x, 1, c, h, w, rec, (int64_t)per), MVQ_ERR_HANDLE, "freed", "use after free");
    expect(mvq_free(m), MVQ_ERR_HANDLE, "freed", "double free");
    mvq_model m2 = 0;
    expect(mvq_load(argv[1], "cpu", &m2), MVQ_OK, "", "load again");
    check(m2 != m, "a reused slot gets a new handle");
    expect(mvq_reconstruct(m, x, 1, c, h, w, rec, (int64_t)per), MVQ_ERR_HANDLE, "freed", "old handle after the slot is reused");
    expect(mvq_free(m2), MVQ_OK, "", "free again");

    free(x); free(rec); free(dec); free(codes);
    printf("abi_checks: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
