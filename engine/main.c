/* aiinfer: ONNX inference engine. Placeholder entry point until the module lands. */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: aiinfer [--help] [--version]\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("aiinfer %s\n", AISERVE_VERSION);
            return 0;
        }
        fprintf(stderr, "aiinfer: unknown option '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    usage(stderr);
    return 2;
}
