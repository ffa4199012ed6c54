import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import pg from 'pg'
import type { RetentionRun } from '../../src/modules/retention/index.ts'
import { build, type TestApp } from '../helpers/build.ts'
import { realDatabaseUrl, uniqueName } from '../helpers/env.ts'
import { appRetentionRan, retentionJobOf } from '../helpers/retention.ts'

const ADMIN_TOKEN = `admin-${randomBytes(16).toString('hex')}`
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
const DAY = 86_400_000
const today = Math.floor(Date.now() / DAY) * DAY

let t: TestApp
let devicePk: number
before(async () => {
  t = await build({
    AUTH_DISABLED: 'false',
    ADMIN_TOKEN,
    RETENTION_RAW_DAYS: '90',
    RETENTION_ARCHIVE_DAYS: '30',
  })
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/devices',
    headers: auth,
    payload: { device_id: uniqueName('ret'), device_name: 'r' },
  })
  devicePk = res.json().id
  await appRetentionRan(t.app.db)
})
after(() => t.close())

async function insertAt(ms: number, seq: number) {
  await sql`insert into telemetry (device_pk, t0, seq, n, step_ms, voltage_dc)
    values (${devicePk}, ${new Date(ms).toISOString()}::timestamptz, ${seq}, 1, 1000, array[${seq}]::float8[])`.execute(
    t.app.db,
  )
}

const where = async (seq: number) => {
  const { rows } = await sql<{ part: string }>`
    select tableoid::regclass::text as part from telemetry where device_pk = ${devicePk} and seq = ${seq}`.execute(
    t.app.db,
  )
  return rows[0]?.part.replace(/^.*\./, '')
}

const pday = (ms: number) => `telemetry_p${new Date(ms).toISOString().slice(0, 10).replace(/-/g, '')}`

test('telemetry lives in daily partitions; late rows are moved into their day, expired days are dropped', async () => {
  const job = retentionJobOf(t)
  await insertAt(today + 3_600_000, 1)
  await insertAt(today - 3 * DAY + 5, 2) // late: no partition for that day yet
  await insertAt(today - 100 * DAY, 3) // older than the raw retention
  assert.equal(await where(1), pday(today))
  assert.equal(await where(2), 'telemetry_default')
  assert.equal(await where(3), 'telemetry_default')

  const first = (await job.run()) as RetentionRun
  assert.ok(first.created.includes(pday(today - 3 * DAY)), JSON.stringify(first))
  assert.equal(await where(2), pday(today - 3 * DAY), 'the late row moved into its new day partition')
  assert.equal(await where(3), undefined, 'the expired row in the default partition is deleted')
  assert.equal(first.default_rows_deleted, 1)
  const { rows: ahead } = await sql<{ ok: boolean }>`
    select to_regclass(${pday(today + 7 * DAY)}) is not null as ok`.execute(t.app.db)
  assert.equal(ahead[0]?.ok, true, 'seven days ahead exist')

  // 91 days later: today's partition (and the late one) are past the 90 days: dropped whole.
  const later = (await job.run(today + 91 * DAY + 3_600_000)) as RetentionRun
  assert.ok(
    later.dropped.includes(pday(today)) && later.dropped.includes(pday(today - 3 * DAY)),
    JSON.stringify(later),
  )
  assert.equal(await where(1), undefined)
  assert.equal(await where(2), undefined)
  const again = (await job.run(today + 91 * DAY + 3_600_000)) as RetentionRun
  assert.deepEqual([again.created, again.dropped], [[], []], 'a second run has nothing to do')
  // The write path still finds a partition for new data (created ahead by the run above).
  await insertAt(today + 92 * DAY, 4)
  assert.equal(await where(4), pday(today + 92 * DAY))
})

test('rollups older than RETENTION_ROLLUP_DAYS are deleted; younger ones stay', async () => {
  const row = (start: number) =>
    sql`insert into telemetry_rollups (device_pk, metric, bucket_s, start, count, sum, min, max, first, last)
      values (${devicePk}, 'voltage_dc', 3600, ${new Date(start).toISOString()}::timestamptz, 1, 1, 1, 1, 1, 1)`.execute(
      t.app.db,
    )
  await row(today - 1826 * DAY)
  await row(today - 1824 * DAY)
  const run = (await retentionJobOf(t).run()) as RetentionRun
  assert.equal(run.rollups_deleted, 1, JSON.stringify(run))
  const { rows } = await sql<{ start: Date }>`
    select start from telemetry_rollups where device_pk = ${devicePk} and metric = 'voltage_dc'`.execute(
    t.app.db,
  )
  assert.deepEqual(
    rows.map((r) => new Date(r.start).getTime()),
    [today - 1824 * DAY],
  )
})

test('GET /api/retention: the policy per kind of data, partitions and the last run (viewer, schema-checked)', async () => {
  const anonymous = await t.app.inject({ url: '/api/retention' })
  assert.equal(anonymous.statusCode, 401)
  await retentionJobOf(t).run()
  const res = await t.app.inject({ url: '/api/retention', headers: auth })
  assert.equal(res.statusCode, 200)
  const body = res.json()
  const byData = Object.fromEntries(
    body.policies.map((p: { data: string; keep_days: number | null }) => [p.data, p.keep_days]),
  )
  assert.deepEqual(byData, {
    raw_samples: 90,
    rollups: 1825,
    archive_objects: 30,
    energy_registers: null,
    alerts: null,
    commands: null,
  })
  assert.ok(body.telemetry_partitions.count >= 9)
  assert.equal(body.job.interval_s, 3600)
  assert.equal(body.job.last_run.ok, true)
  assert.equal(body.job.last_run.replica, t.config.MQTT_CLIENT_ID)
})

test('two replicas never run it at once: while another session holds the lock, a run is skipped', {
  skip: realDatabaseUrl ? false : 'a second session needs PostgreSQL: set TEST_DATABASE_URL',
}, async () => {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(t.app.db)
  const other = new pg.Client({ connectionString: t.config.DATABASE_URL })
  await other.connect()
  try {
    const key = `${rows[0]?.schema}:iot-meter:retention`
    await other.query('select pg_advisory_lock(hashtext($1))', [key])
    assert.equal(await retentionJobOf(t).run(), 'busy')
    await other.query('select pg_advisory_unlock(hashtext($1))', [key])
    assert.notEqual(await retentionJobOf(t).run(), 'busy')
  } finally {
    await other.end()
  }
})
