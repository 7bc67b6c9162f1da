/*
 * hostile: calls kiln's C API the way a careless or hostile caller would
 * (NULL pointers, wrong counts and indices, misaligned and short buffers,
 * missing, truncated and corrupt files) and checks each status code and
 * message. Run under valgrind or a sanitizer in CI: it must not crash, leak
 * or touch memory it should not.
 *
 *     hostile MODEL.kiln SCRATCH_DIR
 *
 * MODEL.kiln is any valid model with one int8 input and an int8 first
 * output, as `kiln convert` makes them (CI uses SFace); SCRATCH_DIR receives
 * the damaged copies. Exits 1 if any check fails, printing which.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

static int checks, failures;

/* Checks a call's status and, unless fragment is NULL, that kiln_last_error() contains it. */
static void expect(const char *what, int line, kiln_status got, kiln_status want, const char *fragment) {
    const char *message = kiln_last_error();
    checks++;
    if (message == NULL) {
        printf("FAIL line %d: %s: kiln_last_error() returned NULL\n", line, what);
        failures++;
    } else if (got != want) {
        printf("FAIL line %d: %s returned %d, expected %d (last error: %s)\n", line, what, (int)got, (int)want, message);
        failures++;
    } else if (fragment && !strstr(message, fragment)) {
        printf("FAIL line %d: %s: message \"%s\" lacks \"%s\"\n", line, what, message, fragment);
        failures++;
    } else {
        printf("ok %3d  %s -> %d%s%s\n", line, what, (int)got, fragment ? ": " : "", fragment ? message : "");
    }
}
#define EXPECT(call, want, fragment) expect(#call, __LINE__, (call), (want), (fragment))

static void truth(const char *what, int line, int ok) {
    checks++;
    if (ok) {
        printf("ok %3d  %s\n", line, what);
    } else {
        printf("FAIL line %d: %s\n", line, what);
        failures++;
    }
}
#define TRUE(cond) truth(#cond, __LINE__, (cond))

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) return NULL;
    long n = ftell(f);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf) {
        rewind(f);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) free(buf), buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const char *write_file(const char *dir, const char *name, const unsigned char *bytes, size_t len) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "hostile: cannot write %s\n", path);
        exit(2);
    }
    return path;
}

/* Damaged files, by path and from memory. */
static void files(const unsigned char *good, size_t len, const char *scratch) {
    kiln_model *m = (kiln_model *)&m; /* not NULL: a failed open must set it to NULL */
    EXPECT(kiln_model_open(NULL, &m), KILN_ERR_NULL_ARGUMENT, "path is NULL");
    TRUE(m == NULL);
    EXPECT(kiln_model_open("model.kiln", NULL), KILN_ERR_NULL_ARGUMENT, "out (the model handle's address) is NULL");
    EXPECT(kiln_model_open("/nonexistent/model.kiln", &m), KILN_ERR_IO, "cannot read /nonexistent/model.kiln");
    TRUE(m == NULL);
    EXPECT(kiln_model_open(scratch, &m), KILN_ERR_IO, "cannot read"); /* a directory */

    const char *half = write_file(scratch, "truncated.kiln", good, len / 2);
    EXPECT(kiln_model_open(half, &m), KILN_ERR_MALFORMED, "truncated");
    TRUE(m == NULL);
    EXPECT(kiln_model_open_memory(good, 20, &m), KILN_ERR_MALFORMED, "invalid .kiln file");
    EXPECT(kiln_model_open_memory(good, len - 1, &m), KILN_ERR_MALFORMED, "truncated");

    unsigned char *bad = malloc(len);
    memcpy(bad, good, len);
    bad[len / 2] ^= 0x40; /* one flipped bit in the middle */
    EXPECT(kiln_model_open(write_file(scratch, "corrupt.kiln", bad, len), &m), KILN_ERR_CHECKSUM, "checksum");
    EXPECT(kiln_model_open_memory(bad, len, &m), KILN_ERR_CHECKSUM, "damaged in transfer or storage");
    memcpy(bad, good, len);
    bad[0] = 'X';
    EXPECT(kiln_model_open_memory(bad, len, &m), KILN_ERR_NOT_KILN, "not a .kiln file");
    memcpy(bad, good, len);
    bad[8] = 99; /* major version */
    EXPECT(kiln_model_open_memory(bad, len, &m), KILN_ERR_VERSION, "format 99.");
    free(bad);

    EXPECT(kiln_model_open_memory(NULL, 100, &m), KILN_ERR_NULL_ARGUMENT, "data is NULL");
    EXPECT(kiln_model_open_memory(good, 0, &m), KILN_ERR_NOT_KILN, "not a .kiln file");
    EXPECT(kiln_model_open_memory(good, SIZE_MAX, &m), KILN_ERR_INVALID_ARGUMENT, "more than any buffer holds");
    EXPECT(kiln_model_open_memory(good, SIZE_MAX / 2, &m), KILN_ERR_INVALID_ARGUMENT, "no memory for a buffer that size");
    TRUE(m == NULL);

    /* The message survives successful calls. */
    EXPECT(kiln_model_open_memory(good, 20, &m), KILN_ERR_MALFORMED, NULL);
    const char *before = kiln_last_error();
    char saved[512];
    snprintf(saved, sizeof saved, "%s", before);
    EXPECT(kiln_model_open_memory(good, len, &m), KILN_OK, NULL);
    TRUE(strcmp(kiln_last_error(), saved) == 0);
    kiln_model_free(m);
}

/* Queries on a valid model with bad arguments. */
static void queries(kiln_model *m, kiln_tensor_info *in, kiln_tensor_info *out) {
    size_t n = 99, size = 0, align = 0;
    EXPECT(kiln_model_input_count(NULL, &n), KILN_ERR_NULL_ARGUMENT, "model is NULL");
    EXPECT(kiln_model_input_count(m, NULL), KILN_ERR_NULL_ARGUMENT, "count is NULL");
    EXPECT(kiln_model_input_count(m, &n), KILN_OK, NULL);
    TRUE(n == 1);
    EXPECT(kiln_model_output_count(m, &n), KILN_OK, NULL);
    TRUE(n >= 1);
    EXPECT(kiln_model_input_info(m, 1, in), KILN_ERR_NO_SUCH_TENSOR, "input 1 asked for, the model has 1 inputs");
    EXPECT(kiln_model_output_info(m, SIZE_MAX, out), KILN_ERR_NO_SUCH_TENSOR, "the model has");
    TRUE(out->name == NULL && out->elements == 0);
    EXPECT(kiln_model_input_info(m, 0, NULL), KILN_ERR_NULL_ARGUMENT, "info is NULL");
    EXPECT(kiln_model_input_info(NULL, 0, in), KILN_ERR_NULL_ARGUMENT, "model is NULL");
    EXPECT(kiln_model_input_info(m, 0, in), KILN_OK, NULL);
    EXPECT(kiln_model_output_info(m, 0, out), KILN_OK, NULL);
    size_t product = 1;
    for (size_t i = 0; i < in->rank; i++) product *= in->dims[i];
    TRUE(in->name != NULL && in->rank <= KILN_MAX_RANK && in->elements == product && in->elements > 0);
    TRUE(in->dtype == KILN_DTYPE_I8 && out->dtype == KILN_DTYPE_I8);
    TRUE(in->scale > 0 && in->zero_point >= -128 && in->zero_point <= 127);
    TRUE(out->scale > 0 && out->zero_point >= -128 && out->zero_point <= 127);
    EXPECT(kiln_model_arena_size(m, NULL, &align), KILN_ERR_NULL_ARGUMENT, "size is NULL");
    EXPECT(kiln_model_arena_size(m, &size, NULL), KILN_ERR_NULL_ARGUMENT, "alignment is NULL");
    EXPECT(kiln_model_arena_size(m, &size, &align), KILN_OK, NULL);
    TRUE(size > 0 && align == KILN_ARENA_ALIGNMENT);
}

/* A deterministic input: a ramp over 0..255, pixel values. */
static float *ramp(size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 256);
    return x;
}

/* Quantizes as kiln does (DESIGN.md): x * (1 / scale), rounded half to even
 * (the default rounding mode), plus the zero point, clamped to int8. */
static int8_t *quantize(const float *x, size_t n, const kiln_tensor_info *t) {
    int8_t *q = malloc(n);
    float inv = 1.0f / t->scale;
    for (size_t i = 0; i < n; i++) {
        float v = nearbyintf(x[i] * inv) + (float)t->zero_point;
        q[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
    }
    return q;
}

/* Sessions: arenas, inputs and outputs with bad arguments; then real runs. */
static void sessions(kiln_model *m, const kiln_tensor_info *in, const kiln_tensor_info *out) {
    kiln_session *s = (kiln_session *)&s, *a = NULL;
    EXPECT(kiln_session_create(NULL, &s), KILN_ERR_NULL_ARGUMENT, "model is NULL");
    TRUE(s == NULL);
    EXPECT(kiln_session_create(m, NULL), KILN_ERR_NULL_ARGUMENT, "out (the session handle's address) is NULL");

    setenv("KILN_ISA", "turbo", 1);
    EXPECT(kiln_session_create(m, &s), KILN_ERR_ISA, "KILN_ISA=\"turbo\" names no kernel level");
    unsetenv("KILN_ISA");

    size_t size, align;
    kiln_model_arena_size(m, &size, &align);
    EXPECT(kiln_model_check_limits(NULL, SIZE_MAX, SIZE_MAX, UINT64_MAX), KILN_ERR_NULL_ARGUMENT, "model is NULL");
    EXPECT(kiln_model_check_limits(m, size - 1, SIZE_MAX, UINT64_MAX), KILN_ERR_LIMIT, "arena bytes, more than the");
    EXPECT(kiln_model_check_limits(m, SIZE_MAX, in->elements - 1, UINT64_MAX), KILN_ERR_LIMIT, "elements in tensor");
    EXPECT(kiln_model_check_limits(m, SIZE_MAX, SIZE_MAX, 1000000), KILN_ERR_LIMIT, "steps a run, more than the 1000000");
    EXPECT(kiln_model_check_limits(m, size, SIZE_MAX, UINT64_MAX), KILN_OK, NULL);
    unsigned char *arena = aligned_alloc(KILN_ARENA_ALIGNMENT, (size + 2 * KILN_ARENA_ALIGNMENT) / KILN_ARENA_ALIGNMENT * KILN_ARENA_ALIGNMENT);
    EXPECT(kiln_session_create_with_arena(m, NULL, size, &a), KILN_ERR_NULL_ARGUMENT, "arena is NULL");
    EXPECT(kiln_session_create_with_arena(m, arena, size - 1, &a), KILN_ERR_ARENA, "the model needs");
    EXPECT(kiln_session_create_with_arena(m, arena + 1, size, &a), KILN_ERR_ARENA, "64-byte aligned: false");
    EXPECT(kiln_session_create_with_arena(m, arena, SIZE_MAX, &a), KILN_ERR_INVALID_ARGUMENT, "more than any buffer");
    TRUE(a == NULL);
    EXPECT(kiln_session_create_with_arena(m, arena, size, &a), KILN_OK, NULL);
    /* The arena came from aligned_alloc, uninitialised: a run before any
     * input is set must read only defined bytes (valgrind checks). */
    EXPECT(kiln_session_run(a), KILN_OK, NULL);
    EXPECT(kiln_session_create(m, &s), KILN_OK, NULL);

    float *x = ramp(in->elements);
    float *y = malloc(out->elements * sizeof *y), *z = malloc(out->elements * sizeof *z);
    int8_t *qx = quantize(x, in->elements, in), *qy = malloc(out->elements);
    EXPECT(kiln_session_set_input_f32(NULL, 0, x, in->elements), KILN_ERR_NULL_ARGUMENT, "session is NULL");
    EXPECT(kiln_session_set_input_f32(s, 0, NULL, in->elements), KILN_ERR_NULL_ARGUMENT, "values is NULL");
    EXPECT(kiln_session_set_input_f32(s, 0, x, in->elements - 1), KILN_ERR_LENGTH, "the buffer given has");
    EXPECT(kiln_session_set_input_f32(s, 0, x, in->elements + 1), KILN_ERR_LENGTH, "elements, the buffer given has");
    EXPECT(kiln_session_set_input_f32(s, 3, x, in->elements), KILN_ERR_NO_SUCH_TENSOR, "input 3 asked for");
    x[7] = NAN;
    EXPECT(kiln_session_set_input_f32(s, 0, x, in->elements), KILN_ERR_NOT_FINITE, "input 0 holds NaN at element 7");
    x[7] = -INFINITY;
    EXPECT(kiln_session_set_input_f32(s, 0, x, in->elements), KILN_ERR_NOT_FINITE, "input 0 holds -inf at element 7");
    x[7] = 7.0f;
    EXPECT(kiln_session_set_input_f32(s, 0, x, SIZE_MAX), KILN_ERR_INVALID_ARGUMENT, "more than any buffer holds");
    /* A float pointer one byte off (formed through uintptr_t; never dereferenced). */
    const float *odd = (const float *)((uintptr_t)x + 1);
    EXPECT(kiln_session_set_input_f32(s, 0, odd, 4), KILN_ERR_INVALID_ARGUMENT, "is not aligned to 4 bytes");
    EXPECT(kiln_session_set_input_i8(s, 0, NULL, in->elements), KILN_ERR_NULL_ARGUMENT, "values is NULL");
    EXPECT(kiln_session_set_input_i8(s, 0, qx, in->elements - 1), KILN_ERR_LENGTH, "the buffer given has");
    EXPECT(kiln_session_set_input_i8(s, 1, qx, in->elements), KILN_ERR_NO_SUCH_TENSOR, "input 1 asked for");
    EXPECT(kiln_session_run(NULL), KILN_ERR_NULL_ARGUMENT, "session is NULL");
    EXPECT(kiln_session_output_f32(s, 0, NULL, out->elements), KILN_ERR_NULL_ARGUMENT, "values is NULL");
    EXPECT(kiln_session_output_f32(s, 0, y, out->elements - 1), KILN_ERR_LENGTH, "the buffer given has");
    EXPECT(kiln_session_output_f32(s, 9, y, out->elements), KILN_ERR_NO_SUCH_TENSOR, "output 9 asked for");
    EXPECT(kiln_session_output_i8(s, 0, NULL, out->elements), KILN_ERR_NULL_ARGUMENT, "values is NULL");
    EXPECT(kiln_session_output_i8(s, 0, qy, out->elements - 1), KILN_ERR_LENGTH, "the buffer given has");
    EXPECT(kiln_session_output_i8(s, 0, qy, SIZE_MAX), KILN_ERR_INVALID_ARGUMENT, "more than any buffer holds");

    /* Real runs, with the model handle freed first (sessions keep it alive):
     * the heap session takes f32 pixels, the arena session the same pixels
     * quantized here with the input's scale and zero point; they agree, and
     * the int8 output dequantized with the output's parameters is the f32 one. */
    kiln_model_free(m);
    EXPECT(kiln_session_set_input_f32(s, 0, x, in->elements), KILN_OK, NULL);
    EXPECT(kiln_session_run(s), KILN_OK, NULL);
    EXPECT(kiln_session_output_f32(s, 0, y, out->elements), KILN_OK, NULL);
    EXPECT(kiln_session_set_input_i8(a, 0, qx, in->elements), KILN_OK, NULL);
    EXPECT(kiln_session_run(a), KILN_OK, NULL);
    EXPECT(kiln_session_output_f32(a, 0, z, out->elements), KILN_OK, NULL);
    EXPECT(kiln_session_output_i8(a, 0, qy, out->elements), KILN_OK, NULL);
    TRUE(memcmp(y, z, out->elements * sizeof *y) == 0);
    size_t same = 0, nonzero = 0;
    for (size_t i = 0; i < out->elements; i++) {
        same += z[i] == (float)(qy[i] - out->zero_point) * out->scale;
        nonzero += qy[i] != out->zero_point;
    }
    TRUE(same == out->elements);
    TRUE(nonzero > out->elements / 2);

    kiln_session_free(s);
    kiln_session_free(a);
    kiln_session_free(NULL);
    kiln_model_free(NULL);
    free(arena);
    free(x);
    free(y);
    free(z);
    free(qx);
    free(qy);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.kiln SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    TRUE(kiln_last_error() != NULL && kiln_last_error()[0] == '\0');
    size_t len;
    unsigned char *good = read_file(argv[1], &len);
    if (!good) {
        fprintf(stderr, "hostile: cannot read %s\n", argv[1]);
        return 2;
    }
    files(good, len, argv[2]);

    /* A misaligned buffer is fine: kiln_model_open_memory copies it. */
    unsigned char *shifted = malloc(len + 1);
    memcpy(shifted + 1, good, len);
    kiln_model *m = NULL;
    EXPECT(kiln_model_open_memory(shifted + 1, len, &m), KILN_OK, NULL);
    free(shifted);
    free(good);
    kiln_tensor_info in, out;
    queries(m, &in, &out);
    sessions(m, &in, &out);

    printf("hostile: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
