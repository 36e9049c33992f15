/*
 * test_dp.c: statistical and exact tests of the DP samplers in dp.c.
 *
 * Every statistical check compares an empirical statistic of N = 100,000
 * draws with its exact theoretical value and allows 5 standard errors (the
 * standard error computed from the theoretical distribution, not the sample).
 * A correct sampler fails one such check with probability ~ 6e-7, so the
 * ~40 checks here fail spuriously about once in 40,000 runs; a wrong scale
 * (off by a few per cent) or a biased coin fails them reliably.  The
 * statistical part runs on the seeded test stream, so a run is reproducible;
 * one extra check draws from the CSPRNG to prove that path works too.
 *
 * Theory:
 *   discrete Laplace, scale t, q = e^{-1/t}: P(x) = (1-q)/(1+q) q^|x|,
 *     Var = 2q/(1-q)^2, P(|X| >= k) = 2 q^k / (1+q) for k >= 1;
 *   discrete Gaussian: moments by summing the pmf m_exp(-x^2/2s^2) over
 *     |x| <= 40 sigma (the rest is < e^{-800});
 *   Bernoulli(p): SE m_sqrt(p(1-p)/N);  chi-square: Wilson-Hilferty quantile
 *     at z = 5.
 */
#include <math.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dp.h"
#include "hex.h"
#include "unit.h"

#define N_DRAWS 100000
#define Z 5.0

static DErr err;

/*
 * The common/ Makefile links no libm, and these tests need only a few
 * functions at modest precision (1e-12 relative is ample next to a 5-SE
 * tolerance), so they are written out here.
 */
static double
m_fabs(double x)
{
	return x < 0 ? -x : x;
}

/* exp by halving the argument until small, a Taylor series, then squaring back. */
static double
m_exp(double x)
{
	int			halvings = 0;
	double		term = 1,
				sum = 1;

	while (m_fabs(x) > 0.5)
	{
		x /= 2;
		halvings++;
	}
	for (int k = 1; k < 30; k++)
	{
		term *= x / k;
		sum += term;
	}
	while (halvings-- > 0)
		sum *= sum;
	return sum;
}

/* sqrt by Newton's iteration from a safe start. */
static double
m_sqrt(double x)
{
	double		r = x > 1 ? x : 1;

	if (x <= 0)
		return 0;
	for (int i = 0; i < 200; i++)
		r = (r + x / r) / 2;
	return r;
}

/* x^k for a non-negative integer k by repeated squaring. */
static double
m_powi(double x, int k)
{
	double		r = 1;

	while (k > 0)
	{
		if (k & 1)
			r *= x;
		x *= x;
		k >>= 1;
	}
	return r;
}

/* Smallest integer >= x for the small positive values used here. */
static int
m_ceil(double x)
{
	int			i = (int) x;

	return (double) i < x ? i + 1 : i;
}

/* Print an empirical/theoretical pair and check it is within Z SEs. */
static void
check_close(const char *name, double got, double want, double se)
{
	char		label[200];
	double		z = se > 0 ? m_fabs(got - want) / se : (got == want ? 0 : INFINITY);

	snprintf(label, sizeof(label), "%s: got %.5f, theory %.5f, |z| = %.2f", name, got, want, z);
	CHECK(z <= Z, label);
}

/* Distribution moments from a pmf given as weights on [-R, R]. */
typedef struct Moments
{
	double		var;
	double		m4;
	double		tail[8];		/* P(|X| >= k) for k in ks */
} Moments;

static const int ks_lap[] = {1, 3, 10};
static const int ks_gauss[] = {1, 2, 3};	/* multiples of sigma */

/* Exact moments of discrete Laplace scale t (closed forms) and 4th moment by summation. */
static Moments
laplace_theory(double t)
{
	Moments		m = {0};
	double		q = m_exp(-1.0 / t),
				z = 0;
	int			r = (int) (60 * t) + 10;

	m.var = 2 * q / ((1 - q) * (1 - q));
	for (int x = -r; x <= r; x++)
		z += m_powi(q, abs(x));
	for (int x = -r; x <= r; x++)
		m.m4 += m_powi((double) x, 4) * m_powi(q, abs(x)) / z;
	for (int i = 0; i < 3; i++)
		m.tail[i] = 2 * m_powi(q, ks_lap[i]) / (1 + q);
	return m;
}

/* Exact moments of the discrete Gaussian by summing its pmf to +-40 sigma. */
static Moments
gauss_theory(double sigma)
{
	Moments		m = {0};
	double		z = 0;
	int			r = (int) (40 * sigma) + 1;

	for (int x = -r; x <= r; x++)
		z += m_exp(-(double) x * x / (2 * sigma * sigma));
	for (int x = -r; x <= r; x++)
	{
		double		p = m_exp(-(double) x * x / (2 * sigma * sigma)) / z;

		m.var += (double) x * x * p;
		m.m4 += m_powi((double) x, 4) * p;
		for (int i = 0; i < 3; i++)
			if (abs(x) >= m_ceil(ks_gauss[i] * sigma))
				m.tail[i] += p;
	}
	return m;
}

/* Compare N draws with theory: mean, variance, tails (thresholds ks). */
static void
check_sample(const char *what, const int64_t *xs, const Moments *th, const int *ks, int nks)
{
	double		sum = 0,
				sq = 0,
				mean,
				var;
	char		name[120];

	for (int i = 0; i < N_DRAWS; i++)
	{
		sum += (double) xs[i];
		sq += (double) xs[i] * (double) xs[i];
	}
	mean = sum / N_DRAWS;
	var = sq / N_DRAWS - mean * mean;
	snprintf(name, sizeof(name), "%s mean", what);
	check_close(name, mean, 0.0, m_sqrt(th->var / N_DRAWS));
	snprintf(name, sizeof(name), "%s variance", what);
	check_close(name, var, th->var, m_sqrt((th->m4 - th->var * th->var) / N_DRAWS));
	for (int i = 0; i < nks; i++)
	{
		int			c = 0;
		double		p = th->tail[i];

		for (int j = 0; j < N_DRAWS; j++)
			c += llabs(xs[j]) >= ks[i];
		snprintf(name, sizeof(name), "%s P(|X| >= %d)", what, ks[i]);
		check_close(name, (double) c / N_DRAWS, p, m_sqrt(p * (1 - p) / N_DRAWS));
	}
}

static int64_t xs[N_DRAWS];

static void
test_laplace(void)
{
	static const struct
	{
		uint64_t	num,
					den;
	}			scales[] = {{1, 1}, {5, 2}, {10, 1}};

	for (int s = 0; s < 3; s++)
	{
		double		t = (double) scales[s].num / scales[s].den;
		Moments		th = laplace_theory(t);
		char		what[64];
		bool		ok = true;

		for (int i = 0; i < N_DRAWS && ok; i++)
			ok = dp_discrete_laplace(scales[s].num, scales[s].den, &xs[i], &err);
		snprintf(what, sizeof(what), "laplace t=%g", t);
		CHECK(ok, "laplace draws succeed");
		if (ok)
			check_sample(what, xs, &th, ks_lap, 3);
	}
}

static void
test_gaussian(void)
{
	static const int sigmas[] = {1, 3, 10};

	for (int s = 0; s < 3; s++)
	{
		double		sigma = sigmas[s];
		Moments		th = gauss_theory(sigma);
		int			ks[3];
		char		what[64];
		bool		ok = true;

		for (int i = 0; i < 3; i++)
			ks[i] = m_ceil(ks_gauss[i] * sigma);
		for (int i = 0; i < N_DRAWS && ok; i++)
			ok = dp_discrete_gaussian((uint64_t) (sigma * sigma), 1, &xs[i], &err);
		snprintf(what, sizeof(what), "gaussian sigma=%g (exact var %.6f)", sigma, th.var);
		CHECK(ok, "gaussian draws succeed");
		if (ok)
			check_sample(what, xs, &th, ks, 3);
	}
	/* a non-integer variance goes through the same exact path */
	{
		double		sigma = m_sqrt(2.5);
		Moments		th = gauss_theory(sigma);
		int			ks[3] = {1, 2, 4};
		bool		ok = true;

		th.tail[0] = th.tail[1] = th.tail[2] = 0;
		{
			double		z = 0;

			for (int x = -80; x <= 80; x++)
				z += m_exp(-(double) x * x / 5.0);
			for (int x = -80; x <= 80; x++)
				for (int i = 0; i < 3; i++)
					if (abs(x) >= ks[i])
						th.tail[i] += m_exp(-(double) x * x / 5.0) / z;
		}
		for (int i = 0; i < N_DRAWS && ok; i++)
			ok = dp_discrete_gaussian(5, 2, &xs[i], &err);
		CHECK(ok, "gaussian sigma^2=5/2 draws succeed");
		if (ok)
			check_sample("gaussian sigma^2=5/2", xs, &th, ks, 3);
	}
}

static void
test_bernoulli_exp(void)
{
	static const struct
	{
		uint64_t	num,
					den;
	}			gs[] = {{0, 1}, {1, 2}, {1, 1}, {23, 10}, {5, 1}, {1, 1000}};

	for (int g = 0; g < 6; g++)
	{
		double		p = m_exp(-(double) gs[g].num / gs[g].den);
		int			c = 0;
		bool		ok = true,
					b = false;
		char		name[80];

		for (int i = 0; i < N_DRAWS && ok; i++)
		{
			ok = dp_bernoulli_exp(gs[g].num, gs[g].den, &b, &err);
			c += b;
		}
		snprintf(name, sizeof(name), "bernoulli(exp(-%llu/%llu))",
				 (unsigned long long) gs[g].num, (unsigned long long) gs[g].den);
		CHECK(ok, "bernoulli_exp draws succeed");
		if (p == 1.0)
			CHECK(c == N_DRAWS, "bernoulli(exp(0)) is always 1");
		else
			check_close(name, (double) c / N_DRAWS, p, m_sqrt(p * (1 - p) / N_DRAWS));
	}
}

/* Chi-square of N uniform draws in [0, n) against the Wilson-Hilferty z=5 quantile. */
static void
test_uniform(void)
{
	static const uint64_t ns[] = {2, 3, 7, 10, 255};

	for (int k = 0; k < 5; k++)
	{
		uint64_t	n = ns[k],
					v;
		int			cnt[256] = {0};
		double		chi = 0,
					e = (double) N_DRAWS / n,
					df = (double) n - 1,
					crit = df * m_powi(1 - 2 / (9 * df) + Z * m_sqrt(2 / (9 * df)), 3);
		bool		ok = true,
					inrange = true;
		char		name[120];

		for (int i = 0; i < N_DRAWS && ok; i++)
		{
			ok = dp_sample_uniform(n, &v, &err);
			inrange &= v < n;
			if (v < n)
				cnt[v]++;
		}
		for (uint64_t i = 0; i < n; i++)
			chi += (cnt[i] - e) * (cnt[i] - e) / e;
		snprintf(name, sizeof(name), "uniform n=%llu chi-square %.2f <= %.2f (df %g)",
				 (unsigned long long) n, chi, crit, df);
		CHECK(ok && inrange, "uniform draws succeed and stay in range");
		CHECK(chi <= crit, name);
	}
	/* the whole 64-bit range and the degenerate n = 1 */
	CHECK(dp_sample_uniform(1, &(uint64_t) {0}, &err), "uniform n=1");
	CHECK(!dp_sample_uniform(0, &(uint64_t) {0}, &err) && err.code == DERR_ARG, "uniform n=0 is an error");
	{
		dp_u128		w;
		bool		ok = true,
					high = false;

		for (int i = 0; i < 64 && ok; i++)
		{
			ok = dp_sample_uniform_wide(~(dp_u128) 0, &w, &err);
			high |= (w >> 127) != 0;
		}
		CHECK(ok && high, "uniform over 128 bits reaches the top bit");
	}
}

/* Seeded stream: known ChaCha20 keystream, reproducible; unseeded: not. */
static void
test_streams(void)
{
	uint8_t		seed[DP_SEED_LEN] = {0},
				b[32];
	uint64_t	a1[16],
				a2[16];
	int			same = 0;

	CHECK(dp_set_test_seed(seed, &err), "seed the test stream");
	CHECK(dp_test_seeded(), "seeded flag set");
	CHECK(dp_random_bytes(b, sizeof(b), &err), "read the test stream");
	/* RFC 8439 A.1 test vector #1: ChaCha20, zero key, zero nonce, counter 0 */
	CHECK_HEX(b, 32, "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7",
			  "seeded stream is the ChaCha20 keystream");

	seed[0] = 7;
	dp_set_test_seed(seed, &err);
	for (int i = 0; i < 16; i++)
		dp_sample_uniform(UINT64_MAX, &a1[i], &err);
	dp_set_test_seed(seed, &err);
	for (int i = 0; i < 16; i++)
		dp_sample_uniform(UINT64_MAX, &a2[i], &err);
	CHECK(memcmp(a1, a2, sizeof(a1)) == 0, "same seed, same draws");

	dp_clear_test_seed();
	CHECK(!dp_test_seeded(), "cleared: back to the CSPRNG");
	for (int i = 0; i < 16; i++)
		dp_sample_uniform(UINT64_MAX, &a1[i], &err);
	for (int i = 0; i < 16; i++)
		dp_sample_uniform(UINT64_MAX, &a2[i], &err);
	for (int i = 0; i < 16; i++)
		same += a1[i] == a2[i];
	CHECK(same == 0, "unseeded draws differ");
	/* a forked child must not replay the parent's buffered CSPRNG bytes */
	{
		uint8_t		first[1],
					mine[16],
					childs[16] = {0};
		int			fds[2];
		pid_t		pid;

		dp_random_bytes(first, 1, &err);	/* the buffer now holds unread bytes */
		if (pipe(fds) == 0 && (pid = fork()) >= 0)
		{
			if (pid == 0)
			{
				dp_random_bytes(childs, sizeof(childs), &err);
				_exit(write(fds[1], childs, sizeof(childs)) == (ssize_t) sizeof(childs) ? 0 : 1);
			}
			dp_random_bytes(mine, sizeof(mine), &err);
			CHECK(read(fds[0], childs, sizeof(childs)) == (ssize_t) sizeof(childs) &&
				  memcmp(mine, childs, sizeof(mine)) != 0, "fork: child draws fresh bytes");
			waitpid(pid, NULL, 0);
			close(fds[0]);
			close(fds[1]);
		}
		else
			CHECK(false, "fork for the stream test");
	}
	{
		int64_t		v;

		CHECK(dp_discrete_laplace(3, 1, &v, &err), "laplace from the CSPRNG");
		CHECK(dp_discrete_gaussian(9, 1, &v, &err), "gaussian from the CSPRNG");
	}
}

/* Exact rationals: epsilon parsing and Laplace scales. */
static void
test_rationals(void)
{
	uint64_t	n,
				d;
	dp_u128		tn,
				td;

	CHECK(dp_epsilon_parse("0.1", &n, &d, &err) && n == 1 && d == 10, "epsilon 0.1 = 1/10");
	CHECK(dp_epsilon_parse("2.50", &n, &d, &err) && n == 5 && d == 2, "epsilon 2.50 = 5/2");
	CHECK(dp_epsilon_parse("3", &n, &d, &err) && n == 3 && d == 1, "epsilon 3 = 3/1");
	CHECK(dp_epsilon_parse(".125", &n, &d, &err) && n == 1 && d == 8, "epsilon .125 = 1/8");
	CHECK(!dp_epsilon_parse("0", &n, &d, &err) && err.code == DERR_ARG, "epsilon 0 refused");
	CHECK(!dp_epsilon_parse("-1", &n, &d, &err), "negative epsilon refused");
	CHECK(!dp_epsilon_parse("1e3", &n, &d, &err), "exponent form refused");
	CHECK(!dp_epsilon_parse("0.0000000000001", &n, &d, &err), "13 decimals refused");
	CHECK(!dp_epsilon_parse("", &n, &d, &err), "empty refused");
	CHECK(!dp_epsilon_parse(".", &n, &d, &err), "bare dot refused");
	CHECK(dp_epsilon_from_milli(250, &n, &d, &err) && n == 1 && d == 4, "250 milli = 1/4");
	CHECK(!dp_epsilon_from_milli(0, &n, &d, &err), "0 milli refused");
	/* t = delta/epsilon: delta 1, epsilon 1/10 -> 10 */
	CHECK(dp_laplace_scale(1, 1, 1, 10, &tn, &td, &err) && tn == 10 && td == 1, "scale 1/(1/10) = 10");
	/* delta 7, epsilon 0.4 (400 milli) -> 7000/400 = 35/2 */
	CHECK(dp_laplace_scale(7, 1, 400, 1000, &tn, &td, &err) && tn == 35 && td == 2, "scale 7/0.4 = 35/2");
	CHECK(!dp_laplace_scale(0, 1, 1, 1, &tn, &td, &err), "zero sensitivity refused");
	{
		int64_t		v;

		CHECK(!dp_discrete_laplace(0, 1, &v, &err) && err.code == DERR_ARG, "zero scale refused");
		CHECK(!dp_discrete_gaussian(0, 1, &v, &err), "zero variance refused");
		CHECK(!dp_discrete_gaussian((1ULL << 32) + 1, 1, &v, &err), "variance over 2^32 refused");
	}
	/* a 1e24 fixed-point scale (dp_sum with bound 1e12 at epsilon 1e-6) works */
	{
		dp_i128		w;
		dp_u128		big = (dp_u128) 1000000000000ULL * 1000000000000ULL;
		bool		ok = true;

		for (int i = 0; i < 1000 && ok; i++)
			ok = dp_discrete_laplace_wide(big, 1, &w, &err);
		CHECK(ok, "discrete laplace at scale 1e24");
	}
}

int
main(void)
{
	uint8_t		seed[DP_SEED_LEN];
	clock_t		t0 = clock();

	test_streams();
	test_rationals();
	/* statistical part on a fixed seed: reproducible runs */
	memset(seed, 0x5a, sizeof(seed));
	dp_set_test_seed(seed, &err);
	test_uniform();
	test_bernoulli_exp();
	test_laplace();
	test_gaussian();
	dp_clear_test_seed();
	printf("cpu time %.2f s\n", (double) (clock() - t0) / CLOCKS_PER_SEC);
	UNIT_DONE();
}
