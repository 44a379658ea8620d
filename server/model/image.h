/*
 * image: JPEG/PNG bytes -> a model's float input tensor.
 *
 * Decoding uses the system libraries (libjpeg-turbo, libpng). The header is
 * read and the dimensions checked against the limits BEFORE any pixel memory
 * is allocated, so a 65535 x 65535 image costs nothing but its header. A
 * truncated or corrupt stream is an error, never a half-grey picture.
 *
 * Preprocessing: resize (separable triangle filter whose support widens when
 * shrinking, so downscaling averages instead of aliasing; identity when the
 * size already matches), then per channel out = (pixel * scale - mean) / std,
 * written NCHW or NHWC.
 *
 * Ownership: image_decode fills a caller-owned image whose pixels it
 * allocates; image_free releases them.
 */
#ifndef SERVER_MODEL_IMAGE_H
#define SERVER_MODEL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct image {
    int width, height;
    int channels;    /* 1 (grey) or 3 (RGB) */
    uint8_t *pixels; /* height rows of width * channels bytes */
} image;

typedef struct image_limits {
    int max_side;       /* width and height at most this; 0 = 8192 */
    int64_t max_pixels; /* width * height at most this; 0 = 16 Mi */
} image_limits;

enum image_format { IMAGE_UNKNOWN = 0, IMAGE_JPEG, IMAGE_PNG };

/* Sniffs the magic bytes. */
enum image_format image_sniff(const void *data, size_t len);

/*
 * Decodes a JPEG or PNG into `channels` (1 or 3) 8-bit channels.
 * Returns 0; -ENOTSUP when the bytes are neither format (answer 415);
 * -E2BIG when the dimensions exceed the limits (413); -EINVAL when the image
 * is corrupt or truncated (400); -ENOMEM. err names the problem.
 */
int image_decode(const void *data, size_t len, int channels, const image_limits *lim, image *out,
                 char *err, size_t errlen);
void image_free(image *img);

enum image_layout { IMAGE_NCHW = 0, IMAGE_NHWC = 1 };

typedef struct image_prep {
    int width, height; /* target size */
    int channels;      /* 1 or 3; must equal the decoded image's */
    enum image_layout layout;
    float scale;   /* pixel multiplier before mean/std (1/255 for [0,1]) */
    float mean[3]; /* subtracted after scaling */
    float std[3];  /* divided by after subtracting; must be non-zero */
} image_prep;

/*
 * Writes width * height * channels floats to out. 0, or -ENOMEM (the resize
 * needs a scratch buffer of at most target width * source height floats per
 * channel).
 */
int image_preprocess(const image *img, const image_prep *p, float *out);

#endif
