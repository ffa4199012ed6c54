/**
 * npm run bench:query — 24 h of 1 Hz data of one device (86,400 samples per type, stored as the
 * ingest stores them: 8,640 datagram rows of 10 samples), then GET /api/devices/{id}/metrics with
 * every=1m for a measured and a computed metric, through the real app (inject). Baseline in the
 * same run: a bare `count(*)` scan of the same rows. Runs on PGlite, or on PostgreSQL with
 * DATABASE_URL (a fresh schema). Prints one JSON line.
 */
import { sql } from 'kysely'

const RUNS = 15
const DAY = 86_400_000

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] as number

async function main() {
  // The test helper reads TEST_DATABASE_URL when it is first imported.
  if (process.env.DATABASE_URL) process.env.TEST_DATABASE_URL = process.env.DATABASE_URL
  const { build } = await import('../test/helpers/build.ts')
  const t = await build()
  try {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/devices',
      payload: { device_id: 'query-bench', device_name: 'q' },
    })
    const pk = res.json().id as number
    const start = Math.floor((Date.now() - 2 * DAY) / 60_000) * 60_000
    await sql`
      insert into telemetry (device_pk, t0, seq, n, step_ms, voltage_dc, current_dc)
      select ${pk}, ${new Date(start).toISOString()}::timestamptz + g * interval '10 seconds', g, 10, 1000,
        array[750, 751, 752, 753, 754, 755, 756, 757, 758, 759]::float8[] ,
        array[300, 301, 302, 303, 304, -200, -201, 0, 1, 2]::float8[]
      from generate_series(0, 8639) as g`.execute(t.app.db)

    const window = `start=${new Date(start).toISOString()}&stop=${new Date(start + DAY).toISOString()}`
    const time = async (fn: () => Promise<unknown>) => {
      const out: number[] = []
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now()
        await fn()
        out.push(performance.now() - t0)
      }
      return out
    }
    const baseline = await time(() =>
      sql`select count(*) from telemetry where device_pk = ${pk}
        and t0 >= ${new Date(start).toISOString()}::timestamptz
        and t0 < ${new Date(start + DAY).toISOString()}::timestamptz`.execute(t.app.db),
    )
    const query = (metric: string) => async () => {
      const r = await t.app.inject({
        url: `/api/devices/query-bench/metrics?metric=${metric}&every=1m&${window}`,
      })
      if (r.statusCode !== 200 || r.json().length !== 1440)
        throw new Error(`unexpected answer ${r.statusCode}`)
    }
    const voltage = await time(query('voltage_dc'))
    const power = await time(query('power_active'))
    const result = {
      engine: t.app.dbEngine,
      samples_per_type: 86_400,
      points_answered: 1440,
      voltage_every_1m_median_ms: Number(median(voltage).toFixed(1)),
      voltage_every_1m_p95_ms: Number(p95(voltage).toFixed(1)),
      power_every_1m_median_ms: Number(median(power).toFixed(1)),
      power_every_1m_p95_ms: Number(p95(power).toFixed(1)),
      baseline_count_scan_median_ms: Number(median(baseline).toFixed(1)),
      voltage_ratio_to_scan: Number((median(voltage) / median(baseline)).toFixed(2)),
      target_ms: 100,
    }
    process.stdout.write(`${JSON.stringify(result)}\n`)
  } finally {
    await t.close()
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
