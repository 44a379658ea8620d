/*
 * image.c: decoders and the resize/normalize step. libjpeg reports fatal
 * errors through error_exit (we longjmp out) and corrupt-data warnings through
 * emit_message (we count them and fail: a picture libjpeg had to patch up is
 * not what the client sent). libpng's simplified API reports through its
 * return value and image.message.
 */
#include "server/model/image.h"

#include "lib/err.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum image_format image_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return IMAGE_JPEG;
    if (len >= 8 && memcmp(p, png_sig, 8) == 0) return IMAGE_PNG;
    return IMAGE_UNKNOWN;
}

static int check_dims(int64_t w, int64_t h, const image_limits *lim, char *err, size_t errlen)
{
    int64_t side = lim && lim->max_side ? lim->max_side : 8192;
    int64_t pixels = lim && lim->max_pixels ? lim->max_pixels : (int64_t)16 << 20;
    if (w <= 0 || h <= 0) return err_fmt_rc(err, errlen, -EINVAL, "image has no pixels");
    if (w > side || h > side)
        return err_fmt_rc(
            err, errlen, -E2BIG,
            "image is %lldx%lld: a side over the limit of %lld pixels (image-max-side)",
            (long long)w, (long long)h, (long long)side);
    if (w * h > pixels)
        return err_fmt_rc(
            err, errlen, -E2BIG,
            "image is %lldx%lld = %lld pixels: over the limit of %lld (image-max-pixels)",
            (long long)w, (long long)h, (long long)(w * h), (long long)pixels);
    return 0;
}

/* ---- JPEG ---- */

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    int warnings;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_fatal(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->mgr.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level < 0 && e->warnings++ == 0) e->mgr.format_message(cinfo, e->msg);
}

/* The volatile pixel pointer survives the longjmp so it can be freed. */
static int decode_jpeg(const void *data, size_t len, int channels, const image_limits *lim,
                       image *out, char *err, size_t errlen)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err e = {.warnings = 0};
    uint8_t *volatile pixels = NULL;
    cinfo.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_on_fatal;
    e.mgr.emit_message = jpeg_on_message;
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return err_fmt_rc(err, errlen, -EINVAL, "corrupt JPEG: %s", e.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    int rc = check_dims(cinfo.image_width, cinfo.image_height, lim, err, errlen);
    if (rc) {
        jpeg_destroy_decompress(&cinfo);
        return rc;
    }
    cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * (size_t)channels;
    pixels = malloc(stride * cinfo.output_height);
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        return err_fmt_rc(err, errlen, -ENOMEM, "out of memory decoding the image");
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (e.warnings) {
        free(pixels);
        return err_fmt_rc(err, errlen, -EINVAL, "corrupt JPEG: %s", e.msg);
    }
    *out = (image){(int)cinfo.output_width, (int)cinfo.output_height, channels, pixels};
    return 0;
}

/* ---- PNG ---- */

static int decode_png(const void *data, size_t len, int channels, const image_limits *lim,
                      image *out, char *err, size_t errlen)
{
    /* IHDR is the first chunk (signature, length, "IHDR", width, height):
     * check the size from the raw bytes before libpng allocates anything. */
    const uint8_t *b = data;
    if (len < 24 || memcmp(b + 12, "IHDR", 4) != 0)
        return err_fmt_rc(err, errlen, -EINVAL, "corrupt PNG: no IHDR chunk");
    int64_t w = (int64_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    int64_t h = (int64_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
    int rc = check_dims(w, h, lim, err, errlen);
    if (rc) return rc;
    png_image png;
    memset(&png, 0, sizeof(png));
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, data, len))
        return err_fmt_rc(err, errlen, -EINVAL, "corrupt PNG: %s", png.message);
    rc = check_dims(png.width, png.height, lim, err, errlen);
    if (rc) {
        png_image_free(&png);
        return rc;
    }
    png.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    uint8_t *pixels = malloc(PNG_IMAGE_SIZE(png));
    if (!pixels) {
        png_image_free(&png);
        return err_fmt_rc(err, errlen, -ENOMEM, "out of memory decoding the image");
    }
    /* Transparent pixels are composited onto black (background NULL). */
    if (!png_image_finish_read(&png, NULL, pixels, 0, NULL)) {
        free(pixels);
        rc = err_fmt_rc(err, errlen, -EINVAL, "corrupt PNG: %s", png.message);
        png_image_free(&png);
        return rc;
    }
    *out = (image){(int)png.width, (int)png.height, channels, pixels};
    return 0;
}

int image_decode(const void *data, size_t len, int channels, const image_limits *lim, image *out,
                 char *err, size_t errlen)
{
    *out = (image){0};
    if (channels != 1 && channels != 3)
        return err_fmt_rc(err, errlen, -EINVAL, "models take 1 or 3 image channels, not %d",
                          channels);
    switch (image_sniff(data, len)) {
    case IMAGE_JPEG: return decode_jpeg(data, len, channels, lim, out, err, errlen);
    case IMAGE_PNG: return decode_png(data, len, channels, lim, out, err, errlen);
    default: return err_fmt_rc(err, errlen, -ENOTSUP, "body is not a JPEG or PNG image");
    }
}

void image_free(image *img)
{
    free(img->pixels);
    img->pixels = NULL;
}

/* ---- resize + normalize ---- */

/* Contributions of source pixels to one output coordinate. */
typedef struct taps {
    int first, n;  /* source range */
    float *weight; /* n weights summing to 1 */
} taps;

/*
 * Triangle-filter taps for resizing src -> dst along one axis, with pixel
 * centres aligned (out x maps to in (x + 0.5) * src/dst - 0.5). When
 * shrinking, the filter widens by the ratio so every source pixel counts.
 * Returns one allocation holding the taps and their weights, or NULL.
 */
static taps *make_taps(int src, int dst)
{
    double ratio = (double)src / dst;
    double support = ratio > 1 ? ratio : 1;
    int maxn = (int)ceil(support) * 2 + 1;
    taps *t = malloc((size_t)dst * (sizeof(taps) + (size_t)maxn * sizeof(float)));
    if (!t) return NULL;
    float *w = (float *)(t + dst);
    for (int x = 0; x < dst; x++, w += maxn) {
        double centre = (x + 0.5) * ratio;
        int lo = (int)floor(centre - support), hi = (int)ceil(centre + support);
        if (lo < 0) lo = 0;
        if (hi > src) hi = src;
        double sum = 0;
        int n = 0;
        for (int s = lo; s < hi && n < maxn; s++) {
            double d = fabs((s + 0.5 - centre) / support);
            double v = d < 1 ? 1 - d : 0;
            w[n++] = (float)v;
            sum += v;
        }
        if (sum <= 0) { /* cannot happen with lo < hi, but never divide by 0 */
            w[0] = 1, n = 1, sum = 1;
        }
        for (int k = 0; k < n; k++) w[k] = (float)(w[k] / sum);
        t[x] = (taps){lo, n, w};
    }
    return t;
}

static void store(float *out, const image_prep *p, int x, int y, int c, float v)
{
    v = (v * p->scale - p->mean[c]) / p->std[c];
    if (p->layout == IMAGE_NHWC)
        out[((size_t)y * p->width + x) * p->channels + c] = v;
    else
        out[((size_t)c * p->height + y) * p->width + x] = v;
}

int image_preprocess(const image *img, const image_prep *p, float *out)
{
    int C = p->channels;
    if (img->width == p->width && img->height == p->height) {
        for (int y = 0; y < p->height; y++)
            for (int x = 0; x < p->width; x++)
                for (int c = 0; c < C; c++)
                    store(out, p, x, y, c, img->pixels[((size_t)y * img->width + x) * C + c]);
        return 0;
    }
    taps *tx = make_taps(img->width, p->width), *ty = make_taps(img->height, p->height);
    /* Horizontal pass first: tmp is source height x target width x C. */
    float *tmp = malloc((size_t)img->height * (size_t)p->width * (size_t)C * sizeof(float));
    if (!tx || !ty || !tmp) {
        free(tx), free(ty), free(tmp);
        return -ENOMEM;
    }
    for (int y = 0; y < img->height; y++) {
        const uint8_t *row = img->pixels + (size_t)y * img->width * C;
        for (int x = 0; x < p->width; x++)
            for (int c = 0; c < C; c++) {
                float acc = 0;
                for (int k = 0; k < tx[x].n; k++)
                    acc += tx[x].weight[k] * row[(size_t)(tx[x].first + k) * C + c];
                tmp[((size_t)y * p->width + x) * C + c] = acc;
            }
    }
    for (int y = 0; y < p->height; y++)
        for (int x = 0; x < p->width; x++)
            for (int c = 0; c < C; c++) {
                float acc = 0;
                for (int k = 0; k < ty[y].n; k++)
                    acc +=
                        ty[y].weight[k] * tmp[((size_t)(ty[y].first + k) * p->width + x) * C + c];
                store(out, p, x, y, c, acc);
            }
    free(tx), free(ty), free(tmp);
    return 0;
}
