import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { MqttClient } from 'mqtt'
import { connectDevice, dcTelemetry, publishJson, waitFor } from '../helpers/device.ts'
import { type ServerProcess, serverFetch } from '../helpers/process.ts'
import { serverFixture } from '../helpers/server-fixture.ts'

const DEVICES = 1000
const PER_DEVICE = 10

const fixture = serverFixture()

test('kill -9 of the server while 1,000 devices stream QoS 2: after a restart every message is stored exactly once', async () => {
  // Grouped archive objects (issue 18): checkpoints between objects write registry activity only,
  // and the journal settles only once an object is written — the path most at risk from a kill.
  const env = { ...fixture.env(), ARCHIVE_OBJECT_PERIOD_S: '5' }
  const mosquitto = fixture.brokers[0] as { url: string }
  let server: ServerProcess = await fixture.start(env)
  const ids = Array.from({ length: DEVICES }, (_, i) => `crash-${String(i).padStart(4, '0')}`)
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(
      ids.slice(i, i + 20).map(async (device_id) => {
        const res = await serverFetch(`${server.baseUrl}/api/devices`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ device_id, device_name: device_id }),
        })
        assert.equal(res.status, 201)
      }),
    )
  }
  // The server subscribes asynchronously after start; its session is persistent from then on.
  await waitFor(
    async () =>
      ((await (await serverFetch(`${server.baseUrl}/readyz`)).json()) as { checks: Record<string, string> })
        .checks.mqtt === 'ok',
  )
  await new Promise((r) => setTimeout(r, 500))

  const clients: MqttClient[] = await Promise.all(ids.map((id) => connectDevice(mosquitto.url, id)))
  const t0 = Date.now() - 3600_000
  let sent = 0
  let killed = false
  const publishAll = Promise.all(
    clients.map(async (client, i) => {
      const id = ids[i] as string
      for (let seq = 0; seq < PER_DEVICE; seq++) {
        await publishJson(client, `iot/${id}/telemetry`, dcTelemetry(id, seq, t0 + seq * 10_000, 10))
        sent++
        await new Promise((r) => setTimeout(r, 15))
      }
    }),
  )
  await waitFor(() => sent >= (DEVICES * PER_DEVICE) / 3, 30000, 'a third published')
  server.child.kill('SIGKILL')
  killed = true
  await server.exited
  await publishAll
  assert.ok(killed)
  assert.equal(sent, DEVICES * PER_DEVICE)
  await Promise.all(clients.map((c) => c.endAsync()))

  server = await fixture.start(env)
  try {
    const start = new Date(t0 - 60_000).toISOString()
    const counts = async () => {
      let total = 0
      for (const id of ids) {
        const res = await serverFetch(
          `${server.baseUrl}/api/devices/${id}/metrics?metric=voltage_dc&start=${start}&stop=now()&limit=100000`,
        )
        const points = (await res.json()) as { time: string }[]
        assert.equal(new Set(points.map((p) => p.time)).size, points.length, `no time twice for ${id}`)
        total += points.length
      }
      return total
    }
    const expected = DEVICES * PER_DEVICE * 10
    let last = 0
    const settled = async () => {
      last = await counts()
      return last === expected
    }
    await waitFor(settled, 120000, `${expected} samples`).catch(async (e: Error) => {
      const warnings = server
        .output()
        .split('\n')
        .filter((l) => /"level":(40|50|60)/.test(l))
        .slice(-20)
      const counters = await ingestCounters(server.baseUrl)
      throw new Error(`${e.message} (${last} stored)\n${warnings.join('\n')}\n${counters}`)
    })
    // Nothing more arrives later: stored exactly once.
    await new Promise((r) => setTimeout(r, 1000))
    assert.equal(await counts(), expected)
    // And archived (a replay may archive a line twice, never lose one): every seq of a sample of devices.
    for (const id of ids.filter((_, i) => i % 50 === 0)) {
      await waitFor(
        async () => (await archivedSeqs(server.baseUrl, id)).size === PER_DEVICE,
        20000,
        `every seq of ${id} archived`,
      )
    }
    const metrics = await (await serverFetch(`${server.baseUrl}/metrics`)).text()
    process.stdout.write(`# crash test: ${sent} messages sent, ${expected} samples stored once\n`)
    assert.match(metrics, /ingest_messages_total/)
  } finally {
    server.child.kill('SIGTERM')
    await server.exited
  }
})

/** The ingest counters that say where messages went (rejected, duplicates, conflicts, quarantined). */
async function ingestCounters(baseUrl: string): Promise<string> {
  const text = await (await serverFetch(`${baseUrl}/metrics`)).text()
  return text
    .split('\n')
    .filter((l) =>
      /^ingest_(rejected|duplicates|seq_conflicts|quarantined|messages|stored)[a-z_]*[{ ]/.test(l),
    )
    .join('\n')
}

/** The distinct seqs of a device's archived telemetry lines (listed and downloaded through the API). */
async function archivedSeqs(baseUrl: string, id: string): Promise<Set<number>> {
  const list = (await (await serverFetch(`${baseUrl}/api/devices/${id}/raw-data?limit=1000`)).json()) as {
    filename: string
  }[]
  const seqs = new Set<number>()
  for (const o of list) {
    const body = await (
      await serverFetch(`${baseUrl}/api/devices/${id}/raw-data/${o.filename.slice(id.length + 1)}`)
    ).text()
    for (const line of body.split('\n').filter((l) => l.length > 0)) seqs.add(JSON.parse(line).message.seq)
  }
  return seqs
}
