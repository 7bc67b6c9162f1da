/*
 * kiln.h: the C API of kiln, an edge inference runtime for int8 models.
 *
 * Link with libkiln.a (see README.md, "Linking from C, Android and iOS")
 * or libkiln.so. Written by hand; capi/tests/header.rs checks that it
 * declares exactly the functions the library exports.
 *
 * Usage:
 *
 *     kiln_model *model;
 *     kiln_session *session;
 *     if (kiln_model_open("sface.kiln", &model) != KILN_OK ||
 *         kiln_session_create(model, &session) != KILN_OK) {
 *         fprintf(stderr, "%s\n", kiln_last_error());
 *         ...
 *     }
 *     kiln_session_set_input_f32(session, 0, pixels, 112 * 112 * 3);
 *     kiln_session_run(session);
 *     kiln_session_output_f32(session, 0, embedding, 128);
 *     kiln_session_free(session);
 *     kiln_model_free(model);
 *
 * Conventions:
 *  - Every function that can fail returns a kiln_status; on failure,
 *    kiln_last_error() describes what is wrong and what to do.
 *  - Every pointer argument is checked for NULL (KILN_ERR_NULL_ARGUMENT)
 *    and for the alignment of its element type (KILN_ERR_INVALID_ARGUMENT).
 *    Beyond that, a non-NULL pointer must point to as many valid elements as
 *    its count says: C cannot tell, so that is the caller's contract.
 *  - Counts are in elements, not bytes, and must equal the tensor's element
 *    count (kiln_tensor_info.elements) exactly (KILN_ERR_LENGTH otherwise).
 *  - Out-parameters are set at once (handles to NULL), even when the call
 *    fails afterwards.
 *  - Threads: a kiln_model may be used by several threads at once (each
 *    making its own sessions); a kiln_session by one thread at a time.
 *  - Lifetimes: a session keeps its model alive, so models and sessions may
 *    be freed in any order. Tensor names stay valid until the model handle
 *    is freed.
 *  - A panic inside kiln (a bug) never unwinds into C: the call returns
 *    KILN_ERR_INTERNAL; free the handles it was given.
 *  - Allocation failure aborts the process, as in Rust generally; the large
 *    allocations are the arena (avoid it with kiln_session_create_with_arena)
 *    and the model copy of kiln_model_open_memory.
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The alignment kiln_model_arena_size reports, as a constant. */
#define KILN_ARENA_ALIGNMENT 64
/* The largest rank a tensor has. */
#define KILN_MAX_RANK 4

/* What a call returns. The values are part of the ABI and never change. */
typedef enum kiln_status {
    KILN_OK = 0,
    KILN_ERR_NULL_ARGUMENT = 1,    /* a required pointer was NULL */
    KILN_ERR_INVALID_ARGUMENT = 2, /* misaligned pointer, impossible size, path not text */
    KILN_ERR_IO = 3,               /* the model file could not be read */
    KILN_ERR_NOT_KILN = 4,         /* the bytes are not a .kiln file */
    KILN_ERR_VERSION = 5,          /* a .kiln format version this library does not read */
    KILN_ERR_CHECKSUM = 6,         /* the file is corrupt: its checksum does not match */
    KILN_ERR_MALFORMED = 7,        /* the file's structure is invalid (truncated, inconsistent) */
    KILN_ERR_ARENA = 8,            /* the caller's arena is too small or not 64-byte aligned */
    KILN_ERR_NO_SUCH_TENSOR = 9,   /* an input or output index out of range */
    KILN_ERR_LENGTH = 10,          /* a count that differs from the tensor's element count */
    KILN_ERR_TYPE = 11,            /* int8 access to a tensor that is not int8 */
    KILN_ERR_ISA = 12,             /* KILN_ISA names an unknown or unsupported kernel level */
    KILN_ERR_INTERNAL = 13,        /* a bug in kiln, caught at the boundary */
    KILN_ERR_OUT_OF_MEMORY = 14,   /* the heap cannot hold the session's arena */
    KILN_ERR_LIMIT = 15,           /* the model needs more than kiln_model_check_limits allows */
    KILN_ERR_NOT_FINITE = 16       /* an input value is NaN or infinite */
} kiln_status;

/* Element type of a tensor (the .kiln file's codes). */
typedef enum kiln_dtype {
    KILN_DTYPE_I8 = 1,    /* signed 8-bit, quantized: real = scale * (q - zero_point) */
    KILN_DTYPE_U8 = 2,    /* unsigned 8-bit */
    KILN_DTYPE_I32 = 3,   /* signed 32-bit */
    KILN_DTYPE_F32 = 4,   /* IEEE binary32 */
    KILN_DTYPE_PACKED = 5, /* packed weights: never an input or output */
    KILN_DTYPE_F16 = 6     /* IEEE binary16 float weights: never an input or output */
} kiln_dtype;

/* One input or output of a model. */
typedef struct kiln_tensor_info {
    const char *name;            /* NUL-terminated; valid until kiln_model_free */
    kiln_dtype dtype;            /* element type */
    size_t rank;                 /* number of dimensions, 0 to KILN_MAX_RANK */
    size_t dims[KILN_MAX_RANK];  /* dimensions (NHWC for images); 1 past rank */
    size_t elements;             /* element count: the count to pass to set/output */
    float scale;                 /* quantization scale (1 for f32) */
    int32_t zero_point;          /* quantization zero point (0 for f32) */
} kiln_tensor_info;

/* A loaded, validated model. Opaque. */
typedef struct kiln_model kiln_model;
/* An arena and kernels for running one model. Opaque. */
typedef struct kiln_session kiln_session;

/*
 * The message of the last call on this thread that failed: what is wrong
 * and what to do. "" if no call has failed. Never NULL. Valid until the
 * next failing kiln call on this thread; successful calls leave it alone.
 */
const char *kiln_last_error(void);

/*
 * Opens and validates a .kiln file, memory-mapping it: the weights are not
 * copied. The file must not be rewritten while the model is open.
 * On success *out is a new handle (free it with kiln_model_free); on
 * failure NULL, and KILN_ERR_IO, _NOT_KILN, _VERSION, _CHECKSUM or
 * _MALFORMED says why.
 */
kiln_status kiln_model_open(const char *path, kiln_model **out);

/*
 * Validates a .kiln file held in memory (an embedded asset, an Android
 * AAsset buffer). The len bytes at data are COPIED into a 64-byte-aligned
 * buffer the handle owns: data may have any alignment, and the caller may
 * free it as soon as this returns. Errors as kiln_model_open.
 */
kiln_status kiln_model_open_memory(const void *data, size_t len, kiln_model **out);

/*
 * Frees a model handle. NULL is ignored. Sessions made from it stay valid
 * (they keep the model alive); its tensor names do not.
 */
void kiln_model_free(kiln_model *model);

/*
 * Refuses a model that needs more than the caller can spare: an arena over
 * max_arena_bytes, an activation of more than max_tensor_elements elements,
 * or more than max_work steps per run (multiply-adds, window and tensor
 * elements: a small file can take hours) (KILN_ERR_LIMIT, the message says
 * which). Loading checks that a file is consistent, not that it is small:
 * an application that opens files it did not make calls this before
 * kiln_session_create. SIZE_MAX and UINT64_MAX mean no limit.
 */
kiln_status kiln_model_check_limits(const kiln_model *model, size_t max_arena_bytes, size_t max_tensor_elements,
                                    uint64_t max_work);

/*
 * The arena a session over caller memory needs: *size bytes starting on an
 * *alignment-byte boundary (always KILN_ARENA_ALIGNMENT).
 */
kiln_status kiln_model_arena_size(const kiln_model *model, size_t *size, size_t *alignment);

/* The number of inputs. */
kiln_status kiln_model_input_count(const kiln_model *model, size_t *count);

/* The number of outputs. */
kiln_status kiln_model_output_count(const kiln_model *model, size_t *count);

/*
 * Describes input index: name, type, shape, element count, quantization.
 * KILN_ERR_NO_SUCH_TENSOR if index >= kiln_model_input_count.
 */
kiln_status kiln_model_input_info(const kiln_model *model, size_t index, kiln_tensor_info *info);

/* Describes output index, as kiln_model_input_info. */
kiln_status kiln_model_output_info(const kiln_model *model, size_t index, kiln_tensor_info *info);

/*
 * A session with its arena on the heap. The kernel level is the best the
 * CPU supports, or the one the environment variable KILN_ISA names
 * (scalar, avx2, avxvnni, avx512vnni, neon, dotprod); all give bit-identical
 * results. Free it with kiln_session_free.
 */
kiln_status kiln_session_create(const kiln_model *model, kiln_session **out);

/*
 * A session whose activations live in the caller's arena: arena_size bytes
 * at arena, at least kiln_model_arena_size's size and starting on a
 * KILN_ARENA_ALIGNMENT boundary (KILN_ERR_ARENA otherwise); it is zeroed
 * here, so it may come from malloc uninitialised. The caller
 * keeps the arena allocated and leaves it alone until kiln_session_free.
 * Kernel level as kiln_session_create.
 */
kiln_status kiln_session_create_with_arena(const kiln_model *model, void *arena, size_t arena_size,
                                           kiln_session **out);

/* Frees a session. NULL is ignored. Does not free a caller's arena. */
void kiln_session_free(kiln_session *session);

/*
 * Sets input index from count real values, in the tensor's layout (NHWC for
 * images). An int8 input is quantized with its own scale and zero point.
 * A NaN or infinite value is refused (KILN_ERR_NOT_FINITE, the message gives
 * its position) and the input is left as it was; callers that quantize
 * themselves use kiln_session_set_input_i8.
 */
kiln_status kiln_session_set_input_f32(kiln_session *session, size_t index, const float *values, size_t count);

/*
 * Sets int8 input index from count already-quantized values
 * (KILN_ERR_TYPE if the input is not int8).
 */
kiln_status kiln_session_set_input_i8(kiln_session *session, size_t index, const int8_t *values, size_t count);

/*
 * Runs the model on the inputs set before. Allocates nothing; fails only on
 * a NULL session (or KILN_ERR_INTERNAL, a bug).
 */
kiln_status kiln_session_run(kiln_session *session);

/* Reads output index into count real values, dequantizing an int8 output. */
kiln_status kiln_session_output_f32(kiln_session *session, size_t index, float *values, size_t count);

/*
 * Copies int8 output index's count raw quantized values
 * (KILN_ERR_TYPE if the output is not int8).
 */
kiln_status kiln_session_output_i8(kiln_session *session, size_t index, int8_t *values, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* KILN_H */
