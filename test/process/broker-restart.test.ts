import assert from 'node:assert/strict'
import { test } from 'node:test'
import { dcTelemetry, publishJson, waitFor } from '../helpers/device.ts'
import {
  countPoints,
  meterClient,
  readyz,
  registerOverHttp,
  scrape,
  sleep,
  waitMqttReady,
} from '../helpers/fleet.ts'
import type { Mosquitto } from '../helpers/mosquitto.ts'
import { serverFetch } from '../helpers/process.ts'
import { serverFixture } from '../helpers/server-fixture.ts'

const DEVICES = 20
const PER_DEVICE = 150
const SAMPLES = 5

const fixture = serverFixture({ restartableBroker: true })

// Found with this test: meters on clean sessions lost a QoS 2 message whose PUBREC came before the
// restart (the PUBREL after it found a fresh session). Meters keep persistent sessions (PROTOCOL.md).
test('the broker restarts mid-stream: server and devices reconnect, every publish the broker acknowledged is stored once', async () => {
  const server = await fixture.start(fixture.env())
  const mosquitto = fixture.brokers[0] as Mosquitto
  const base = server.baseUrl
  const ids = Array.from({ length: DEVICES }, (_, i) => `brk-${String(i).padStart(2, '0')}`)
  await registerOverHttp(base, ids)
  await waitMqttReady(base)

  const clients = await Promise.all(ids.map((id) => meterClient(mosquitto.url, id, true)))
  const t0 = Date.now() - 3600_000
  const acked = new Set<string>()
  let retries = 0
  const publishing = Promise.all(
    clients.map(async (client, i) => {
      const id = ids[i] as string
      for (let seq = 0; seq < PER_DEVICE; seq++) {
        const body = dcTelemetry(id, seq, t0 + seq * SAMPLES * 1000, SAMPLES)
        // A meter keeps a message until the broker acknowledged it (bounded: 60 attempts).
        for (let attempt = 0; attempt < 60; attempt++) {
          const ok = await Promise.race([
            publishJson(client, `iot/${id}/telemetry`, body).then(
              () => true,
              () => false,
            ),
            sleep(3000).then(() => false),
          ])
          if (ok) {
            acked.add(`${id}/${seq}`)
            break
          }
          retries++
          await sleep(300)
        }
        await sleep(20)
      }
    }),
  )
  await waitFor(() => acked.size >= (DEVICES * PER_DEVICE) / 3, 30000, 'a third acknowledged')
  let stoppedAt = 0
  await fixture.restartBroker(async () => {
    stoppedAt = acked.size
    await waitFor(async () => (await readyz(base)).status === 503, 10000, 'not ready without the broker')
    await sleep(2000)
  })
  await publishing
  await Promise.all(clients.map((c) => c.endAsync()))
  await waitFor(async () => (await readyz(base)).checks.mqtt === 'ok', 15000, 'server reconnected')

  const expected = acked.size * SAMPLES
  let stored = 0
  const storedAll = async () => {
    stored = await countPoints(base, ids, t0)
    return stored === expected
  }
  await waitFor(storedAll, 30000, `${expected} points`).catch(async (error: Error) => {
    throw new Error(
      `${error.message}: ${stored} stored, ${acked.size} acknowledged, broker stopped after ${stoppedAt}; ` +
        `missing ${(await missingSeqs(base, ids, t0)).join(' ')}; server received ${await scrape(base, 'ingest_received_total')}`,
    )
  })
  await sleep(1000)
  assert.equal(await countPoints(base, ids, t0), expected, 'every acknowledged publish stored exactly once')
  assert.equal(acked.size, DEVICES * PER_DEVICE, 'every message was eventually acknowledged')
  const duplicates = await scrape(base, 'ingest_duplicates_total')
  process.stdout.write(
    `# broker-restart: ${acked.size} publishes acknowledged (broker stopped after ${stoppedAt}), ${retries} device retries, ` +
      `${duplicates} duplicates dropped, ${expected} points stored once\n`,
  )
})

/** The (device, seq) pairs without stored points, for the failure message. */
async function missingSeqs(base: string, ids: string[], t0: number): Promise<string[]> {
  const out: string[] = []
  const start = new Date(t0 - 60_000).toISOString()
  for (const id of ids) {
    const res = await serverFetch(
      `${base}/api/devices/${id}/metrics?metric=voltage_dc&start=${start}&stop=now()&limit=100000`,
    )
    const times = new Set(((await res.json()) as { time: string }[]).map((p) => Date.parse(p.time)))
    for (let seq = 0; seq < PER_DEVICE; seq++)
      if (!times.has(t0 + seq * SAMPLES * 1000)) out.push(`${id}/${seq}`)
  }
  return out
}
