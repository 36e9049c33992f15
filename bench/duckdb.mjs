// bench/duckdb.mjs: DuckDB side of bench/duckdb.sh (the outside anchor).
// @duckdb/node-api is installed on demand by bench/duckdb.sh into
// bench/.duckdb (ignored; never a dependency of the project).
//   node bench/duckdb.mjs convert CSV PARQUET   CSV (header) -> zstd Parquet, cohort's types
//   node bench/duckdb.mjs answer PARQUET SQL    the answer, one row, '|'-separated
//   node bench/duckdb.mjs time PARQUET SQL ROUND  per thread count (1, 2; order by ROUND):
//                                              a warm-up run, then one timed run: "@@T duck_<n>t MS"
// SQL names the table as @T@.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '.duckdb', 'node_modules', 'x.js'));
const { DuckDBInstance } = require('@duckdb/node-api');

const [mode, a, b, c] = process.argv.slice(2);
const lit = (p) => `'${p.replaceAll("'", "''")}'`;

async function connect(threads) {
	const inst = await DuckDBInstance.create(':memory:', { threads: String(threads) });
	return inst.connect();
}

if (mode === 'convert') {
	const con = await connect(2);
	await con.run(`COPY (SELECT * FROM read_csv(${lit(a)}, header = true, nullstr = '', columns = {
		'patient_id': 'BIGINT', 'age': 'INTEGER', 'visits': 'INTEGER', 'egfr': 'DOUBLE', 'amount': 'DOUBLE',
		'code': 'VARCHAR', 'seen': 'DATE'})) TO ${lit(b)} (FORMAT parquet, COMPRESSION zstd)`);
} else if (mode === 'answer') {
	const con = await connect(1);
	const r = await con.runAndReadAll(b.replaceAll('@T@', `read_parquet(${lit(a)})`));
	for (const row of r.getRowsJS()) console.log(row.map((v) => (v === null ? '' : String(v))).join('|'));
} else if (mode === 'time') {
	const sql = b.replaceAll('@T@', `read_parquet(${lit(a)})`);
	const order = Number(c) % 2 ? [2, 1] : [1, 2];
	for (const n of order) {
		const con = await connect(n);
		await con.runAndReadAll(sql);
		const t0 = process.hrtime.bigint();
		await con.runAndReadAll(sql);
		const ms = Number(process.hrtime.bigint() - t0) / 1e6;
		console.log(`@@T duck_${n}t ${ms.toFixed(3)}`);
	}
} else {
	console.error('usage: duckdb.mjs convert CSV PARQUET | answer PARQUET SQL | time PARQUET SQL ROUND');
	process.exit(1);
}
