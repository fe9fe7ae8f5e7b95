/* seed.c — splitmix64 hashing of (salt, seed, step, index) into a seed. */
#include "engine/seed.h"

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

unsigned long ssm_seed_derive(uint64_t salt, uint64_t seed, uint64_t step, uint64_t index)
{
    uint64_t h = mix64(salt ^ mix64(seed));
    h = mix64(h ^ step);
    h = mix64(h ^ index);
    return (unsigned long)(h ^ (h >> 32));
}
