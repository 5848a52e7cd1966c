/*
 * abi_first_encode.c: start-up cost of the C ABI. Loads MODEL and encodes one blank image, printing the
 * milliseconds from main() to the loaded model and to the first code as JSON. `mvq bench api` runs it
 * repeatedly and also times the whole process from outside.
 *   abi_first_encode MODEL
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mvq.h"

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (argc != 2) { fprintf(stderr, "usage: %s MODEL\n", argv[0]); return 1; }
    mvq_model m;
    if (mvq_load(argv[1], "cpu", &m) != MVQ_OK) { fprintf(stderr, "error: %s\n", mvq_last_error()); return 1; }
    double loaded = ms_since(&t0);
    int32_t c, h, w, cl;
    mvq_model_info(m, &c, &h, &w, &cl);
    float *x = calloc((size_t)c * h * w, sizeof(float));
    int32_t *codes = malloc((size_t)cl * sizeof(int32_t));
    if (mvq_encode(m, x, 1, c, h, w, codes, cl) != MVQ_OK) { fprintf(stderr, "error: %s\n", mvq_last_error()); return 1; }
    double first = ms_since(&t0);
    mvq_free(m);
    free(x); free(codes);
    printf("{\"load_ms\": %.3f, \"first_encode_ms\": %.3f}\n", loaded, first);
    return 0;
}
