import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { MqttClient } from 'mqtt'
import { dcTelemetry, publishJson, waitFor } from '../helpers/device.ts'
import { countPoints, meterClient, registerOverHttp, scrape, waitMqttReady } from '../helpers/fleet.ts'
import type { Mosquitto } from '../helpers/mosquitto.ts'
import { serverFetch } from '../helpers/process.ts'
import { serverFixture } from '../helpers/server-fixture.ts'

const DEVICES = 20
const PER_DEVICE = 30
const SAMPLES = 10

const fixture = serverFixture({ brokers: 2 })

test('two brokers: each message published to both is stored once, and a command reaches the device via both', async () => {
  const server = await fixture.start(fixture.env())
  const [a, b] = fixture.brokers as [Mosquitto, Mosquitto]
  const base = server.baseUrl
  const ids = Array.from({ length: DEVICES }, (_, i) => `mb-${String(i).padStart(2, '0')}`)
  await registerOverHttp(base, ids)
  await waitMqttReady(base)

  const links: [MqttClient, MqttClient][] = await Promise.all(
    ids.map(
      async (id) => [await meterClient(a.url, `${id}-a`), await meterClient(b.url, `${id}-b`)] as const,
    ),
  ).then((pairs) => pairs.map((p) => [p[0], p[1]] as [MqttClient, MqttClient]))
  try {
    const t0 = Date.now() - 3600_000
    let sent = 0
    await Promise.all(
      links.map(async ([ca, cb], i) => {
        const id = ids[i] as string
        for (let seq = 0; seq < PER_DEVICE; seq++) {
          const body = dcTelemetry(id, seq, t0 + seq * SAMPLES * 1000, SAMPLES)
          // The same datagram through both brokers, in a different order on each for odd seqs.
          const first = seq % 2 === 0 ? ca : cb
          const second = seq % 2 === 0 ? cb : ca
          await Promise.all([
            publishJson(first, `iot/${id}/telemetry`, body),
            publishJson(second, `iot/${id}/telemetry`, body),
          ])
          sent++
        }
      }),
    )
    const expected = DEVICES * PER_DEVICE * SAMPLES
    await waitFor(async () => (await countPoints(base, ids, t0)) === expected, 30000, `${expected} points`)
    await new Promise((r) => setTimeout(r, 1000))
    assert.equal(await countPoints(base, ids, t0), expected, 'stored exactly once')
    const received = await scrape(base, 'ingest_received_total')
    const duplicates = await scrape(base, 'ingest_duplicates_total')
    assert.equal(received, 2 * sent, 'every copy reached the server')
    assert.equal(duplicates, sent, 'one copy of each message counted as a duplicate')
    process.stdout.write(
      `# multi-broker: ${sent} messages × 2 brokers, ${received} received, ${duplicates} duplicates, ${expected} points stored once\n`,
    )

    // A command through the API reaches the device on both of its connections with one cmd_id.
    const id = ids[0] as string
    const [ca, cb] = links[0] as [MqttClient, MqttClient]
    const seen: Record<'a' | 'b', string[]> = { a: [], b: [] }
    ca.on('message', (_t, p) => seen.a.push((JSON.parse(p.toString()) as { cmd_id: string }).cmd_id))
    cb.on('message', (_t, p) => seen.b.push((JSON.parse(p.toString()) as { cmd_id: string }).cmd_id))
    await ca.subscribeAsync(`iot/${id}/command`, { qos: 2 })
    await cb.subscribeAsync(`iot/${id}/command`, { qos: 2 })
    const res = await serverFetch(`${base}/api/devices/${id}/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cmd: 'reboot' }),
    })
    assert.equal(res.status, 201, await res.clone().text())
    const { cmd_id } = (await res.json()) as { cmd_id: string }
    await waitFor(() => seen.a.length > 0 && seen.b.length > 0, 10000, 'the command on both brokers')
    assert.deepEqual(seen.a, [cmd_id])
    assert.deepEqual(seen.b, [cmd_id])
  } finally {
    await Promise.all(links.flat().map((c) => c.endAsync()))
  }
})
