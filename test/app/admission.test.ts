import assert from 'node:assert/strict'
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import type { MqttClient } from 'mqtt'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import {
  connectDevice,
  dcTelemetry,
  metricValue,
  publishJson,
  registerDevice,
  waitFor,
} from '../helpers/device.ts'
import { uniqueName } from '../helpers/env.ts'

/**
 * Admission is bounded by memory, not by the archive's cadence (issue 17). Archive lines used to
 * count against INGEST_MAX_INFLIGHT until a checkpoint wrote them, so throughput was capped near
 * INGEST_MAX_INFLIGHT ÷ ARCHIVE_FLUSH_MS. These tests stop the archive from being written at all
 * (its root is a file: every put fails, as on a read-only or full disk) — the extreme of "the
 * archive has not flushed yet" — and count what is admitted meanwhile: far beyond the old cap, up
 * to the archive's own byte budget, never beyond it; then nothing is lost once the archive heals.
 */

const T0 = Date.now() - 2 * 3600_000
const stored = (t: TestApp) => metricValue(t, 'ingest_messages_total', 'type="telemetry"')

/** Archive lines on disk, by device. */
function archivedLines(root: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name.endsWith('.ndjson')) {
        const device = path.slice(root.length + 1).split('/')[0] as string
        const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean)
        out.set(device, [...(out.get(device) ?? []), ...lines])
      }
    }
  }
  if (statSync(root, { throwIfNoEntry: false })?.isDirectory()) walk(root)
  return out
}

/** A test app whose archive cannot be written, with `devices` registered devices and their clients. */
async function setUp(env: Record<string, string>, devices: number) {
  const t = await build({ INGEST_FLUSH_MS: '50', ARCHIVE_FLUSH_MS: '1000', ...env })
  const ids = Array.from({ length: devices }, () => uniqueName('adm'))
  for (const id of ids) await registerDevice(t, id)
  const clients: MqttClient[] = await Promise.all(ids.map((id) => connectDevice(brokerUrl(t), id)))
  if (t.config.MQTT_URL) {
    // The server's subscription on an external broker is asynchronous: wait until it receives
    // (seq 0 of the first device, archived before the archive is blocked).
    const id = ids[0] as string
    await waitFor(
      async () => {
        await publishJson(clients[0] as MqttClient, `iot/${id}/telemetry`, dcTelemetry(id, 0, T0))
        return (await stored(t)) > 0
      },
      15000,
      'server subscription',
    )
  }
  const root = join(t.config.DATA_DIR, 'archive')
  // Whatever a checkpoint still had to write goes first; then the archive root becomes a file.
  await waitFor(() => archivedLines(root).size === (t.config.MQTT_URL ? 1 : 0), 30000, 'archive settled')
  await new Promise((r) => setTimeout(r, 1100))
  rmSync(root, { recursive: true, force: true })
  writeFileSync(root, 'not a directory: every archive write fails')
  const heal = () => {
    if (statSync(root, { throwIfNoEntry: false })?.isFile()) rmSync(root)
  }
  return { t, ids, clients, root, heal, already: await stored(t) }
}

/**
 * Publishes `perDevice` datagrams (seq 1…) from each client, up to 10 unacknowledged per client.
 * Awaited by the test; a failure before that (the clients closed after another assertion failed)
 * must not hide that assertion behind an unhandled rejection.
 */
function publishAll(clients: MqttClient[], ids: string[], perDevice: number): Promise<unknown> {
  const publishing = Promise.all(
    clients.map(async (client, i) => {
      const id = ids[i] as string
      for (let seq = 1; seq <= perDevice; seq += 10) {
        const burst = []
        for (let k = seq; k < seq + 10 && k <= perDevice; k++)
          burst.push(publishJson(client, `iot/${id}/telemetry`, dcTelemetry(id, k, T0 + k * 10_000, 5)))
        await Promise.all(burst)
      }
    }),
  )
  publishing.catch(() => undefined)
  return publishing
}

/** Every datagram seq 1…perDevice of every device is in the archive exactly once. */
function assertArchivedOnce(root: string, ids: string[], perDevice: number): void {
  const lines = archivedLines(root)
  for (const id of ids) {
    const seqs = (lines.get(id) ?? []).map((l) => JSON.parse(l).message.seq as number).filter((s) => s > 0)
    assert.equal(seqs.length, perDevice, `${id}: ${perDevice} archive lines`)
    assert.equal(new Set(seqs).size, perDevice, `${id}: each seq archived once`)
  }
}

test('archive lines not yet written do not count against the admission cap', async () => {
  const CAP = 50
  const { t, ids, clients, root, heal, already } = await setUp({ INGEST_MAX_INFLIGHT: String(CAP) }, 5)
  try {
    const PER_DEVICE = 100
    const total = ids.length * PER_DEVICE
    const publishing = publishAll(clients, ids, PER_DEVICE)
    // All of them stored while not one archive line could be written: 10 × the old cap's worth.
    await waitFor(async () => (await stored(t)) - already === total, 90000, `${total} stored`)
    await publishing
    // Its checkpoints fail (the first may come only after the last message was stored).
    await waitFor(
      async () => (await metricValue(t, 'ingest_store_errors_total')) > 0,
      30000,
      'a checkpoint failed',
    )
    assert.equal(archivedLines(root).size, 0, 'the archive has not flushed')
    assert.ok(total >= 10 * CAP)
    // The archive heals: every line is written, once.
    heal()
    await waitFor(() => archivedLines(root).size === ids.length, 60000, 'archive written')
    await waitFor(async () => (await metricValue(t, 'ingest_inflight')) === 0, 60000, 'nothing buffered')
    assertArchivedOnce(root, ids, PER_DEVICE)
  } finally {
    heal()
    await Promise.all(clients.map((c) => c.endAsync()))
    await t.close()
  }
})

test('an archive that cannot be written pauses intake at ARCHIVE_BUFFER_MAX_BYTES; nothing is lost', async () => {
  const BUDGET = 64 * 1024
  const { t, ids, clients, root, heal, already } = await setUp(
    { ARCHIVE_BUFFER_MAX_BYTES: String(BUDGET), INGEST_MAX_INFLIGHT: '20' },
    4,
  )
  try {
    const PER_DEVICE = 100
    const total = ids.length * PER_DEVICE
    const publishing = publishAll(clients, ids, PER_DEVICE)
    await waitFor(async () => (await metricValue(t, 'ingest_paused')) === 1, 60000, 'intake paused')
    // What was admitted before the pause gets stored; then the count stands still (2 s unchanged).
    let last = -1
    await waitFor(
      async () => {
        const now = await stored(t)
        const still = now === last
        last = now
        if (!still) await new Promise((r) => setTimeout(r, 2000))
        return still
      },
      60000,
      'stored count standing still',
    )
    const later = last - already
    // A ~0.8 KB datagram is a ~1 KB line: the budget holds ~60; the 20 unstored ones may follow.
    assert.ok(later < total / 2, `paused well before the end: ${later} of ${total} stored`)
    assert.ok(
      (await metricValue(t, 'ingest_buffered_bytes', 'what="archive"')) >= BUDGET,
      'the archive budget is what holds intake',
    )
    assert.equal(await metricValue(t, 'ingest_paused'), 1, 'still paused')
    heal()
    await waitFor(async () => (await stored(t)) - already === total, 90000, `${total} stored`)
    await publishing
    await waitFor(async () => (await metricValue(t, 'ingest_inflight')) === 0, 60000, 'nothing buffered')
    assert.equal(await metricValue(t, 'ingest_paused'), 0, 'intake resumed')
    assertArchivedOnce(root, ids, PER_DEVICE)
  } finally {
    heal()
    await Promise.all(clients.map((c) => c.endAsync()))
    await t.close()
  }
})
