/* infer: shapes and folded constants of every value for one batch size.
 * Private to engine/. */
#ifndef ENGINE_INFER_H
#define ENGINE_INFER_H

#include "engine/kernels.h"

typedef struct ei_views {
    int n;
    ek_view *view;   /* per graph value; data set for constants and folded values */
    uint8_t *owned;  /* 1 where view[i].data was allocated here */
    uint8_t *folded; /* per node: 1 when evaluated here (no runtime step) */
} ei_views;

/* Runs shape inference for `batch` (dynamic dim 0 of the inputs); with fold set,
 * also evaluates constant nodes. NULL on error, with the message in err. */
ei_views *ei_infer(const eg_graph *g, int batch, int fold, char *err, size_t errlen);
void ei_views_free(ei_views *v);
/* Fills kernel arguments of node n from per-value views (fused sum as input 3). */
int ei_args(const eg_graph *g, const eg_node *n, ek_view *views, ek_args *a, char *err,
            size_t errlen);

#endif
