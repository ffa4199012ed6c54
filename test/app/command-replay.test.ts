import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import mqtt, { type MqttClient } from 'mqtt'
import {
  createSimulatorModule,
  type Fleet,
  type SimulatorConfig,
  signCommand,
} from '../../src/modules/simulator/index.ts'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import { tempDir, uniqueName } from '../helpers/env.ts'
import { Observer, purgeDevices, sendCommand } from '../helpers/simulator-observer.ts'

// Issue 16 row 4: a captured signed command cannot be replayed — not later (exp), not again
// (executed cmd_ids, kept across a restart of the device), not to another device (device_id is
// signed). The reference device (the simulator) answers such a command `expired`.
const KEY = 'c3'.repeat(32)

describe('command replay (reference device)', () => {
  let t: TestApp
  let url: string
  let commander: MqttClient
  const state = tempDir()
  const prefix = uniqueName('replay')
  const used: string[] = []

  before(async () => {
    t = await build()
    url = brokerUrl(t)
    commander = await mqtt.connectAsync(url, { clientId: uniqueName('commander'), reconnectPeriod: 0 })
  })
  after(async () => {
    await commander.endAsync()
    await t.close()
    if (t.config.MQTT_URL) await purgeDevices(url, used)
    state.remove()
  })

  /** A one-meter fleet keeping its executed cmd_ids under the test's state directory. */
  async function meter(): Promise<{ fleet: Fleet; obs: Observer; id: string }> {
    const config: SimulatorConfig = {
      SIMULATOR_DEVICES: 1,
      SIMULATOR_AC_SHARE: 0,
      SIMULATOR_SEND_INTERVAL_S: 60,
      SIMULATOR_HELLO_INTERVAL_S: 60,
      SIMULATOR_SAMPLING_MS: 1000,
      SIMULATOR_ENCODING: 'json',
      SIMULATOR_SEED: 1,
      SIMULATOR_DUPLICATE_RATE: 0,
      SIMULATOR_DROP_RATE: 0,
      SIMULATOR_REORDER_RATE: 0,
      SIMULATOR_REBOOT_EVERY_S: 0,
      SIMULATOR_ID_PREFIX: prefix,
    }
    const { fleet } = createSimulatorModule({
      config,
      brokerUrls: [url],
      log: t.app.log,
      keyFor: () => KEY,
      stateDir: state.path,
      timing: { timeScale: 1, otaStepMs: 100, rebootDowntimeMs: 100 },
    })
    const id = fleet.meters[0]?.deviceId as string
    used.push(id)
    const obs = await Observer.open(url, [id])
    await fleet.start()
    await obs.until(() => obs.of(id, 'hello').length > 0, 'the boot hello')
    return { fleet, obs, id }
  }

  /** Signs (with the device's key) and publishes an envelope to the device's command topic. */
  async function publishSigned(
    id: string,
    envelope: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const { sig: _sig, ...rest } = envelope
    const signed = { ...rest, sig: signCommand(rest, KEY) }
    await commander.publishAsync(`iot/${id}/command`, JSON.stringify(signed), { qos: 2 })
    return signed
  }

  const ackOf = (obs: Observer, id: string, cmdId: unknown) =>
    obs.until(() => obs.of(id, 'command/ack').find((a) => a.body.cmd_id === cmdId)?.body, `ack of ${cmdId}`)

  test('stale, future, foreign, replayed (also after a restart) and unsigned commands are refused', async () => {
    let { fleet, obs, id } = await meter()
    try {
      const fresh = await sendCommand(commander, id, 'request_status', {}, { key: KEY })
      assert.equal((await ackOf(obs, id, fresh.cmd_id)).result, 'accepted')

      // request_status answers with a hello: wait for it, so the count below is not racing it.
      await obs.until(() => obs.of(id, 'hello').length >= 2, 'the hello request_status asks for')
      // The same bytes again (a captured command): not executed (request_status would send a hello), not answered.
      const hellos = obs.of(id, 'hello').length
      await commander.publishAsync(`iot/${id}/command`, JSON.stringify(fresh), { qos: 2 })
      await new Promise((r) => setTimeout(r, 500))
      assert.equal(obs.of(id, 'hello').length, hellos)
      assert.equal(obs.of(id, 'command/ack').filter((a) => a.body.cmd_id === fresh.cmd_id).length, 1)

      const hour = 3_600_000
      const now = Date.now()
      const at = (ms: number) => new Date(now + ms).toISOString()
      const stale = await publishSigned(id, {
        ...fresh,
        cmd_id: randomUUID(),
        ts: at(-2 * hour),
        exp: at(-hour),
      })
      assert.equal((await ackOf(obs, id, stale.cmd_id)).result, 'expired')
      const future = await publishSigned(id, {
        ...fresh,
        cmd_id: randomUUID(),
        ts: at(hour),
        exp: at(2 * hour),
      })
      assert.equal((await ackOf(obs, id, future.cmd_id)).result, 'expired')
      // Signed for another device, published on this one's topic.
      const foreign = await publishSigned(id, { ...fresh, cmd_id: randomUUID(), device_id: 'another-meter' })
      const foreignAck = await ackOf(obs, id, foreign.cmd_id)
      assert.equal(foreignAck.result, 'rejected')
      assert.match(foreignAck.detail, /another device/)

      const unsigned = await sendCommand(commander, id, 'reboot')
      assert.equal((await ackOf(obs, id, unsigned.cmd_id)).result, 'rejected')

      // The device restarts: what it executed is still known.
      await fleet.stop()
      await obs.close()
      ;({ fleet, obs, id } = await meter())
      const booted = obs.of(id, 'hello').length
      await commander.publishAsync(`iot/${id}/command`, JSON.stringify(fresh), { qos: 2 })
      await new Promise((r) => setTimeout(r, 500))
      assert.equal(obs.of(id, 'hello').length, booted, 'replayed after a restart: not executed')
      assert.equal(obs.of(id, 'command/ack').length, 0)
    } finally {
      await fleet.stop()
      await obs.close()
    }
  })
})
