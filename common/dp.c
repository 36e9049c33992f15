/*
 * dp.c: integer-exact DP samplers (Canonne, Kamath, Steinke, NeurIPS 2020).
 *
 * See dp.h for the why.  Layout: the random byte stream (CSPRNG or test
 * ChaCha20), uniform integers by rejection, Algorithm 1 (Bernoulli(exp(-g))),
 * Algorithm 2 (discrete Laplace), Algorithm 3 (discrete Gaussian), then the
 * rational helpers for epsilon and scales.  All arithmetic is on unsigned
 * 128-bit integers with explicit overflow checks.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "dp.h"

/* ------------------------------------------------------------------ */
/* random byte stream                                                  */
/* ------------------------------------------------------------------ */

/*
 * Samplers consume a few bytes per coin; one RAND_bytes call per coin would
 * dominate the cost, so bytes come from a per-thread buffer.  A forked
 * child (every PostgreSQL backend) must never replay bytes its parent had
 * buffered: a pthread_atfork() child handler drops them (the forking thread
 * is the only one in the child, so its buffer is the only one that exists).
 */
#define DP_BUF_LEN 512

typedef struct DpStream
{
	uint8_t		buf[DP_BUF_LEN];
	size_t		pos;			/* next unread byte; == len when empty */
	size_t		len;
	EVP_CIPHER_CTX *test_ctx;	/* non-NULL: seeded ChaCha20 test stream */
} DpStream;

static _Thread_local DpStream dp_stream;
static pthread_once_t dp_atfork_once = PTHREAD_ONCE_INIT;

/* Throw away buffered bytes (mode switch, fork): they must not be reused. */
static void
stream_drop(void)
{
	explicit_bzero(dp_stream.buf, sizeof(dp_stream.buf));
	dp_stream.pos = dp_stream.len = 0;
}

/* Refill the buffer from the current source. */
static bool
stream_refill(DErr *err)
{
	if (dp_stream.test_ctx != NULL)
	{
		static const uint8_t zeros[DP_BUF_LEN];
		int			outl = 0;

		/* ChaCha20 keystream = encryption of zeros; deterministic for a seed. */
		if (EVP_EncryptUpdate(dp_stream.test_ctx, dp_stream.buf, &outl, zeros, DP_BUF_LEN) != 1 ||
			outl != DP_BUF_LEN)
			return derr_set(err, DERR_CRYPTO, "the test random stream failed");
	}
	else if (!dc_random(dp_stream.buf, DP_BUF_LEN, err))
		return false;
	dp_stream.pos = 0;
	dp_stream.len = DP_BUF_LEN;
	return true;
}

/* fork() child: forget the parent's buffered bytes (see DpStream). */
static void
stream_atfork_child(void)
{
	stream_drop();
}

/* Register the fork handler once per process. */
static void
stream_register_atfork(void)
{
	(void) pthread_atfork(NULL, NULL, stream_atfork_child);
}

bool
dp_random_bytes(uint8_t *buf, size_t len, DErr *err)
{
	(void) pthread_once(&dp_atfork_once, stream_register_atfork);
	while (len > 0)
	{
		size_t		n;

		if (dp_stream.pos >= dp_stream.len && !stream_refill(err))
			return false;
		n = dp_stream.len - dp_stream.pos;
		if (n > len)
			n = len;
		memcpy(buf, dp_stream.buf + dp_stream.pos, n);
		explicit_bzero(dp_stream.buf + dp_stream.pos, n);
		dp_stream.pos += n;
		buf += n;
		len -= n;
	}
	return true;
}

/* Test only (see dp.h): a reproducible stream so tests can pin outputs. */
bool
dp_set_test_seed(const uint8_t seed[DP_SEED_LEN], DErr *err)
{
	static const uint8_t iv[16];	/* ChaCha20: 4-byte counter + 12-byte nonce, all zero */
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx == NULL)
		return derr_set(err, DERR_NOMEM, "could not allocate the test random stream");
	if (EVP_EncryptInit_ex(ctx, EVP_chacha20(), NULL, seed, iv) != 1)
	{
		EVP_CIPHER_CTX_free(ctx);
		return derr_set(err, DERR_CRYPTO, "could not key the test random stream");
	}
	dp_clear_test_seed();
	dp_stream.test_ctx = ctx;
	return true;
}

/* Back to the CSPRNG; also drops any buffered bytes of the old stream. */
void
dp_clear_test_seed(void)
{
	if (dp_stream.test_ctx != NULL)
		EVP_CIPHER_CTX_free(dp_stream.test_ctx);
	dp_stream.test_ctx = NULL;
	stream_drop();
}

/* Lets callers (the SQL layer) say in logs which stream produced noise. */
bool
dp_test_seeded(void)
{
	return dp_stream.test_ctx != NULL;
}

/* ------------------------------------------------------------------ */
/* uniform integers                                                    */
/* ------------------------------------------------------------------ */

/* Number of significant bits of x (0 for 0). */
static int
bitlen128(dp_u128 x)
{
	uint64_t	hi = (uint64_t) (x >> 64),
				lo = (uint64_t) x;

	if (hi)
		return 128 - __builtin_clzll(hi);
	return lo ? 64 - __builtin_clzll(lo) : 0;
}

/*
 * Uniform in [0, n): draw just enough bits to cover n-1 and reject values
 * >= n.  Each try succeeds with probability > 1/2, and rejection (unlike a
 * modulo) gives every value exactly the same probability.
 */
bool
dp_sample_uniform_wide(dp_u128 n, dp_u128 *out, DErr *err)
{
	int			bits,
				nbytes;
	dp_u128		mask;

	if (n == 0)
		return derr_set(err, DERR_ARG, "uniform sampler called with an empty range");
	if (n == 1)
	{
		*out = 0;
		return true;
	}
	bits = bitlen128(n - 1);
	nbytes = (bits + 7) / 8;
	mask = bits == 128 ? ~(dp_u128) 0 : (((dp_u128) 1 << bits) - 1);
	for (;;)
	{
		uint8_t		b[16];
		dp_u128		v = 0;

		if (!dp_random_bytes(b, (size_t) nbytes, err))
			return false;
		for (int i = 0; i < nbytes; i++)
			v = (v << 8) | b[i];
		v &= mask;
		if (v < n)
		{
			*out = v;
			return true;
		}
	}
}

/* 64-bit form of the uniform sampler (the API most callers want). */
bool
dp_sample_uniform(uint64_t n, uint64_t *out, DErr *err)
{
	dp_u128		v;

	if (!dp_sample_uniform_wide(n, &v, err))
		return false;
	*out = (uint64_t) v;
	return true;
}

/* Bernoulli(num/den) from one uniform draw in [0, den). */
static bool
bernoulli_wide(dp_u128 num, dp_u128 den, bool *out, DErr *err)
{
	dp_u128		u;

	if (den == 0 || num > den)
		return derr_set(err, DERR_ARG, "bernoulli probability is not in [0, 1]");
	if (!dp_sample_uniform_wide(den, &u, err))
		return false;
	*out = u < num;
	return true;
}

/* Public 64-bit Bernoulli(num/den). */
bool
dp_bernoulli(uint64_t num, uint64_t den, bool *out, DErr *err)
{
	return bernoulli_wide(num, den, out, err);
}

/* ------------------------------------------------------------------ */
/* Algorithm 1: Bernoulli(exp(-gamma))                                 */
/* ------------------------------------------------------------------ */

/*
 * gamma = num/den in [0, 1]: draw A_k ~ Bernoulli(gamma/k) for k = 1, 2, ...
 * until one fails; the answer is 1 iff the failing k is odd.  P(K > k) =
 * gamma^k/k!, so P(K odd) = sum (-gamma)^j/j! = exp(-gamma).
 */
static bool
bernoulli_exp_le1(dp_u128 num, dp_u128 den, bool *out, DErr *err)
{
	uint64_t	k = 1;

	for (;;)
	{
		dp_u128		dk;
		bool		a = false;

		if (__builtin_mul_overflow(den, (dp_u128) k, &dk))
			return derr_set(err, DERR_ARG, "bernoulli(exp(-gamma)): denominator too large for exact arithmetic");
		if (!bernoulli_wide(num, dk, &a, err))
			return false;
		if (!a)
			break;
		k++;
	}
	*out = (k & 1) != 0;
	return true;
}

/*
 * gamma > 1: exp(-gamma) = exp(-1)^floor(gamma) * exp(-frac(gamma)), as
 * independent coins; stop at the first failing one (so a large gamma costs
 * about 1.6 coins on average, not floor(gamma)).
 */
bool
dp_bernoulli_exp_wide(dp_u128 num, dp_u128 den, bool *out, DErr *err)
{
	dp_u128		whole,
				rem;

	if (den == 0)
		return derr_set(err, DERR_ARG, "bernoulli(exp(-gamma)) called with a zero denominator");
	if (num <= den)
		return bernoulli_exp_le1(num, den, out, err);
	whole = num / den;
	rem = num - whole * den;
	for (dp_u128 i = 0; i < whole; i++)
	{
		bool		b = false;

		if (!bernoulli_exp_le1(1, 1, &b, err))
			return false;
		if (!b)
		{
			*out = false;
			return true;
		}
	}
	return bernoulli_exp_le1(rem, den, out, err);
}

/* 64-bit form of Algorithm 1. */
bool
dp_bernoulli_exp(uint64_t num, uint64_t den, bool *out, DErr *err)
{
	return dp_bernoulli_exp_wide(num, den, out, err);
}

/* ------------------------------------------------------------------ */
/* Algorithm 2: discrete Laplace                                       */
/* ------------------------------------------------------------------ */

/*
 * CKS Algorithm 2 with t := t_num, s := t_den (scale t/s).  U uniform in
 * [0, t) accepted with probability exp(-U/t) and V geometric with
 * Bernoulli(exp(-1)) steps give X = U + tV with P(X) ~ exp(-X/t); Y =
 * floor(X/s) is then geometric with ratio exp(-s/t); a random sign, with
 * "-0" rejected, makes it two-sided.
 */
bool
dp_discrete_laplace_wide(dp_u128 t_num, dp_u128 t_den, dp_i128 *out, DErr *err)
{
	const dp_u128 lim = (dp_u128) 1 << 120;

	if (t_num == 0 || t_den == 0)
		return derr_set(err, DERR_ARG, "discrete laplace scale must be positive");
	if (t_num >= lim || t_den >= lim)
		return derr_set(err, DERR_ARG, "discrete laplace scale too large for exact arithmetic");
	for (;;)
	{
		dp_u128		u,
					v = 0,
					x,
					y;
		bool		d = false,
					a = false,
					b = false;

		if (!dp_sample_uniform_wide(t_num, &u, err) ||
			!dp_bernoulli_exp_wide(u, t_num, &d, err))
			return false;
		if (!d)
			continue;
		for (;;)
		{
			if (!bernoulli_exp_le1(1, 1, &a, err))
				return false;
			if (!a)
				break;
			v++;
		}
		if (__builtin_mul_overflow(t_num, v, &x) || __builtin_add_overflow(x, u, &x))
			return derr_set(err, DERR_ARG, "discrete laplace sample overflowed 128 bits");
		y = x / t_den;
		if (y >> 126)
			return derr_set(err, DERR_ARG, "discrete laplace sample overflowed 128 bits");
		if (!bernoulli_wide(1, 2, &b, err))
			return false;
		if (b && y == 0)
			continue;
		*out = b ? -(dp_i128) y : (dp_i128) y;
		return true;
	}
}

/* 64-bit form of Algorithm 2; a sample beyond int64 (absurd scales) is an error. */
bool
dp_discrete_laplace(uint64_t t_num, uint64_t t_den, int64_t *out, DErr *err)
{
	dp_i128		v;

	if (!dp_discrete_laplace_wide(t_num, t_den, &v, err))
		return false;
	if (v > INT64_MAX || v < -INT64_MAX)
		return derr_set(err, DERR_ARG, "discrete laplace sample does not fit in 64 bits");
	*out = (int64_t) v;
	return true;
}

/* ------------------------------------------------------------------ */
/* Algorithm 3: discrete Gaussian                                      */
/* ------------------------------------------------------------------ */

/*
 * sigma^2 = a/b.  t = floor(sigma) + 1; draw Y ~ Lap_Z(t) and accept with
 * probability exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)), i.e. gamma =
 * (|Y| b t - a)^2 / (2 a b t^2) exactly.  If the numerator overflows 128
 * bits then gamma > 2^58 (a, b <= 2^32), so acceptance has probability below
 * exp(-2^58) and we reject: the only inexactness, far below any meaningful
 * level, and documented here.
 */
bool
dp_discrete_gaussian(uint64_t sigma2_num, uint64_t sigma2_den, int64_t *out, DErr *err)
{
	const uint64_t lim = (uint64_t) 1 << 32;
	dp_u128		a = sigma2_num,
				b = sigma2_den,
				lo = 0,
				hi,
				t,
				den;

	if (a == 0 || b == 0)
		return derr_set(err, DERR_ARG, "discrete gaussian variance must be positive");
	if (a > lim || b > lim)
	{
		derr_set(err, DERR_ARG, "discrete gaussian variance too large for exact arithmetic");
		derr_detail(err, "Numerator and denominator of sigma^2 must each be at most 2^32; got %llu/%llu.",
					(unsigned long long) sigma2_num, (unsigned long long) sigma2_den);
		return false;
	}
	/* floor(sqrt(a/b)) = max r with r^2 b <= a, by bisection. */
	hi = (dp_u128) 1 << 33;
	while (lo < hi)
	{
		dp_u128		mid = (lo + hi + 1) / 2;

		if (mid * mid * b <= a)
			lo = mid;
		else
			hi = mid - 1;
	}
	t = lo + 1;
	den = 2 * a * b * t * t;	/* <= 2 * 2^32 * 2^32 * 2^34: fits */
	for (;;)
	{
		dp_i128		y;
		dp_u128		ay,
					q,
					num;
		bool		c = false;

		if (!dp_discrete_laplace_wide(t, 1, &y, err))
			return false;
		ay = y < 0 ? (dp_u128) (-y) : (dp_u128) y;
		if (__builtin_mul_overflow(ay, b * t, &q))
			continue;			/* gamma astronomically large: reject (see above) */
		q = q >= a ? q - a : a - q;
		if (__builtin_mul_overflow(q, q, &num))
			continue;
		if (!dp_bernoulli_exp_wide(num, den, &c, err))
			return false;
		if (c)
		{
			if (y > INT64_MAX || y < -INT64_MAX)
				return derr_set(err, DERR_ARG, "discrete gaussian sample does not fit in 64 bits");
			*out = (int64_t) y;
			return true;
		}
	}
}

/* ------------------------------------------------------------------ */
/* epsilon and scales                                                  */
/* ------------------------------------------------------------------ */

/* Greatest common divisor (Euclid), for reducing fractions. */
static dp_u128
gcd128(dp_u128 a, dp_u128 b)
{
	while (b)
	{
		dp_u128		r = a % b;

		a = b;
		b = r;
	}
	return a;
}

/* epsilon in thousandths, the unit policies store, as a reduced fraction. */
bool
dp_epsilon_from_milli(uint64_t milli, uint64_t *num, uint64_t *den, DErr *err)
{
	dp_u128		g;

	if (milli == 0)
		return derr_set(err, DERR_ARG, "epsilon must be greater than 0");
	g = gcd128(milli, 1000);
	*num = (uint64_t) (milli / g);
	*den = (uint64_t) (1000 / g);
	return true;
}

/*
 * A decimal string as an exact fraction: "0.1" is 1/10, not the binary
 * double nearest to it, so the scale the noise uses is the epsilon written.
 */
bool
dp_epsilon_parse(const char *s, uint64_t *num, uint64_t *den, DErr *err)
{
	const char *p = s;
	uint64_t	n = 0,
				d = 1;
	int			frac = -1,
				digits = 0;
	dp_u128		g;

	if (s == NULL || *s == '\0')
		return derr_set(err, DERR_ARG, "epsilon is empty");
	for (; *p; p++)
	{
		if (*p == '.' && frac < 0)
		{
			frac = 0;
			continue;
		}
		if (*p < '0' || *p > '9')
		{
			derr_set(err, DERR_ARG, "epsilon is not a decimal number");
			derr_detail(err, "Got \"%.64s\"; write it like 0.5 or 2.", s);
			return false;
		}
		if (frac >= 0 && ++frac > 12)
			return derr_set(err, DERR_ARG, "epsilon has more than 12 decimal places");
		if (n > (UINT64_MAX - 9) / 10 || (frac >= 0 && d > UINT64_MAX / 10))
			return derr_set(err, DERR_ARG, "epsilon has too many digits");
		n = n * 10 + (uint64_t) (*p - '0');
		if (frac > 0)
			d *= 10;
		digits++;
	}
	if (digits == 0)
		return derr_set(err, DERR_ARG, "epsilon is not a decimal number");
	if (n == 0)
		return derr_set(err, DERR_ARG, "epsilon must be greater than 0");
	g = gcd128(n, d);
	*num = (uint64_t) (n / g);
	*den = (uint64_t) (d / g);
	return true;
}

/* t = delta / epsilon = (delta_num * eps_den) / (delta_den * eps_num), reduced. */
bool
dp_laplace_scale(dp_u128 delta_num, dp_u128 delta_den, uint64_t eps_num, uint64_t eps_den,
				 dp_u128 *t_num, dp_u128 *t_den, DErr *err)
{
	dp_u128		g1,
				g2,
				n,
				d;

	if (delta_num == 0 || delta_den == 0)
		return derr_set(err, DERR_ARG, "sensitivity must be positive");
	if (eps_num == 0 || eps_den == 0)
		return derr_set(err, DERR_ARG, "epsilon must be greater than 0");
	/* cross-reduce first so the products overflow as late as possible */
	g1 = gcd128(delta_num, eps_num);
	g2 = gcd128(delta_den, eps_den);
	if (__builtin_mul_overflow(delta_num / g1, (dp_u128) (eps_den / g2), &n) ||
		__builtin_mul_overflow(delta_den / g2, (dp_u128) (eps_num / g1), &d))
		return derr_set(err, DERR_ARG, "laplace scale too large for exact arithmetic");
	g1 = gcd128(n, d);
	*t_num = n / g1;
	*t_den = d / g1;
	return true;
}
