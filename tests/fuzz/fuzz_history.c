/* fuzz_history.c — libFuzzer harness: the CSV reader behind train.csv and
 * ssmlab plot (history_load_file, scenarios/history.c), strict and ragged,
 * then a series looked up by column name. */
#include "tests/fuzz/fuzz_file.h"

#include <stdlib.h>

#include "scenarios/history.h"

static void load(const char *path, int ragged)
{
    history h = {0};
    if (history_load_file(&h, path, ragged) == SSM_OK && h.n_rows > 0) {
        double *steps = malloc((size_t)h.n_rows * sizeof *steps);   /* (n_rows) */
        double *values = malloc((size_t)h.n_rows * sizeof *values); /* (n_rows) */
        if (steps && values) history_series(&h, "val", "loss", steps, values);
        free(steps);
        free(values);
    }
    history_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("train.csv", data, size);
    load(path, 0);
    load(path, 1);
    return 0;
}
