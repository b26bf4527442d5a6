/*
 * The benchmark's library side: iReadCardBas(1, ...) COUNT times in a loop in this one
 * process, timed with CLOCK_MONOTONIC around the loop (the first call, which finds the readers,
 * included). Prints `calls=<n> seconds=<s>` and then the last call's pOutInfo; exits 1 at the
 * first call that does not return 0.
 *
 * Run by tests/src/bin/bench-unified.rs (scripts/bench-unified.sh builds both).
 */
/* clock_gettime under -std=c99 */
#define _POSIX_C_SOURCE 199309L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sscard_unified.h"

#define OUT_SIZE 2048

int main(int argc, char **argv)
{
    char out[OUT_SIZE];
    struct timespec start, end;
    long count, i, rc;
    char *rest;

    if (argc != 2) {
        fprintf(stderr, "usage: %s COUNT\n", argv[0]);
        return 2;
    }
    count = strtol(argv[1], &rest, 10);
    if (*rest != '\0' || count < 1) {
        fprintf(stderr, "COUNT must be a whole number of at least 1, not %s\n", argv[1]);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (i = 0; i < count; i++) {
        memset(out, 0, sizeof out);
        rc = iReadCardBas(1, out);
        if (rc != 0) {
            fprintf(stderr, "call %ld: rc=%ld %s\n", i + 1, rc, out);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("calls=%ld seconds=%.6f\n%s\n", count,
           (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9, out);
    return 0;
}
