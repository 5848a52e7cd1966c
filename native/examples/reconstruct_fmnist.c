/*
 * reconstruct_fmnist.c: loads an MvqNative checkpoint through the C ABI (mvq.h), reconstructs the first COUNT
 * FashionMNIST test images and writes them out: OUT/NNNNN.pgm (8-bit, as `mvq reconstruct` rounds) and
 * OUT/reconstructions.f32 (all reconstructions as raw little-endian float32, [COUNT, C, H, W]).
 *
 *   reconstruct_fmnist MODEL IDX_IMAGES COUNT OUT [DEVICE]
 *   reconstruct_fmnist runs/vq/model.safetensors /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz 64 recs
 *
 * IDX_IMAGES is an IDX ubyte image file, gzip-compressed or not (read through zlib); pixels become byte / 255.
 * Exit status: 0 on success, 1 with one "error: ..." line on stderr otherwise.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "mvq.h"

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "error: %s: %s\n", what, detail);
    return 1;
}

static uint32_t be32(const unsigned char *b) { return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3]; }

/* Reads the first count images of an IDX3 ubyte file as floats byte / 255; returns NULL with a message on error. */
static float *read_idx(const char *path, long count, int *height, int *width, char *msg, size_t msg_len)
{
    gzFile f = gzopen(path, "rb");
    if (!f) { snprintf(msg, msg_len, "cannot open (%s)", strerror(errno)); return NULL; }
    unsigned char head[16];
    if (gzread(f, head, 16) != 16 || be32(head) != 0x00000803) { snprintf(msg, msg_len, "not an IDX3 ubyte image file"); gzclose(f); return NULL; }
    uint32_t n = be32(head + 4), h = be32(head + 8), w = be32(head + 12);
    if (h == 0 || w == 0 || h > 4096 || w > 4096 || (uint32_t)count > n) { snprintf(msg, msg_len, "holds %u images of %ux%u, %ld asked for", n, h, w, count); gzclose(f); return NULL; }
    size_t per = (size_t)h * w, total = per * (size_t)count;
    unsigned char *bytes = malloc(total);
    float *pixels = malloc(total * sizeof(float));
    if (!bytes || !pixels || gzread(f, bytes, (unsigned)total) != (int)total) {
        snprintf(msg, msg_len, "truncated or out of memory");
        free(bytes); free(pixels); gzclose(f); return NULL;
    }
    for (size_t i = 0; i < total; i++) pixels[i] = bytes[i] / 255.0f;
    free(bytes);
    gzclose(f);
    *height = (int)h; *width = (int)w;
    return pixels;
}

/* As the CLI's PNG writer: clamp to [0, 1], round half away from zero. */
static unsigned char to_byte(float v)
{
    if (!(v > 0.0f)) return 0;
    if (v >= 1.0f) return 255;
    return (unsigned char)roundf(v * 255.0f);
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: %s MODEL IDX_IMAGES COUNT OUT [DEVICE]\n", argv[0]);
        return 1;
    }
    const char *model_path = argv[1], *idx_path = argv[2], *out_dir = argv[4], *device = argc == 6 ? argv[5] : "cpu";
    char *end;
    long count = strtol(argv[3], &end, 10);
    if (*end || count < 1) return fail("COUNT", "must be an integer >= 1");
    if (mvq_abi_version() != MVQ_ABI_VERSION) return fail("libmvqnative", "ABI version differs from mvq.h");

    mvq_model model = 0;
    if (mvq_load(model_path, device, &model) != MVQ_OK) return fail("mvq_load", mvq_last_error());
    int32_t c, h, w, code_length;
    mvq_model_info(model, &c, &h, &w, &code_length);

    char msg[256];
    int ih, iw;
    float *images = read_idx(idx_path, count, &ih, &iw, msg, sizeof msg);
    if (!images) { mvq_free(model); return fail(idx_path, msg); }
    if (c != 1 || ih != h || iw != w) { free(images); mvq_free(model); return fail(idx_path, "images do not have the model's shape"); }

    size_t per = (size_t)c * h * w, total = per * (size_t)count;
    float *recon = malloc(total * sizeof(float));
    if (!recon) { free(images); mvq_free(model); return fail("malloc", "out of memory"); }
    if (mvq_reconstruct(model, images, count, c, h, w, recon, (int64_t)total) != MVQ_OK) {
        fail("mvq_reconstruct", mvq_last_error());
        free(images); free(recon); mvq_free(model);
        return 1;
    }
    mvq_free(model);
    free(images);

    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) { free(recon); return fail(out_dir, strerror(errno)); }
    char path[4096];
    snprintf(path, sizeof path, "%s/reconstructions.f32", out_dir);
    FILE *raw = fopen(path, "wb");
    if (!raw || fwrite(recon, sizeof(float), total, raw) != total || fclose(raw) != 0) { free(recon); return fail(path, "cannot write"); }
    unsigned char *gray = malloc(per);
    for (long i = 0; i < count; i++) {
        for (size_t k = 0; k < per; k++) gray[k] = to_byte(recon[(size_t)i * per + k]);
        snprintf(path, sizeof path, "%s/%05ld.pgm", out_dir, i);
        FILE *f = fopen(path, "wb");
        if (!f || fprintf(f, "P5\n%d %d\n255\n", w, h) < 0 || fwrite(gray, 1, per, f) != per || fclose(f) != 0) { free(gray); free(recon); return fail(path, "cannot write"); }
    }
    free(gray);
    free(recon);
    printf("wrote %ld reconstructions (%s) to %s\n", count, mvq_version(), out_dir);
    return 0;
}
