/*
 * mvq.h: the C ABI of MvqNative (C99, usable from C++).
 *
 * libmvqnative.so is a NativeAOT build of the managed library (native/abi): the .NET runtime, the library and
 * the CUDA kernel sources are inside it, so a program needs only this header and the .so (plus, for the cuda
 * device, the NVIDIA driver and NVRTC; for cuda-emu, libmvq_emu.so).
 *
 * Conventions
 *  - Every function but mvq_abi_version, mvq_version and mvq_last_error returns an mvq_status: MVQ_OK (0) or an
 *    error code. No C++ exception or .NET exception ever leaves the library; nothing aborts the process on bad input.
 *  - After each call, mvq_last_error() returns a one-line UTF-8 message for the calling thread: "" after a success,
 *    the reason after a failure. The pointer stays valid until the next mvq_* call on the same thread.
 *  - Images are float arrays in [0, 1], laid out [count, channels, height, width] (NCHW, row-major); codes are
 *    int32 arrays [count, code_length]. Sizes and capacities are counted in elements (floats or ints), not bytes.
 *  - Buffers are owned by the caller; the library reads inputs and writes outputs during the call only and keeps
 *    no pointer afterwards. Outputs are written only by calls that return MVQ_OK.
 *  - Handles (mvq_model, mvq_prior) are opaque 64-bit values, not pointers: a handle that was freed, a handle of
 *    the other kind, 0, or any made-up value gives MVQ_ERR_HANDLE, never a crash.
 *  - Threads: every function may be called from any thread. Calls on one model (and on priors loaded for it) run
 *    one at a time (the model holds a lock); calls on different models run concurrently. Free a handle only when
 *    no other thread is using it (a call still running when its model is freed fails with MVQ_ERR_HANDLE or
 *    completes).
 *  - Results are those of the managed API (MvqModel) and of the mvq command line, bit for bit on the same device:
 *    inference runs in evaluation mode, in batches of 64 images, whatever count a call passes.
 */
#ifndef MVQ_H
#define MVQ_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes; mvq_abi_version() returns the library's. */
#define MVQ_ABI_VERSION 1

/** Status codes. */
typedef enum mvq_status {
    MVQ_OK = 0,            /**< success */
    MVQ_ERR_NULL = 1,      /**< a required pointer is NULL */
    MVQ_ERR_ARGUMENT = 2,  /**< a count, option or value is out of range (e.g. count < 1, a token outside its vocabulary) */
    MVQ_ERR_SHAPE = 3,     /**< the image shape or code length given is not the model's */
    MVQ_ERR_BUFFER = 4,    /**< an output buffer's capacity is too small */
    MVQ_ERR_HANDLE = 5,    /**< the handle is 0, freed, of another kind, or not from this library */
    MVQ_ERR_INPUT = 6,     /**< a file is missing, unreadable, corrupt, too large or of the wrong kind */
    MVQ_ERR_DEVICE = 7,    /**< the device name is unknown or the device cannot be opened here */
    MVQ_ERR_INTERNAL = 8   /**< a bug in the library; the message names it */
} mvq_status;

/** An autoencoder loaded by mvq_load. */
typedef uint64_t mvq_model;
/** A prior loaded by mvq_prior_load for one model. */
typedef uint64_t mvq_prior;

/** Sampling settings of mvq_sample; pass NULL for the defaults given here. */
typedef struct mvq_sample_options {
    float temperature;   /**< softmax temperature, > 0 (default 1) */
    int32_t top_k;       /**< keep the k most probable tokens, 0: all (default 0) */
    float top_p;         /**< keep the most probable tokens up to this mass, in (0, 1] (default 1) */
    int32_t seed;        /**< seed of the draws: the same seed gives the same samples (default 1) */
    int32_t random_masks;/**< MVQ only: nonzero decodes each image with a fresh random mask instead of the prior's w (default 0) */
    int32_t batch;       /**< sequences decoded together, 0: 64 */
} mvq_sample_options;

/** The library's ABI version (MVQ_ABI_VERSION of the header it was built with). Never fails. */
int32_t mvq_abi_version(void);

/** "MvqNative X.Y.Z (C ABI N)": static UTF-8, never freed. Never fails. */
const char *mvq_version(void);

/** The message of the last mvq_* call on this thread ("" after a success). Valid until the next call on this thread; never NULL. */
const char *mvq_last_error(void);

/**
 * Loads a checkpoint (model.safetensors written by `mvq train` or MvqModel.Save) onto a device.
 * path: UTF-8 file name. device: "cpu", "cuda", "cuda:N", "cuda-emu" (NULL: "cpu").
 * On success *model receives the handle (free it with mvq_free); on failure *model is 0.
 * Errors: MVQ_ERR_NULL (path or model NULL), MVQ_ERR_INPUT (file), MVQ_ERR_DEVICE.
 */
mvq_status mvq_load(const char *path, const char *device, mvq_model *model);

/** Frees a model and its device memory. The handle is dead afterwards (a second free gives MVQ_ERR_HANDLE). */
mvq_status mvq_free(mvq_model model);

/** The model's input shape and code length; any output pointer may be NULL. */
mvq_status mvq_model_info(mvq_model model, int32_t *channels, int32_t *height, int32_t *width, int32_t *code_length);

/**
 * Encodes count images [count, channels, height, width] into codes [count, code_length].
 * channels/height/width must be the model's (else MVQ_ERR_SHAPE); codes_capacity >= count * code_length
 * (else MVQ_ERR_BUFFER).
 */
mvq_status mvq_encode(mvq_model model, const float *images, int64_t count, int32_t channels, int32_t height, int32_t width,
                      int32_t *codes, int64_t codes_capacity);

/**
 * Decodes count codes [count, code_length] into images [count, C, H, W].
 * code_length must be the model's (MVQ_ERR_SHAPE); every token must lie in its segment's vocabulary
 * (MVQ_ERR_ARGUMENT); images_capacity >= count * C * H * W (MVQ_ERR_BUFFER).
 */
mvq_status mvq_decode(mvq_model model, const int32_t *codes, int64_t count, int32_t code_length,
                      float *images, int64_t images_capacity);

/**
 * Reconstructs count images (encode then decode, evaluation mode) into output [count, C, H, W].
 * output may not overlap images (MVQ_ERR_ARGUMENT); output_capacity >= count * C * H * W (MVQ_ERR_BUFFER).
 */
mvq_status mvq_reconstruct(mvq_model model, const float *images, int64_t count, int32_t channels, int32_t height, int32_t width,
                           float *output, int64_t output_capacity);

/**
 * Loads prior.safetensors (written by `mvq prior train`) for model; refused (MVQ_ERR_INPUT) when it was
 * trained for another autoencoder. Free it with mvq_prior_free, before or after its model.
 */
mvq_status mvq_prior_load(mvq_model model, const char *path, mvq_prior *prior);

/** Frees a prior. */
mvq_status mvq_prior_free(mvq_prior prior);

/**
 * Samples count codes from the prior and decodes them with its model. codes [count, code_length] and/or
 * images [count, C, H, W] receive the results (either may be NULL, not both). With random_masks the codes
 * alone do not reproduce the images (the masks are not returned). MVQ_ERR_HANDLE also when the prior's model was freed.
 */
mvq_status mvq_sample(mvq_prior prior, int64_t count, const mvq_sample_options *options,
                      int32_t *codes, int64_t codes_capacity, float *images, int64_t images_capacity);

#ifdef __cplusplus
}
#endif

#endif /* MVQ_H */
