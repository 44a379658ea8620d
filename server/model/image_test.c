#include "server/model/image.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <png.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>

/* Encodes w x h x c pixels as PNG; the caller frees *out. */
static size_t make_png(const uint8_t *px, int w, int h, int c, void **out)
{
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    png_alloc_size_t n = 0;
    cr_assert(png_image_write_to_memory(&img, NULL, &n, 0, px, 0, NULL));
    *out = malloc(n);
    cr_assert(png_image_write_to_memory(&img, *out, &n, 0, px, 0, NULL));
    return n;
}

static size_t make_jpeg(const uint8_t *px, int w, int h, void **out)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &mem, &n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *out = mem;
    return n;
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static uint8_t *gradient(int w, int h, int c)
{
    uint8_t *p = malloc((size_t)w * h * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                p[((size_t)y * w + x) * c + k] = (uint8_t)(x * 150 / w + y * 50 / h + k * 25);
    return p;
}

Test(image, png_decodes_pixel_exact)
{
    uint8_t *px = gradient(13, 9, 3);
    void *png;
    size_t n = make_png(px, 13, 9, 3, &png);
    image img;
    char err[128];
    cr_assert_eq(image_decode(png, n, 3, NULL, &img, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(img.width, 13);
    cr_assert_eq(img.height, 9);
    cr_assert_eq(memcmp(img.pixels, px, 13 * 9 * 3), 0);
    image_free(&img);
    free(png);
    free(px);
}

Test(image, jpeg_decodes_close_to_the_source)
{
    uint8_t *px = gradient(32, 16, 3);
    void *jpg;
    size_t n = make_jpeg(px, 32, 16, &jpg);
    image img;
    char err[128];
    cr_assert_eq(image_decode(jpg, n, 3, NULL, &img, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(img.width, 32);
    int worst = 0;
    for (int i = 0; i < 32 * 16 * 3; i++) {
        int d = abs((int)img.pixels[i] - (int)px[i]);
        if (d > worst) worst = d;
    }
    cr_assert_lt(worst, 24, "quality-100 JPEG off by %d", worst);
    image_free(&img);
    cr_assert_eq(image_decode(jpg, n, 1, NULL, &img, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(img.channels, 1);
    image_free(&img);
    free(jpg);
    free(px);
}

Test(image, non_images_are_enotsup)
{
    image img;
    char err[128];
    cr_assert_eq(image_decode("GIF89a....", 10, 3, NULL, &img, err, sizeof(err)), -ENOTSUP);
    cr_assert(strstr(err, "not a JPEG or PNG") != NULL);
    cr_assert_eq(image_decode("", 0, 3, NULL, &img, err, sizeof(err)), -ENOTSUP);
}

Test(image, truncated_png_and_jpeg_are_einval_not_grey)
{
    uint8_t *px = gradient(64, 64, 3);
    void *png, *jpg;
    size_t np = make_png(px, 64, 64, 3, &png);
    size_t nj = make_jpeg(px, 64, 64, &jpg);
    image img;
    char err[128];
    cr_assert_eq(image_decode(png, np / 2, 3, NULL, &img, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "PNG") != NULL);
    cr_assert_eq(image_decode(jpg, nj / 2, 3, NULL, &img, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "JPEG") != NULL);
    cr_assert_eq(image_decode(jpg, 3, 3, NULL, &img, err, sizeof(err)), -EINVAL);
    ((uint8_t *)png)[40] ^= 0xff; /* inside a chunk: CRC mismatch */
    cr_assert_eq(image_decode(png, np, 3, NULL, &img, err, sizeof(err)), -EINVAL);
    free(png), free(jpg), free(px);
}

Test(image, dimensions_over_the_limit_fail_before_allocating)
{
    /* A PNG header claiming 60000 x 60000: only the header exists. */
    static const uint8_t hdr[] = {0x89, 'P',  'N', 'G', '\r', '\n', 0x1a, '\n', 0,    0, 0,
                                  13,   'I',  'H', 'D', 'R',  0,    0,    0xea, 0x60, 0, 0,
                                  0xea, 0x60, 8,   2,   0,    0,    0,    0x0,  0,    0, 0};
    uint8_t h[sizeof(hdr)];
    memcpy(h, hdr, sizeof(h));
    uint32_t crc = crc32_png(h + 12, 17);
    h[29] = (uint8_t)(crc >> 24), h[30] = (uint8_t)(crc >> 16), h[31] = (uint8_t)(crc >> 8),
    h[32] = (uint8_t)crc;
    image img;
    char err[128];
    cr_assert_eq(image_decode(h, sizeof(h), 3, NULL, &img, err, sizeof(err)), -E2BIG, "%s", err);
    cr_assert(strstr(err, "60000x60000") != NULL, "%s", err);
    uint8_t *px = gradient(40, 30, 3);
    void *png;
    size_t n = make_png(px, 40, 30, 3, &png);
    image_limits lim = {.max_side = 32};
    cr_assert_eq(image_decode(png, n, 3, &lim, &img, err, sizeof(err)), -E2BIG);
    lim = (image_limits){.max_pixels = 1000};
    cr_assert_eq(image_decode(png, n, 3, &lim, &img, err, sizeof(err)), -E2BIG);
    free(png), free(px);
}

Test(image, preprocess_normalizes_in_nchw_and_nhwc)
{
    uint8_t px[2 * 1 * 3] = {0, 128, 255, 10, 20, 30};
    image img = {2, 1, 3, px};
    image_prep p = {.width = 2,
                    .height = 1,
                    .channels = 3,
                    .scale = 1.0f / 255,
                    .mean = {0.5f, 0.5f, 0.5f},
                    .std = {0.5f, 0.5f, 0.5f}};
    float out[6];
    cr_assert_eq(image_preprocess(&img, &p, out), 0);
    /* NCHW: channel 0 of both pixels first */
    cr_assert_float_eq(out[0], -1.0f, 1e-6);
    cr_assert_float_eq(out[1], (10 / 255.0f - 0.5f) / 0.5f, 1e-6);
    cr_assert_float_eq(out[4], 1.0f, 1e-6);
    p.layout = IMAGE_NHWC;
    cr_assert_eq(image_preprocess(&img, &p, out), 0);
    cr_assert_float_eq(out[2], 1.0f, 1e-6);
    cr_assert_float_eq(out[3], (10 / 255.0f - 0.5f) / 0.5f, 1e-6);
}

Test(image, resize_keeps_flat_images_flat_and_averages_when_shrinking)
{
    uint8_t *px = malloc(100 * 60 * 3);
    memset(px, 77, 100 * 60 * 3);
    image img = {100, 60, 3, px};
    image_prep p = {.width = 17, .height = 23, .channels = 3, .scale = 1, .std = {1, 1, 1}};
    float out[17 * 23 * 3];
    cr_assert_eq(image_preprocess(&img, &p, out), 0);
    for (int i = 0; i < 17 * 23 * 3; i++) cr_assert_float_eq(out[i], 77.0f, 1e-3);
    /* A 2x2 checkerboard shrunk to 1x1 is its mean. */
    uint8_t cb[4] = {0, 200, 200, 0};
    image g = {2, 2, 1, cb};
    image_prep q = {.width = 1, .height = 1, .channels = 1, .scale = 1, .std = {1}};
    cr_assert_eq(image_preprocess(&g, &q, out), 0);
    cr_assert_float_eq(out[0], 100.0f, 1e-3);
    free(px);
}
