/* seed.h — one generator seed per (stream, seed, step, index), so every data
 * stream (text batches, image batches, MQAR, attacks) draws reproducibly
 * from the run's seed and the step alone, and streams never share draws. */
#ifndef SSM_SEED_H
#define SSM_SEED_H

#include <stdint.h>

/* salt names the stream (e.g. the bytes of "text"); the result seeds a GSL
 * generator (gsl_rng_set). */
unsigned long ssm_seed_derive(uint64_t salt, uint64_t seed, uint64_t step, uint64_t index);

#endif
