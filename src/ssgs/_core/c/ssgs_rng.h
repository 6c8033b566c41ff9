/*
 * ssgs_rng.h: xoshiro256** (Blackman and Vigna, 2018) seeded by splitmix64.
 * Header-only so every kernel that draws random numbers shares one stream
 * definition; the same seed gives the same numbers on every platform.
 */
#ifndef SSGS_RNG_H
#define SSGS_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} ssgs_rng;

static inline uint64_t ssgs_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void ssgs_rng_seed(ssgs_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; ++i)
        r->s[i] = ssgs_splitmix64(&seed);
}

static inline uint64_t ssgs_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t ssgs_rng_next(ssgs_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = ssgs_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ssgs_rotl(s[3], 45);
    return result;
}

/* uniform double in [0, 1) with 53 random bits */
static inline double ssgs_rng_uniform(ssgs_rng *r)
{
    return (double)(ssgs_rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
