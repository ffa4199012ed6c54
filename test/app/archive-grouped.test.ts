import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { MqttClient } from 'mqtt'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import { connectDevice, dcTelemetry, publishJson, registerDevice, waitFor } from '../helpers/device.ts'
import { uniqueName } from '../helpers/env.ts'

// Issue 18: grouped archive objects (several devices per object) through the ingest and the routes.
let t: TestApp
let device: MqttClient
before(async () => {
  t = await build({ INGEST_FLUSH_MS: '50', ARCHIVE_OBJECT_PERIOD_S: '1' })
  device = await connectDevice(brokerUrl(t), uniqueName('probe'))
})
after(async () => {
  await device.endAsync()
  await t.close()
})

test('grouped objects: each device lists and downloads exactly its own lines', async () => {
  const ids = [uniqueName('ga'), uniqueName('gb')]
  for (const id of ids) await registerDevice(t, id)
  const T0 = Date.now() - 60_000
  for (let seq = 0; seq < 4; seq++)
    for (const id of ids)
      await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, seq, T0 + seq * 1000))
  for (const id of ids) {
    const seqs = await waitFor(async () => {
      const list = (await t.inject({ url: `/api/devices/${id}/raw-data` })).json() as { filename: string }[]
      const lines: { topic: string; message: { seq: number } }[] = []
      for (const o of list) {
        const body = (
          await t.inject({ url: `/api/devices/${id}/raw-data/${o.filename.slice(id.length + 1)}` })
        ).body
        for (const l of body.split('\n').filter((s) => s.length > 0)) lines.push(JSON.parse(l))
      }
      for (const l of lines) assert.equal(l.topic, `iot/${id}/telemetry`, 'only its own lines')
      return lines.length >= 4 ? lines.map((l) => l.message.seq).sort() : null
    }, 10_000)
    assert.deepEqual(seqs, [0, 1, 2, 3], id)
  }
  // Written as grouped objects: fewer files than devices × messages.
  const day = join(t.config.DATA_DIR, 'archive', '.grouped', 'all')
  assert.ok(readdirSync(day).length > 0, 'grouped objects exist')
  const registered = (await t.inject({ url: `/api/devices/${ids[0]}` })).json()
  assert.equal(registered.connection_status, 'online')
})
