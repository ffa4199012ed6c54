import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import mqtt from 'mqtt'
import pino from 'pino'
import { MqttHub } from '../../../src/platform/mqtt/hub.ts'
import { waitFor } from '../../helpers/device.ts'
import { uniqueName } from '../../helpers/env.ts'
import { type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts'

let mosquitto: Mosquitto
before(async () => {
  mosquitto = await startMosquitto()
})
after(async () => {
  await mosquitto.stop()
})

// The kill -9 test lost up to 14 % of the messages: after the restart the broker delivered the
// persistent session's queue right after CONNACK, while the app was still registering plugins, and
// the hub's placeholder handler acknowledged each one to nobody.
test('messages queued for the persistent session wait, unacknowledged, until the ingest installs its handler', async () => {
  const clientId = uniqueName('hub-session')
  const topic = 'iot/hub-dev/telemetry'
  // The server's session exists and subscribed, then the server went away.
  const first = await mqtt.connectAsync(mosquitto.url, { clientId, clean: false, protocolVersion: 4 })
  await first.subscribeAsync('iot/+/telemetry', { qos: 1 })
  await first.endAsync()

  const device = await mqtt.connectAsync(mosquitto.url, { clientId: uniqueName('dev'), protocolVersion: 4 })
  const sent = Array.from({ length: 50 }, (_, i) => `m${i}`)
  for (const body of sent) await device.publishAsync(topic, body, { qos: 2 })
  await device.endAsync()

  const hub = new MqttHub({
    urls: [mosquitto.url],
    clientId,
    protocolVersion: 4,
    logger: pino({ level: 'silent' }),
  })
  try {
    await waitFor(() => hub.connectedCount() === 1, 10_000, 'hub connected')
    // The rest of the app starts meanwhile.
    await new Promise((r) => setTimeout(r, 500))
    const received: string[] = []
    hub.onMessage((_link, packet, done) => {
      received.push(packet.payload.toString())
      done()
    })
    await waitFor(() => received.length >= sent.length, 10_000, `${sent.length} messages`)
    assert.deepEqual(received, sent)
  } finally {
    await hub.close()
  }
})
