/*
 * Fuzzes the scenario parser (loadgen/scenario.c) and the template renderer:
 * any bytes must give a scenario or a file:line message, never a crash, a
 * leak or an endless loop. Parsed scenarios are rendered once per request so
 * that substitutions are exercised too.
 */
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "loadgen/scenario_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    scenario *sc = scenario_parse((const char *)data, size, "fuzz.ini", err, sizeof(err));
    if (!sc) return 0;
    buf out = BUF_INIT;
    uint64_t rng = 42;
    for (size_t k = 0; k < sc->nclasses; k++) {
        const sc_class *c = &sc->classes[k];
        for (size_t i = 0; i < c->ntasks; i++) {
            const sc_request *r = &c->tasks[i];
            sc_render(&r->path, &out, &rng, 1, i);
            for (size_t h = 0; h < r->nheaders; h++) sc_render(&r->headers[h], &out, &rng, 1, i);
            if (r->has_body && !r->body_file) sc_render(&r->body, &out, &rng, 1, i);
            buf_reset(&out);
        }
    }
    buf_free(&out);
    scenario_free(sc);
    return 0;
}
