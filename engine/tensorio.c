/* tensorio: .npy / TensorProto .pb / raw tensor files. Every header field is
 * checked against the bytes actually present. */
#include "engine/tensorio.h"

#include "engine/generated/onnx.pb-c.h"
#include "engine/graph.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t et_numel(const et_tensor *t)
{
    return eg_numel(t->rank, t->dims);
}

void et_tensor_clear(et_tensor *t)
{
    free(t->data);
    free(t->name);
    memset(t, 0, sizeof(*t));
}

et_format et_format_of(const char *path)
{
    size_t n = strlen(path);
    if (n >= 4 && !strcmp(path + n - 4, ".npy")) return ET_NPY;
    if (n >= 3 && !strcmp(path + n - 3, ".pb")) return ET_PB;
    return ET_RAW;
}

void *et_slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        eg_err(err, errlen, ENG_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        eg_err(err, errlen, bad ? ENG_EIO : ENG_ENOMEM, "%s: read failed", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Parses the Python-dict header of a .npy file. */
static int npy_header(const char *h, size_t hl, et_tensor *t, char *err, size_t errlen)
{
    char tmp[1024];
    if (hl >= sizeof(tmp)) return eg_err(err, errlen, ENG_EFORMAT, "npy: header too long");
    memcpy(tmp, h, hl);
    tmp[hl] = 0;
    const char *d = strstr(tmp, "'descr'"), *fo = strstr(tmp, "'fortran_order'"),
               *sh = strstr(tmp, "'shape'");
    if (!d || !fo || !sh)
        return eg_err(err, errlen, ENG_EFORMAT, "npy: header lacks descr/fortran_order/shape");
    const char *dv = strchr(d + 7, '\'');
    if (!dv) return eg_err(err, errlen, ENG_EFORMAT, "npy: bad descr");
    if (!strncmp(dv, "'<f4'", 5))
        t->dtype = ENG_FLOAT;
    else if (!strncmp(dv, "'<i8'", 5))
        t->dtype = ENG_INT64;
    else if (!strncmp(dv, "'<i4'", 5))
        t->dtype = ENG_INT32;
    else if (!strncmp(dv, "'|b1'", 5))
        t->dtype = ENG_BOOL;
    else if (!strncmp(dv, "'<f8'", 5))
        t->dtype = ENG_FLOAT, t->from_f64 = 1;
    else {
        static const char *const known[][2] = {{"<f2", "float16"},
                                               {">f4", "big-endian float32"},
                                               {">f8", "big-endian float64"},
                                               {"|u1", "uint8"},
                                               {"|i1", "int8"},
                                               {"<u2", "uint16"},
                                               {"<i2", "int16"},
                                               {"<u4", "uint32"},
                                               {"<u8", "uint64"},
                                               {"<c8", "complex64"},
                                               {"<c16", "complex128"},
                                               {"|O", "object"}};
        size_t dl = strcspn(dv + 1, "'");
        const char *what = "";
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            if (strlen(known[k][0]) == dl && !strncmp(dv + 1, known[k][0], dl)) what = known[k][1];
        return eg_err(err, errlen, ENG_EUNSUPPORTED,
                      "npy: dtype '%.*s'%s%s%s not supported (float32 <f4, float64 <f8 converted "
                      "to float32, int64 <i8, int32 <i4, bool |b1)",
                      (int)(dl < 16 ? dl : 16), dv + 1, *what ? " (" : "", what, *what ? ")" : "");
    }
    const char *fv = fo + 15;
    while (*fv == ' ' || *fv == ':') fv++;
    if (strncmp(fv, "False", 5))
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "npy: Fortran order not supported");
    const char *p = strchr(sh, '(');
    const char *e = p ? strchr(p, ')') : NULL;
    if (!p || !e) return eg_err(err, errlen, ENG_EFORMAT, "npy: bad shape");
    t->rank = 0;
    for (p++; p < e;) {
        while (p < e && (*p == ' ' || *p == ',')) p++;
        if (p >= e) break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > ((int64_t)1 << 40) || t->rank >= ENG_MAX_RANK)
            return eg_err(err, errlen, ENG_EFORMAT, "npy: bad shape");
        t->dims[t->rank++] = v;
        p = end;
    }
    return 0;
}

static int parse_npy(const unsigned char *b, size_t len, et_tensor *t, char *err, size_t errlen)
{
    if (len < 10 || memcmp(b, "\x93NUMPY", 6))
        return eg_err(err, errlen, ENG_EFORMAT, "npy: bad magic");
    size_t hl, off;
    if (b[6] == 1) {
        hl = b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12) return eg_err(err, errlen, ENG_EFORMAT, "npy: truncated header");
        hl = b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    } else {
        return eg_err(err, errlen, ENG_EFORMAT, "npy: version %d not supported", b[6]);
    }
    if (hl > len - off) return eg_err(err, errlen, ENG_EFORMAT, "npy: truncated header");
    int rc = npy_header((const char *)b + off, hl, t, err, errlen);
    if (rc) return rc;
    off += hl;
    size_t esz = t->from_f64 ? 8 : eg_dtype_size(t->dtype);
    size_t need = (size_t)et_numel(t) * esz;
    if (len - off != need)
        return eg_err(err, errlen, ENG_EFORMAT, "npy: %zu data bytes, shape needs %zu", len - off,
                      need);
    size_t have = need / esz * eg_dtype_size(t->dtype);
    if (!(t->data = eg_alloc(have))) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    if (!t->from_f64) {
        memcpy(t->data, b + off, need);
        return 0;
    }
    float *f = t->data;
    for (size_t i = 0; i < need / 8; i++) {
        double v;
        memcpy(&v, b + off + i * 8, 8); /* unaligned in the file: copy, then convert */
        /* beyond float32's range the cast is undefined in C: round to +-inf as IEEE does
         * (0x1.ffffffp127 is halfway between FLT_MAX and the next power of two) */
        f[i] = v >= 0x1.ffffffp127 ? INFINITY : v <= -0x1.ffffffp127 ? -INFINITY : (float)v;
    }
    return 0;
}

int et_parse(const void *buf, size_t len, et_format f, eng_dtype raw_dtype, int raw_rank,
             const int64_t *raw_dims, et_tensor *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (f == ET_NPY) return parse_npy(buf, len, t, err, errlen);
    if (f == ET_PB)
        return eg_onnx_tensor(buf, len, &t->name, &t->dtype, &t->rank, t->dims, &t->data, err,
                              errlen);
    if (raw_rank < 0 || raw_rank > ENG_MAX_RANK || !eg_dtype_size(raw_dtype))
        return eg_err(err, errlen, ENG_EINVAL, "raw tensor needs a shape (--shape)");
    t->dtype = raw_dtype;
    t->rank = raw_rank;
    memcpy(t->dims, raw_dims, (size_t)raw_rank * sizeof(int64_t));
    size_t need = (size_t)et_numel(t) * eg_dtype_size(raw_dtype);
    if (len != need)
        return eg_err(err, errlen, ENG_ESHAPE, "raw tensor has %zu bytes, shape needs %zu", len,
                      need);
    if (!(t->data = eg_alloc(need))) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    memcpy(t->data, buf, need);
    return 0;
}

int et_read(const char *path, et_format f, eng_dtype raw_dtype, int raw_rank,
            const int64_t *raw_dims, et_tensor *t, char *err, size_t errlen)
{
    size_t len;
    void *buf = et_slurp(path, &len, err, errlen);
    if (!buf) return -ENG_EIO;
    char inner[ENG_ERRLEN];
    int rc = et_parse(buf, len, f == ET_AUTO ? et_format_of(path) : f, raw_dtype, raw_rank,
                      raw_dims, t, inner, sizeof(inner));
    free(buf);
    if (rc) eg_err(err, errlen, -rc, "%s: %s", path, inner);
    return rc;
}

static int write_all(const char *path, const void *a, size_t al, const void *b, size_t bl,
                     char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) return eg_err(err, errlen, ENG_EIO, "%s: %s", path, strerror(errno));
    int ok = fwrite(a, 1, al, f) == al && (!bl || fwrite(b, 1, bl, f) == bl);
    ok &= fclose(f) == 0;
    return ok ? 0 : eg_err(err, errlen, ENG_EIO, "%s: write failed", path);
}

int et_write(const char *path, et_format f, const et_tensor *t, char *err, size_t errlen)
{
    size_t bytes = (size_t)et_numel(t) * eg_dtype_size(t->dtype);
    if (f == ET_AUTO) f = et_format_of(path);
    if (f == ET_RAW) return write_all(path, t->data, bytes, NULL, 0, err, errlen);
    if (f == ET_NPY) {
        const char *descr = t->dtype == ENG_FLOAT   ? "<f4"
                            : t->dtype == ENG_INT64 ? "<i8"
                            : t->dtype == ENG_INT32 ? "<i4"
                                                    : "|b1";
        char hdr[512], shape[256] = "";
        size_t sl = 0;
        for (int i = 0; i < t->rank; i++)
            sl += (size_t)snprintf(shape + sl, sizeof(shape) - sl, "%lld,%s", (long long)t->dims[i],
                                   i + 1 < t->rank ? " " : "");
        if (t->rank > 1) shape[sl - 1] = 0; /* (a, b) but (a,) for rank 1 */
        int n = snprintf(hdr + 10, sizeof(hdr) - 10,
                         "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape);
        size_t total = 10 + (size_t)n + 1;
        size_t pad = (64 - total % 64) % 64;
        memset(hdr + 10 + n, ' ', pad);
        hdr[10 + n + pad] = '\n';
        size_t hl = (size_t)n + pad + 1;
        memcpy(hdr, "\x93NUMPY\x01\x00", 8);
        hdr[8] = (char)(hl & 0xff);
        hdr[9] = (char)(hl >> 8);
        return write_all(path, hdr, 10 + hl, t->data, bytes, err, errlen);
    }
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[ENG_MAX_RANK];
    memcpy(dims, t->dims, sizeof(dims));
    tp.n_dims = (size_t)t->rank;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = t->dtype;
    tp.has_raw_data = 1;
    tp.raw_data.len = bytes;
    tp.raw_data.data = t->data;
    tp.name = t->name ? t->name : (char *)"";
    size_t sz = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *out = malloc(sz + 1);
    if (!out) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    onnx__tensor_proto__pack(&tp, out);
    int rc = write_all(path, out, sz, NULL, 0, err, errlen);
    free(out);
    return rc;
}
