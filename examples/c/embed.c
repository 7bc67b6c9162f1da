/*
 * embed: runs a .kiln model through kiln's C API and prints its first
 * output for each input exactly as `kiln run` prints it, so the two can be
 * compared line by line (tests/c_api.rs does).
 *
 *     embed MODEL.kiln INPUT.npy...
 *
 * C has no image decoder, so the inputs are .npy tensors: little-endian f32
 * in C order, in the ONNX model's layout (NCHW for images), which is how
 * `kiln run` reads a .npy file too. A rank-4 input is laid out NHWC here,
 * as kiln takes it. The model's inputs and outputs are described on stderr.
 *
 * Build (see README.md, "Linking from C, Android and iOS"):
 *     cc -std=c11 -O2 -ffp-contract=off -I capi/include examples/c/embed.c \
 *        target/release/libkiln.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o embed
 * -ffp-contract=off keeps the norm's a*a+b from becoming a fused
 * multiply-add, which the Rust CLI never uses: the digits must match.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define MAX_DIMS 8

/* Prints a message and exits: a bad input ends the program. */
static void die(const char *what, const char *detail) {
    fprintf(stderr, "embed: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* Exits with kiln's message if a call failed. */
static void check(kiln_status status, const char *call) {
    if (status != KILN_OK) {
        fprintf(stderr, "embed: %s failed (status %d): %s\n", call, (int)status, kiln_last_error());
        exit(1);
    }
}

/* Reads a whole file; *len gets its size. */
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open", path);
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) die("out of memory", NULL);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            buf = realloc(buf, cap *= 2);
            if (!buf) die("out of memory", NULL);
        }
    }
    if (ferror(f)) die("cannot read", path);
    fclose(f);
    *len = n;
    return buf;
}

/* The dimensions with leading 1s dropped, as `kiln run` compares shapes. */
static size_t strip(const size_t *dims, size_t rank, const size_t **out) {
    while (rank > 0 && dims[0] == 1) dims++, rank--;
    *out = dims;
    return rank;
}

/*
 * Reads a .npy file of little-endian f32 in C order whose shape is `want`
 * (up to leading 1s). Returns the values, `count` of them.
 */
static float *read_npy(const char *path, const size_t *want, size_t want_rank, size_t count) {
    size_t len;
    unsigned char *bytes = read_file(path, &len);
    if (len < 10 || memcmp(bytes, "\x93NUMPY", 6) != 0) die("no .npy magic in", path);
    size_t header_len, start;
    if (bytes[6] == 1) {
        header_len = bytes[8] | (size_t)bytes[9] << 8;
        start = 10;
    } else if ((bytes[6] == 2 || bytes[6] == 3) && len >= 12) {
        header_len = bytes[8] | (size_t)bytes[9] << 8 | (size_t)bytes[10] << 16 | (size_t)bytes[11] << 24;
        start = 12;
    } else {
        die("unsupported .npy version in", path);
    }
    if (header_len > len - start) die("truncated .npy header in", path);
    char *header = malloc(header_len + 1);
    if (!header) die("out of memory", NULL);
    memcpy(header, bytes + start, header_len);
    header[header_len] = '\0';
    if (!strstr(header, "'descr': '<f4'")) die("not little-endian f32 ('<f4'):", path);
    if (!strstr(header, "'fortran_order': False")) die("not in C order:", path);
    const char *p = strstr(header, "'shape': (");
    if (!p) die("no shape in the header of", path);
    p += strlen("'shape': (");
    size_t dims[MAX_DIMS], rank = 0;
    while (*p != ')') {
        char *end;
        unsigned long long d = strtoull(p, &end, 10);
        if (end == p) die("bad shape in", path);
        if (rank == MAX_DIMS) die("too many dimensions in", path);
        dims[rank++] = (size_t)d;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    free(header);
    const size_t *a, *b;
    size_t ra = strip(dims, rank, &a), rb = strip(want, want_rank, &b);
    if (ra != rb || memcmp(a, b, ra * sizeof *a) != 0) die("the .npy's shape is not the model input's:", path);
    if (len - start - header_len != count * sizeof(float)) die("wrong amount of data in", path);
    float *values = malloc(count * sizeof(float));
    if (!values) die("out of memory", NULL);
    memcpy(values, bytes + start + header_len, count * sizeof(float)); /* kiln is little-endian only */
    free(bytes);
    return values;
}

static const char *dtype_name(kiln_dtype d) {
    switch (d) {
    case KILN_DTYPE_I8: return "i8";
    case KILN_DTYPE_U8: return "u8";
    case KILN_DTYPE_I32: return "i32";
    case KILN_DTYPE_F32: return "f32";
    case KILN_DTYPE_PACKED: return "packed";
    case KILN_DTYPE_F16: return "f16";
    }
    return "?";
}

static void describe(const char *role, size_t index, const kiln_tensor_info *t) {
    fprintf(stderr, "embed: %s %zu \"%s\": %s [", role, index, t->name, dtype_name(t->dtype));
    for (size_t i = 0; i < t->rank; i++) fprintf(stderr, i ? ", %zu" : "%zu", t->dims[i]);
    fprintf(stderr, "], %zu elements, scale %g, zero point %d\n", t->elements, (double)t->scale, (int)t->zero_point);
}

/* An NCHW tensor laid out NHWC, as `kiln run` does for image inputs. */
static float *nchw_to_nhwc(const float *x, const size_t nhwc[4]) {
    size_t n = nhwc[0], h = nhwc[1], w = nhwc[2], c = nhwc[3];
    float *y = malloc(n * h * w * c * sizeof(float));
    if (!y) die("out of memory", NULL);
    for (size_t in = 0; in < n; in++)
        for (size_t ih = 0; ih < h; ih++)
            for (size_t iw = 0; iw < w; iw++)
                for (size_t ic = 0; ic < c; ic++)
                    y[((in * h + ih) * w + iw) * c + ic] = x[((in * c + ic) * h + ih) * w + iw];
    return y;
}

/* Cosine similarity in double, summed in order, as `kiln run` computes it. */
static double cosine(const float *a, const float *b, size_t n) {
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < n; i++) dot += (double)a[i] * (double)b[i];
    for (size_t i = 0; i < n; i++) na += (double)a[i] * (double)a[i];
    for (size_t i = 0; i < n; i++) nb += (double)b[i] * (double)b[i];
    return dot / (sqrt(na) * sqrt(nb));
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.kiln INPUT.npy...\n", argv[0]);
        return 2;
    }
    kiln_model *model;
    kiln_session *session;
    check(kiln_model_open(argv[1], &model), "kiln_model_open");
    check(kiln_session_create(model, &session), "kiln_session_create");

    size_t inputs, outputs;
    kiln_tensor_info in, out;
    check(kiln_model_input_count(model, &inputs), "kiln_model_input_count");
    check(kiln_model_output_count(model, &outputs), "kiln_model_output_count");
    for (size_t i = 0; i < inputs; i++) {
        check(kiln_model_input_info(model, i, &in), "kiln_model_input_info");
        describe("input", i, &in);
    }
    for (size_t i = 0; i < outputs; i++) {
        check(kiln_model_output_info(model, i, &out), "kiln_model_output_info");
        describe("output", i, &out);
    }
    check(kiln_model_input_info(model, 0, &in), "kiln_model_input_info");
    check(kiln_model_output_info(model, 0, &out), "kiln_model_output_info");

    /* The .npy holds the ONNX layout: NCHW for a rank-4 (NHWC) input. */
    size_t onnx[KILN_MAX_RANK];
    memcpy(onnx, in.dims, sizeof onnx);
    if (in.rank == 4) onnx[1] = in.dims[3], onnx[2] = in.dims[1], onnx[3] = in.dims[2];

    size_t runs = (size_t)argc - 2, len = out.elements;
    float *results = malloc(runs * len * sizeof(float));
    if (!results) die("out of memory", NULL);
    for (size_t r = 0; r < runs; r++) {
        const char *path = argv[2 + r];
        float *values = read_npy(path, onnx, in.rank, in.elements);
        if (in.rank == 4) {
            float *nhwc = nchw_to_nhwc(values, in.dims);
            free(values);
            values = nhwc;
        }
        float *y = results + r * len;
        check(kiln_session_set_input_f32(session, 0, values, in.elements), "kiln_session_set_input_f32");
        check(kiln_session_run(session), "kiln_session_run");
        check(kiln_session_output_f32(session, 0, y, len), "kiln_session_output_f32");
        free(values);

        /* `kiln run`'s line: f32 sum of squares in order, the first maximum. */
        float sum = 0, max = -FLT_MAX;
        size_t top = 0;
        for (size_t i = 0; i < len; i++) {
            sum += y[i] * y[i];
            if (y[i] > max) max = y[i], top = i;
        }
        printf("%s: %zu values, norm %.4f, first [", path, len, (double)sqrtf(sum));
        for (size_t i = 0; i < len && i < 8; i++) printf(i ? ", %.4f" : "%.4f", (double)y[i]);
        printf("], max %.4f at %zu\n", (double)max, top);
    }
    for (size_t i = 0; i < runs; i++)
        for (size_t j = i + 1; j < runs; j++)
            printf("cosine similarity %s ~ %s: %.4f\n", argv[2 + i], argv[2 + j],
                   cosine(results + i * len, results + j * len, len));

    free(results);
    kiln_session_free(session);
    kiln_model_free(model);
    return 0;
}
