import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { MqttClient } from 'mqtt'
import pg from 'pg'
import { dcTelemetry, publishJson, waitFor } from '../helpers/device.ts'
import { realDatabaseUrl } from '../helpers/env.ts'
import { countPoints, meterClient, registerOverHttp, scrape, sleep, waitMqttReady } from '../helpers/fleet.ts'
import { serverFixture } from '../helpers/server-fixture.ts'

const DEVICES = 20
const PER_DEVICE = 120
const SAMPLES = 5
/** Device 0 never sends this seq: exactly one sequence_gap must be raised, by one replica. */
const SKIPPED = 60
/** Longer than a replica's outage here (kill, 2 s, restart, replay): see the report in the test output. */
const GRACE_MS = 20000

const skip = realDatabaseUrl ? false : 'replicas share one PostgreSQL: set TEST_DATABASE_URL to run this test'

const fixture = serverFixture({ brokers: 2, dirs: 2, skip: !realDatabaseUrl })

test('two replicas on one database and two brokers, one killed -9 mid-stream: every measurement once, one gap alert', {
  skip,
}, async () => {
  const brokers = fixture.brokers
  const envOf = (i: number) =>
    fixture.env({ MQTT_SHARED_GROUP: 'iot-meter', INGEST_GAP_GRACE_MS: String(GRACE_MS) }, i)
  const envs = [envOf(0), envOf(1)]
  // The first replica migrates the schema; the second starts on the migrated schema.
  const r0 = await fixture.start(envs[0] as Record<string, string>)
  const r1 = await fixture.start(envs[1] as Record<string, string>)
  const ids = Array.from({ length: DEVICES }, (_, i) => `rep-${String(i).padStart(2, '0')}`)
  await registerOverHttp(r0.baseUrl, ids)
  await waitMqttReady(r0.baseUrl)
  await waitMqttReady(r1.baseUrl)

  const links = await Promise.all(
    ids.map(async (id) => Promise.all(brokers.map((m, k) => meterClient(m.url, `${id}-${k}`)))),
  )
  const t0 = Date.now() - 3600_000
  let sent = 0
  const publishing = Promise.all(
    links.map(async (clients: MqttClient[], i) => {
      const id = ids[i] as string
      for (let seq = 0; seq < PER_DEVICE; seq++) {
        if (i === 0 && seq === SKIPPED) continue
        const body = dcTelemetry(id, seq, t0 + seq * SAMPLES * 1000, SAMPLES)
        await Promise.all(clients.map((c) => publishJson(c, `iot/${id}/telemetry`, body)))
        sent++
        await sleep(20)
      }
    }),
  )
  const total = DEVICES * PER_DEVICE - 1
  await waitFor(() => sent >= total / 3, 30000, 'a third published')
  r0.child.kill('SIGKILL')
  await r0.exited
  const killedAt = sent
  await sleep(2000)
  // Restarted like a pod with its volume: it replays its journal and takes its session back.
  const restartStarted = Date.now()
  const r0again = await fixture.start(envs[0] as Record<string, string>)
  const outageMs = Date.now() - restartStarted + 2000
  await publishing
  await Promise.all(links.flat().map((c) => c.endAsync()))

  const base = r1.baseUrl
  const expected = total * SAMPLES
  await waitFor(async () => (await countPoints(base, ids, t0)) === expected, 40000, `${expected} points`)

  // Gaps are declared only after the grace period: wait it out, then count alerts and gap rows.
  await sleep(GRACE_MS + 3000)
  assert.equal(await countPoints(base, ids, t0), expected, 'every measurement stored exactly once')
  const client = new pg.Client({ connectionString: (fixture.schema as { url: string }).url })
  await client.connect()
  let gaps: { device_id: string; from_seq: string; to_seq: string }[]
  let alerts: { device_id: string; occurrences: number; message: string }[]
  try {
    gaps = (
      await client.query(
        'select d.device_id, g.from_seq, g.to_seq from seq_gaps g join devices d on d.id = g.device_pk order by 1, 2',
      )
    ).rows
    alerts = (
      await client.query(
        `select d.device_id, a.occurrences, a.message from device_alerts a join devices d on d.id = a.device_pk
         where a.alert_type = 'sequence_gap' order by 1`,
      )
    ).rows
  } finally {
    await client.end()
  }
  const live = [r0again, r1]
  let received = 0
  let duplicates = 0
  for (const s of live) {
    received += await scrape(s.baseUrl, 'ingest_received_total')
    duplicates += await scrape(s.baseUrl, 'ingest_duplicates_total')
  }
  process.stdout.write(
    `# replicas: ${sent} messages × 2 brokers (killed one replica after ${killedAt}, back listening after ${outageMs} ms), ${expected} points stored once; ` +
      `live replicas received ${received}, counted ${duplicates} duplicates (copies that reached different replicas are both accepted); ` +
      `seq_gaps rows ${gaps.length}, sequence_gap alerts ${alerts.length}\n`,
  )
  if (gaps.length > 1) process.stdout.write(`# gaps: ${JSON.stringify(gaps.slice(0, 10))}\n`)
  assert.deepEqual(
    gaps.map((g) => [g.device_id, Number(g.from_seq), Number(g.to_seq)]),
    [[ids[0], SKIPPED, SKIPPED]],
    'exactly the deliberate gap, recorded once',
  )
  assert.deepEqual(
    alerts.map((r) => [r.device_id, r.occurrences]),
    [[ids[0], 1]],
    'one sequence_gap alert, raised once',
  )
})
