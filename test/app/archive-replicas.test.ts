import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import type { MqttClient } from 'mqtt'
import type { RetentionRun } from '../../src/modules/retention/index.ts'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import { connectDevice, dcTelemetry, hello, publishJson, registerDevice, waitFor } from '../helpers/device.ts'
import { createSchema, realDatabaseUrl, realMqttUrl, tempDir, uniqueName } from '../helpers/env.ts'
import { retentionJobOf } from '../helpers/retention.ts'

// Issue 18: grouped archive objects written by two replicas (a shared subscription splits each
// device's messages between them) into one archive directory and one database index.
const skip =
  realDatabaseUrl && realMqttUrl
    ? false
    : 'two replicas share one PostgreSQL and one broker (an MQTT shared subscription): set TEST_DATABASE_URL and TEST_MQTT_URL to run this test'
const DAY = 86_400_000
/** Odd: a broker sharing out round-robin then gives each device's messages to both replicas in turn. */
const DEVICES = 3
const TELEMETRY = 15
const HELLOS = 2

type Line = { received_at: string; topic: string; message: { seq: number; device_id: string } }

let replicas: TestApp[] = []
let schema: Awaited<ReturnType<typeof createSchema>> | undefined
/** The archive directory both replicas write: each DATA_DIR/archive links to it. */
const shared = tempDir('iot-meter-archive-')
const dataDirs = [tempDir(), tempDir()]
before(async () => {
  if (skip) return
  schema = await createSchema(realDatabaseUrl as string)
  const group = uniqueName('archive') // a group of this suite's own on the shared broker
  for (const dir of dataDirs) {
    symlinkSync(shared.path, join(dir.path, 'archive'))
    replicas.push(
      await build({
        DATABASE_URL: schema.url,
        DATA_DIR: dir.path,
        MQTT_SHARED_GROUP: group,
        ARCHIVE_OBJECT_PERIOD_S: '1',
        INGEST_FLUSH_MS: '50',
        RETENTION_ARCHIVE_DAYS: '30',
      }),
    )
  }
  // Connected, then a moment for the subscriptions to be acknowledged.
  for (const r of replicas)
    await waitFor(async () => (await r.inject({ url: '/readyz' })).statusCode === 200, 20_000, 'ready')
  await sleep(500)
})
after(async () => {
  for (const r of replicas) await r.close()
  replicas = []
  await schema?.drop()
  for (const dir of [...dataDirs, shared]) dir.remove()
})

/** Every line a device's listing and downloads give through one replica's API, and the listing. */
async function linesThrough(r: TestApp, deviceId: string) {
  const res = await r.inject({ url: `/api/devices/${deviceId}/raw-data?limit=1000` })
  assert.equal(res.statusCode, 200, res.body)
  const listing = res.json() as { filename: string; size: number }[]
  const lines: Line[] = []
  for (const o of listing) {
    const body = await r.inject({
      url: `/api/devices/${deviceId}/raw-data/${o.filename.slice(deviceId.length + 1)}`,
    })
    assert.equal(body.statusCode, 200, `${o.filename}: ${body.body}`)
    assert.equal(body.rawPayload.length, o.size, o.filename)
    for (const l of body.body.split('\n').filter((s) => s.length > 0)) lines.push(JSON.parse(l) as Line)
  }
  return { listing, lines }
}

/** `{category}:{seq}` of each line, sorted (a line twice shows twice). */
const messagesOf = (lines: Line[]) => lines.map((l) => `${l.topic.split('/')[2]}:${l.message.seq}`).sort()

/** The grouped objects' files under the shared directory, by time key (`YYYY/MM/DD/name`). */
function groupedFiles(): Map<string, string> {
  const files = new Map<string, string>()
  const walk = (dir: string, key: string[]) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path, [...key, name])
      else if (name.endsWith('.ndjson')) files.set([...key, name].join('/'), path)
    }
  }
  const root = join(shared.path, '.grouped', 'all')
  if (statSync(root, { throwIfNoEntry: false })) walk(root, [])
  return files
}

test("two replicas archive the same devices in the same periods: objects side by side, every message listed and downloaded once on either replica, retention deletes both replicas' objects and index rows", {
  skip,
}, async () => {
  const [a, b] = replicas as [TestApp, TestApp]
  const ids = Array.from({ length: DEVICES }, () => uniqueName('arep'))
  for (const id of ids) await registerDevice(a, id)
  const meters: MqttClient[] = await Promise.all(ids.map((id) => connectDevice(brokerUrl(a), id)))
  const want = Array.from({ length: TELEMETRY + HELLOS }, (_, seq) =>
    seq < HELLOS ? `hello:${seq}` : `telemetry:${seq}`,
  ).sort()
  try {
    // About 2 s of messages: each replica gets its share of every device in every period.
    const t0 = Date.now() - 600_000
    for (let seq = 0; seq < TELEMETRY + HELLOS; seq++) {
      await Promise.all(
        ids.map((id, i) => {
          const meter = meters[i] as MqttClient
          if (seq < HELLOS) return publishJson(meter, `iot/${id}/hello`, hello(id, seq, t0 + seq))
          return publishJson(meter, `iot/${id}/telemetry`, dcTelemetry(id, seq, t0 + seq * 10_000))
        }),
      )
      await sleep(120)
    }
  } finally {
    await Promise.all(meters.map((m) => m.endAsync()))
  }

  // Each message exactly once, through either replica's API.
  for (const id of ids) {
    await waitFor(
      async () => (await linesThrough(a, id)).lines.length >= want.length,
      20_000,
      `${id}: ${want.length} lines`,
    )
    const [viaA, viaB] = [await linesThrough(a, id), await linesThrough(b, id)]
    assert.deepEqual(messagesOf(viaA.lines), want, `${id} through replica a`)
    assert.deepEqual(viaB, viaA, `${id}: replica b lists and downloads the same`)
    for (const l of viaA.lines) assert.equal(l.message.device_id, id, 'only its own lines')
  }

  // The objects: both replicas' (their run ids differ), never one over another: each object's
  // index rows cover exactly its bytes, each with whole lines of its own device and category.
  const files = groupedFiles()
  const { rows: sections } = await sql<{
    device_id: string
    category: string
    time_key: string
    byte_offset: number
    byte_length: number
    lines: number
    first_at: Date
    last_at: Date
  }>`select device_id, category, time_key, byte_offset::int8 as byte_offset, byte_length, lines, first_at, last_at
    from archive_sections order by time_key, byte_offset`.execute(a.app.db)
  const runOf = (timeKey: string) => (timeKey.split('/').at(-1) as string).split('-')[1] as string
  const spans = new Map<string, [number, number]>()
  for (const s of sections) {
    const [from, to] = spans.get(runOf(s.time_key)) ?? [Number.POSITIVE_INFINITY, 0]
    spans.set(runOf(s.time_key), [Math.min(from, s.first_at.getTime()), Math.max(to, s.last_at.getTime())])
  }
  const [one, two] = [...spans.values()] as [[number, number], [number, number]]
  assert.ok(
    spans.size === 2 && one[0] <= two[1] && two[0] <= one[1],
    `both replicas, same periods: ${[...spans]}`,
  )
  for (const id of ids) {
    const runs = new Set(sections.filter((s) => s.device_id === id).map((s) => runOf(s.time_key)))
    assert.equal(runs.size, 2, `${id}: messages archived by both replicas (${[...files.keys()]})`)
  }
  assert.deepEqual(
    [...new Set(sections.map((s) => s.time_key))].sort(),
    [...files.keys()].sort(),
    'one index per object',
  )
  for (const [timeKey, path] of files) {
    const body = readFileSync(path)
    let offset = 0
    for (const s of sections.filter((x) => x.time_key === timeKey)) {
      assert.equal(s.byte_offset, offset, `${timeKey}: sections side by side`)
      const lines = body
        .subarray(offset, offset + s.byte_length)
        .toString()
        .split('\n')
        .filter(Boolean)
      assert.equal(lines.length, s.lines, `${timeKey}: ${s.device_id} ${s.category}`)
      for (const l of lines) assert.equal((JSON.parse(l) as Line).topic, `iot/${s.device_id}/${s.category}`)
      offset += s.byte_length
    }
    assert.equal(offset, body.length, `${timeKey}: the index covers the whole object`)
  }
  for (const id of ids) {
    const listed = sections.filter((s) => s.device_id === id).reduce((n, s) => n + s.lines, 0)
    assert.equal(listed, want.length, `${id}: every message in the index once`)
  }

  // Retention: nothing expires today; 31 days on, the two replicas' jobs (one at a time) delete
  // every grouped object of both, and their index rows.
  const jobs = [a, b].map(retentionJobOf)
  const today = (await jobs[0]?.run()) as RetentionRun
  assert.equal(today.archive_objects_deleted, 0, JSON.stringify(today))
  assert.equal(groupedFiles().size, files.size)
  const later = Date.now() + 31 * DAY
  const expired = await Promise.all(jobs.map((job) => job.run(later)))
  const deleted = expired.reduce((n, r) => n + (r === 'busy' ? 0 : r.archive_objects_deleted), 0)
  assert.equal(deleted, files.size, JSON.stringify(expired))
  assert.equal(groupedFiles().size, 0, 'no grouped object left')
  const { rows: left } = await sql<{ n: number }>`select count(*)::int as n from archive_sections`.execute(
    a.app.db,
  )
  assert.equal(left[0]?.n, 0, 'no index row left')
  for (const id of ids)
    for (const r of [a, b]) assert.deepEqual((await linesThrough(r, id)).listing, [], `${id}: nothing listed`)
})
