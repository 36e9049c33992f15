/*
 * dp.h: integer-exact noise samplers for differential privacy.
 *
 * Everything here follows C. Canonne, G. Kamath, T. Steinke, "The Discrete
 * Gaussian for Differential Privacy" (NeurIPS 2020), Algorithms 1-3:
 *
 *   dp_bernoulli_exp      Bernoulli(exp(-gamma)), gamma = num/den >= 0   (Alg. 1)
 *   dp_discrete_laplace   P(x) ~ exp(-|x|/t), t = t_num/t_den            (Alg. 2)
 *   dp_discrete_gaussian  P(x) ~ exp(-x^2/(2 sigma^2)), sigma^2 rational (Alg. 3)
 *
 * No floating point is used anywhere in sampling: every probability is a
 * ratio of integers, every coin is a uniform integer drawn by rejection from
 * random bytes (no modulo bias), and intermediate products are checked
 * 128-bit integers.  A floating-point inversion sampler (e.g. -t*log(U)) leaks
 * through the low bits of the result (Mironov 2012); these do not.
 *
 * Randomness: production always draws from the CSPRNG (dc_random, OpenSSL's
 * DRBG), buffered per thread and discarded after fork().  dp_set_test_seed()
 * switches this thread to a ChaCha20 keystream keyed by a 32-byte seed; it
 * exists only for the unit tests and the superuser-only test GUC
 * dstack_fdw.dp_test_seed, and must never be set in a deployed CVM.
 *
 * No PostgreSQL headers: failures go through DErr.
 */
#ifndef DSTACK_DP_H
#define DSTACK_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derr.h"

typedef unsigned __int128 dp_u128;
typedef __int128 dp_i128;

#define DP_SEED_LEN 32

/* ---- randomness ---- */

/* Fill buf from the current stream (CSPRNG, or the test stream when seeded). */
extern bool dp_random_bytes(uint8_t *buf, size_t len, DErr *err);
/* Test only: switch this thread to ChaCha20(seed) from its start. */
extern bool dp_set_test_seed(const uint8_t seed[DP_SEED_LEN], DErr *err);
/* Back to the CSPRNG (the default). */
extern void dp_clear_test_seed(void);
/* Is a test seed in effect? */
extern bool dp_test_seeded(void);

/* ---- samplers (Canonne-Kamath-Steinke) ---- */

/* Uniform integer in [0, n), n >= 1, by rejection sampling. */
extern bool dp_sample_uniform(uint64_t n, uint64_t *out, DErr *err);
extern bool dp_sample_uniform_wide(dp_u128 n, dp_u128 *out, DErr *err);
/* Bernoulli(num/den), 0 <= num <= den, den >= 1. */
extern bool dp_bernoulli(uint64_t num, uint64_t den, bool *out, DErr *err);
/* Bernoulli(exp(-num/den)), den >= 1. */
extern bool dp_bernoulli_exp(uint64_t num, uint64_t den, bool *out, DErr *err);
extern bool dp_bernoulli_exp_wide(dp_u128 num, dp_u128 den, bool *out, DErr *err);
/*
 * Discrete Laplace with scale t = t_num/t_den > 0: P(x) proportional to
 * exp(-|x| * t_den / t_num).  Variance 2e^{-1/t}/(1-e^{-1/t})^2.
 */
extern bool dp_discrete_laplace(uint64_t t_num, uint64_t t_den, int64_t *out, DErr *err);
/* The same for scales beyond 64 bits (fixed-point sums); t_num, t_den < 2^120. */
extern bool dp_discrete_laplace_wide(dp_u128 t_num, dp_u128 t_den, dp_i128 *out, DErr *err);
/*
 * Discrete Gaussian with sigma^2 = sigma2_num/sigma2_den > 0: P(x)
 * proportional to exp(-x^2 / (2 sigma^2)).  Both parts must be <= 2^32.
 */
extern bool dp_discrete_gaussian(uint64_t sigma2_num, uint64_t sigma2_den, int64_t *out, DErr *err);

/* ---- epsilon and scales as exact rationals ---- */

/* epsilon = milli / 1000, reduced; milli >= 1. */
extern bool dp_epsilon_from_milli(uint64_t milli, uint64_t *num, uint64_t *den, DErr *err);
/* epsilon from a decimal string ("0.5", "2", "0.125"), at most 12 fractional digits, > 0. */
extern bool dp_epsilon_parse(const char *s, uint64_t *num, uint64_t *den, DErr *err);
/*
 * Laplace scale for sensitivity delta = delta_num/delta_den and epsilon =
 * eps_num/eps_den: t = delta/epsilon, reduced.  With epsilon in thousandths
 * and integer delta this is t_num = delta*1000, t_den = epsilon_milli.
 */
extern bool dp_laplace_scale(dp_u128 delta_num, dp_u128 delta_den, uint64_t eps_num, uint64_t eps_den,
							 dp_u128 *t_num, dp_u128 *t_den, DErr *err);

#endif							/* DSTACK_DP_H */
