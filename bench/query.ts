/**
 * npm run bench:query — issue 18's query targets, through the real app (inject, signed in):
 *  (a) 30 days of 1 Hz data of one meter at every=1h        < 100 ms (median)
 *  (b) the fleet's (1,000 meters) last 24 h at every=15m     < 1 s: GET /api/fleet/metrics (all
 *      pages), against 1,000 per-device /metrics calls (before it existed); with FLEET_DEVICES
 *      set, the budget scales with it (1 ms a meter)
 *  (c) 24 h of 1 Hz data of one meter at every=1m            < 100 ms (median)
 * Data is stored through PostgresTelemetryStore.write (rows and rollup_dirty marks as the ingest
 * makes them); the rollups are then computed by the server itself: the first query of each range
 * recomputes its dirty hours (the refresh the background task also runs), timed as `refresh`.
 * The meter of (a)/(c) sends 10 samples at 1 Hz every 10 s. The fleet is scaled down: FLEET_DEVICES
 * meters (1,000) at 0.1 Hz, 10 samples every 100 s — every minute still has samples, so the
 * rollups the query reads are the full fleet's; the raw table and the refresh are 1/10 of it.
 * Baselines in the same run: a bare count(*) of the meter's 24 h of rows; the fleet's windows from
 * the rollups in one SQL statement (what a fleet endpoint would cost at least). PGlite, or PostgreSQL
 * with DATABASE_URL (a fresh schema). Prints one line per target, then one JSON line.
 */
import { sql } from 'kysely'
import { seedDevices, seedTelemetry } from './lib/query-seed.ts'

const RUNS = 15
const FLEET_RUNS = 5
const HOUR = 3_600_000
const DAY = 24 * HOUR
const FLEET = Number(process.env.FLEET_DEVICES ?? 1000)

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] as number
const ms = (x: number) => Number(x.toFixed(1))

async function time(runs: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    await fn()
    out.push(performance.now() - t0)
  }
  return out
}

async function main() {
  // The test helper reads TEST_DATABASE_URL when it is first imported.
  if (process.env.DATABASE_URL) process.env.TEST_DATABASE_URL = process.env.DATABASE_URL
  const { build } = await import('../test/helpers/build.ts')
  const t = await build()
  const db = t.app.db
  const log = (line: string) => process.stderr.write(`${line}\n`)
  try {
    // Whole hours, ending an hour ago: every window is on whole minutes and hours.
    const stop = Math.floor(Date.now() / HOUR) * HOUR - HOUR
    const monthStart = stop - 30 * DAY
    const dayStart = stop - DAY
    const meter = (await seedDevices(db, 'qb', 1))[0] as { id: string; pk: number }
    const fleet = await seedDevices(db, 'qf', FLEET)
    let s0 = performance.now()
    const meterRows = await seedTelemetry(db, [meter.pk], monthStart, stop, {
      everyMs: 10_000,
      samples: 10,
      stepMs: 1000,
    })
    const fleetRows = await seedTelemetry(
      db,
      fleet.map((d) => d.pk),
      dayStart,
      stop,
      { everyMs: 100_000, samples: 10, stepMs: 10_000 },
    )
    const seedS = (performance.now() - s0) / 1000
    log(`seeded ${meterRows} + ${fleetRows} rows in ${seedS.toFixed(0)} s`)

    const metrics = async (id: string, every: string, from: number, metric = 'voltage_dc') => {
      const window = `start=${new Date(from).toISOString()}&stop=${new Date(stop).toISOString()}`
      const r = await t.inject(`/api/devices/${id}/metrics?metric=${metric}&every=${every}&${window}`)
      if (r.statusCode !== 200) throw new Error(`unexpected answer ${r.statusCode}: ${r.body}`)
      return r.json().length as number
    }
    const expect = async (n: Promise<number>, want: number) => {
      if ((await n) !== want) throw new Error(`expected ${want} points`)
    }
    const month = () => expect(metrics(meter.id, '1h', monthStart), 720)
    const day = (metric = 'voltage_dc') => expect(metrics(meter.id, '1m', dayStart, metric), 1440)
    const one = (id: string) => expect(metrics(id, '15m', dayStart), 96)

    // The rollups, computed the way the server does: the first query of a range refreshes it.
    s0 = performance.now()
    await month()
    const refreshMonthS = (performance.now() - s0) / 1000
    s0 = performance.now()
    for (const d of fleet) await one(d.id)
    const refreshFleetS = (performance.now() - s0) / 1000
    const { rows: dirty } = await sql<{ n: string }>`select count(*) as n from rollup_dirty`.execute(db)
    if (Number(dirty[0]?.n) !== 0) throw new Error(`${dirty[0]?.n} dirty hours left after the refresh`)
    log(`refresh: 720 meter-hours in ${refreshMonthS.toFixed(1)} s, fleet in ${refreshFleetS.toFixed(1)} s`)

    const baseline = await time(RUNS, () =>
      sql`select count(*) from telemetry where device_pk = ${meter.pk}
        and t0 >= ${new Date(dayStart).toISOString()}::timestamptz
        and t0 < ${new Date(stop).toISOString()}::timestamptz`.execute(db),
    )
    const a = await time(RUNS, month)
    const c = await time(RUNS, () => day())
    const cPower = await time(RUNS, () => day('power_active'))
    const fleetView = async () => {
      let after = ''
      let devices = 0
      do {
        const r = await t.inject(
          `/api/fleet/metrics?metric=voltage_dc&every=15m&start=${new Date(dayStart).toISOString()}&stop=${new Date(stop).toISOString()}${after ? `&after=${after}` : ''}`,
        )
        if (r.statusCode !== 200) throw new Error(`unexpected answer ${r.statusCode}: ${r.body}`)
        const body = r.json()
        if (body.pending_hours !== 0) throw new Error(`${body.pending_hours} pending hours`)
        for (const d of body.devices)
          if (d.values.length !== 96 || d.values.includes(null))
            throw new Error(`${d.device_id}: not 96 windows`)
        devices += body.devices.length
        after = body.next ?? ''
      } while (after)
      if (devices !== FLEET + 1) throw new Error(`${devices} devices, not ${FLEET + 1}`)
    }
    const bFleet = await time(RUNS, fleetView)
    // Before the fleet endpoint: one /metrics call per meter (2 runs: each takes seconds).
    const bSeq = await time(2, async () => {
      for (const d of fleet) await one(d.id)
    })

    // What a fleet endpoint would cost at least: the same windows of every meter in one statement.
    const pks = fleet.map((d) => d.pk)
    const fleetStatement = await time(FLEET_RUNS, () =>
      sql`select device_pk, floor(date_part('epoch', start) * 1000 / 900000) * 900000 as time,
          greatest(least(sum(sum::numeric) / sum(count), 1e308), -1e308)::float8 as value
        from telemetry_rollups
        where device_pk = any(${pks}::int[]) and metric = 'voltage_dc' and bucket_s = 60
          and start >= ${new Date(dayStart).toISOString()}::timestamptz
          and start < ${new Date(stop).toISOString()}::timestamptz
        group by 1, 2 order by 1, 2`.execute(db),
    )

    const targets = [
      { target: 'a: 30 days of 1 Hz, one meter, every=1h', limit: 100, xs: a },
      {
        target: `b: ${FLEET} meters' last 24 h, every=15m, GET /api/fleet/metrics`,
        limit: FLEET,
        xs: bFleet,
      },
      { target: 'c: 24 h of 1 Hz, one meter, every=1m', limit: 100, xs: c },
    ]
    for (const { target, limit, xs } of targets) {
      const verdict = median(xs) < limit ? 'PASS' : 'FAIL'
      log(`${verdict} ${target}: median ${ms(median(xs))} ms, p95 ${ms(p95(xs))} ms (target < ${limit} ms)`)
    }
    const result = {
      engine: t.app.dbEngine,
      meter_rows: meterRows,
      fleet_devices: FLEET,
      fleet_rows: fleetRows,
      seed_s: Number(seedS.toFixed(1)),
      refresh_month_s: Number(refreshMonthS.toFixed(1)),
      refresh_fleet_s: Number(refreshFleetS.toFixed(1)),
      a_month_every_1h_median_ms: ms(median(a)),
      a_month_every_1h_p95_ms: ms(p95(a)),
      b_fleet_endpoint_median_ms: ms(median(bFleet)),
      b_fleet_endpoint_p95_ms: ms(p95(bFleet)),
      b_per_device_calls_median_ms: ms(median(bSeq)),
      c_day_every_1m_median_ms: ms(median(c)),
      c_day_every_1m_p95_ms: ms(p95(c)),
      power_active_every_1m_median_ms: ms(median(cPower)),
      baseline_count_scan_median_ms: ms(median(baseline)),
      baseline_fleet_one_statement_median_ms: ms(median(fleetStatement)),
      pass: targets.every(({ limit, xs }) => median(xs) < limit),
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
