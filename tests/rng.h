/* rng.h — the tests' seeded random numbers (splitmix64): rng_seed(s), then
 * rng_unif() in (0, 1) and rng_normal() ~ N(0, 1).  Header-only, for test
 * files (each test binary is one translation unit). */
#ifndef SSM_TEST_RNG_H
#define SSM_TEST_RNG_H

#include <math.h>
#include <stdint.h>

static uint64_t rng_state;

static inline void rng_seed(uint64_t s) { rng_state = s * 0x9e3779b97f4a7c15ull + 1; }

static inline double rng_unif(void) /* (0, 1) */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static inline double rng_normal(void)
{
    return sqrt(-2.0 * log(rng_unif())) * cos(6.283185307179586 * rng_unif());
}

#endif
