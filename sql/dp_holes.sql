-- dp_quantile over bounds whose range is not a finite double: with
-- lower = -1.7e308 and upper = 1.7e308, upper - lower overflowed to Infinity
-- and the answer was Infinity.  Bounds are now at most 1e12 in absolute value
-- (as for dp_sum over float8), refused with 22023, and the error shows no
-- value: a bound may be an expression over the data.
\set VERBOSITY default
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dstack_fdw;
RESET client_min_messages;
CREATE TABLE dqh_data AS SELECT g::float8 * 1e300 AS huge, g::float8 AS small FROM generate_series(-20, 20) g;

SELECT dp_quantile(huge, 0.5, -1.7e308, 1.7e308, 1.0) FROM dqh_data;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT dp_quantile(small, 0.5, 0, 1e13, 1.0) FROM dqh_data;
SELECT dp_quantile(small, 0.5, -1.0000001e12, 0, 1.0) FROM dqh_data;
-- a bound computed from the data is refused without printing it
\set VERBOSITY terse
SELECT dp_quantile(small, 0.5, 0, abs(huge) + 1, 1.0) FROM dqh_data;
\set VERBOSITY default
-- the limit itself is accepted, and the answer is finite and inside the bounds
SELECT q > -1e12 AND q < 1e12 AS finite_inside
  FROM (SELECT dp_quantile(huge, 0.5, -1e12, 1e12, 1.0) AS q FROM dqh_data) s;
SELECT q >= -1e12 AND q <= 1e12 AS finite_inside_clamped
  FROM (SELECT dp_quantile(small * 1e11, 0.9, -1e12, 1e12, 1.0) AS q FROM dqh_data) s;
DROP TABLE dqh_data;
