import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { after, before, describe, type TestContext, test } from 'node:test'
import mqtt, { type MqttClient } from 'mqtt'
import { parseMessage, Rejected } from '../../src/modules/ingest/index.ts'
import {
  createSimulatorModule,
  type Fleet,
  type KeyProvider,
  MAX_MEASUREMENTS,
  type SimulatorConfig,
  SUPPLY_SYSTEMS,
} from '../../src/modules/simulator/index.ts'
import { startEmbeddedBroker } from '../../src/platform/mqtt/index.ts'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import { registerDevice, waitFor } from '../helpers/device.ts'
import { uniqueName } from '../helpers/env.ts'
import { Observer, purgeDevices, type Seen, sendCommand } from '../helpers/simulator-observer.ts'

const RANGES: Record<string, [number, number]> = {
  voltage_dc: [0, 4000],
  current_dc: [-5000, 5000],
  voltage_ac: [0, 30000],
  current_ac: [0, 2000],
  pf: [-1, 1],
  temperature: [-40, 85],
}
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const newKey = () => randomBytes(32).toString('hex')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const acks = (obs: Observer, id: string) => obs.of(id, 'command/ack').map((s) => s.body)
const ackOf = (obs: Observer, id: string, cmdId: unknown) =>
  obs.until(() => acks(obs, id).find((a) => a.cmd_id === cmdId), `ack of ${String(cmdId)}`)
/** Sample timestamps of a datagram (one per sampling instant). */
const sampleTimes = (s: Seen) => [...new Set<string>(s.body.measurements.map((m: { ts: string }) => m.ts))]

describe('simulator', () => {
  let t: TestApp
  let url: string
  let commander: MqttClient
  let appClosed = false
  const pluginPrefix = uniqueName('plug')
  const used: string[] = []

  before(async () => {
    t = await build({
      SIMULATOR_ENABLED: 'true',
      SIMULATOR_DEVICES: '2',
      SIMULATOR_AC_SHARE: '0.5',
      SIMULATOR_ID_PREFIX: pluginPrefix,
      SIMULATOR_SAMPLING_MS: '100',
      SIMULATOR_SEND_INTERVAL_S: '1',
      SIMULATOR_HELLO_INTERVAL_S: '5',
    })
    url = brokerUrl(t)
    used.push(`${pluginPrefix}-dc-0001`, `${pluginPrefix}-ac-0002`)
    commander = await mqtt.connectAsync(url, { clientId: uniqueName('commander'), reconnectPeriod: 0 })
  })

  after(async () => {
    await commander.endAsync()
    if (!appClosed) await t.close()
    // Real mode shares the machine's Mosquitto: leave no retained status or session behind.
    if (t.config.MQTT_URL) await purgeDevices(url, used)
  })

  /** A fleet of its own (a unique id prefix) on the test broker, observed from before it starts. */
  async function running(
    ctx: TestContext,
    overrides: Partial<SimulatorConfig> = {},
    options: { keyFor?: KeyProvider; timeScale?: number; brokers?: string[] } = {},
  ): Promise<{ fleet: Fleet; obs: Observer; ids: string[]; id: string }> {
    const config: SimulatorConfig = {
      SIMULATOR_DEVICES: 1,
      SIMULATOR_AC_SHARE: 0,
      SIMULATOR_SEND_INTERVAL_S: 1,
      SIMULATOR_HELLO_INTERVAL_S: 5,
      SIMULATOR_SAMPLING_MS: 100,
      SIMULATOR_ENCODING: 'json',
      SIMULATOR_SEED: 1,
      SIMULATOR_DUPLICATE_RATE: 0,
      SIMULATOR_DROP_RATE: 0,
      SIMULATOR_REORDER_RATE: 0,
      SIMULATOR_REBOOT_EVERY_S: 0,
      SIMULATOR_ID_PREFIX: uniqueName('sim'),
      ...overrides,
    }
    const { fleet } = createSimulatorModule({
      config,
      brokerUrls: options.brokers ?? [url],
      log: t.app.log,
      keyFor: options.keyFor,
      timing: { timeScale: options.timeScale ?? 1, otaStepMs: 100, rebootDowntimeMs: 100 },
    })
    const ids = fleet.meters.map((m) => m.deviceId)
    used.push(...ids)
    const obs = await Observer.open(url, ids)
    ctx.after(async () => {
      await fleet.stop()
      await obs.close()
    })
    await fleet.start()
    // The boot hello follows the command subscription on the same connection: commands now reach it.
    await obs.until(() => ids.every((id) => obs.of(id, 'hello').length > 0), 'the boot hellos')
    return { fleet, obs, ids, id: ids[0] as string }
  }

  test('a meter says online (retained), then hello and telemetry; seq counts 0, 1, 2… across every type', async (ctx) => {
    const { obs, id } = await running(ctx)
    await obs.until(() => obs.of(id, 'telemetry').length >= 2, 'two datagrams')
    const status = await sendCommand(commander, id, 'request_status')
    await ackOf(obs, id, status.cmd_id)
    await obs.until(() => obs.of(id, 'telemetry').length >= 3, 'a third datagram')

    const first = obs.of(id)[0] as Seen
    assert.equal(first.kind, 'status', 'the online status comes first')
    assert.deepEqual(
      Object.keys(first.body).sort(),
      ['device_id', 'status', 'ts', 'v'],
      'status carries no seq',
    )
    assert.equal(first.body.status, 'online')

    const sequenced = obs.sequenced(id)
    assert.deepEqual(
      sequenced.map((s) => s.body.seq),
      sequenced.map((_, i) => i),
      'seq is 0, 1, 2… in arrival order, one counter for all message types',
    )
    assert.deepEqual(
      new Set(sequenced.map((s) => s.body.msg_type)),
      new Set(['hello', 'telemetry', 'command_ack']),
    )
    for (const s of sequenced) {
      assert.equal(s.body.v, 2)
      assert.equal(s.body.device_id, id)
      assert.match(s.body.ts, ISO)
      assert.equal(
        s.kind,
        { hello: 'hello', telemetry: 'telemetry', command_ack: 'command/ack' }[s.body.msg_type as string],
      )
    }

    const boot = obs.of(id, 'hello')[0]?.body
    assert.equal(boot.seq, 0, 'the boot hello announces the firmware')
    assert.equal(boot.fw_version, '1.4.2')
    assert.ok(Number.isInteger(boot.uptime_s) && boot.uptime_s <= 1)
    assert.equal(boot.broker_connections, 1)
    assert.ok(Number.isInteger(boot.buf_usage_pct) && boot.buf_usage_pct >= 0 && boot.buf_usage_pct <= 100)
    assert.equal(typeof boot.temp_internal, 'number')
    const statusHello = obs.of(id, 'hello')[1]?.body
    const statusAck = acks(obs, id)[0]
    assert.equal(statusHello.seq, statusAck.seq + 1, 'request_status: the hello right after the ack')

    // Samples every 100 ms, one datagram per second: the sample times run on without a hole.
    const datagrams = obs.of(id, 'telemetry')
    const times = datagrams.flatMap(sampleTimes).map((ts) => Date.parse(ts))
    for (let i = 1; i < times.length; i++) assert.equal((times[i] as number) - (times[i - 1] as number), 100)
    for (const d of datagrams) {
      const n = sampleTimes(d).length
      assert.ok(n >= 9 && n <= 11, `${n} samples in a 1 s window`)
      for (const m of d.body.measurements) {
        assert.match(m.ts, ISO)
        assert.equal(typeof m.val, 'number')
      }
      const types = new Set(d.body.measurements.map((m: { type: string }) => m.type))
      assert.ok(types.has('voltage_dc') && types.has('current_dc'))
    }
    assert.ok(
      datagrams[0]?.body.measurements.some(
        (m: { type: string; unit: string }) => m.type === 'temperature' && m.unit === 'Cel',
      ),
      'temperature and battery go out with the first sample, then once a minute',
    )

    const late = await Observer.open(url, [id])
    ctx.after(() => late.close())
    const retained = await late.until(() => late.of(id, 'status')[0], 'the retained status')
    assert.equal(retained.retain, true)
    assert.equal(retained.body.status, 'online')
  })

  test('binary encoding: telemetry goes as the binary datagram, shares the seq counter, and is stored', async (ctx) => {
    const { obs, id } = await running(ctx, { SIMULATOR_ENCODING: 'binary' }, { timeScale: 10 })
    await registerDevice(t, id)
    const datagrams = await obs.until(() => {
      const seen = obs.of(id, 'telemetry')
      return seen.length >= 3 && seen
    }, 'three telemetry datagrams')
    const limits = { maxBytes: 64 * 1024, maxFutureMs: 60_000, maxPastMs: 86_400_000 }
    for (const d of datagrams.slice(0, 3)) {
      assert.equal(d.payload[0], 0xb2, 'the binary marker')
      const parsed = parseMessage(`iot/${id}/telemetry`, d.payload, Date.now(), limits)
      assert.ok(!(parsed instanceof Rejected), (parsed as Rejected).detail)
      assert.ok(parsed.category === 'telemetry', parsed.category)
      // How many samples a window holds depends on the timers under load (12 seen in CI); each sample
      // carries both electrical values.
      const volts = parsed.samples.values.voltage_dc?.length ?? 0
      assert.ok(volts > 0, 'voltage samples')
      assert.equal(parsed.samples.values.current_dc?.length, volts, 'a current for each voltage')
    }
    // hello (JSON) and telemetry (binary) count one seq together.
    const hello = obs.of(id, 'hello')[0]?.body.seq as number
    const first = parseMessage(`iot/${id}/telemetry`, datagrams[0]?.payload as Buffer, Date.now(), limits)
    assert.equal((first as { seq: number }).seq, hello + 1)
    const stored = await waitFor(async () => {
      const url = `/api/devices/${id}/metrics?metric=voltage_dc&start=-1h&stop=now()`
      const points = (await t.inject({ url })).json()
      return Array.isArray(points) && points.length > 0 ? (points as { value: number }[]) : null
    })
    const volts = stored?.[0]?.value ?? 0
    assert.ok(volts > 500, `${volts} V`)
  })

  test('REQ-HELLO-001: send ≤ hello → only the boot hello; send > hello → a hello every hello interval', async (ctx) => {
    // ×5: datagrams every 200 ms, a hello would be due every second — and must not come.
    const quiet = await running(
      ctx,
      { SIMULATOR_SEND_INTERVAL_S: 1, SIMULATOR_HELLO_INTERVAL_S: 5 },
      { timeScale: 5 },
    )
    // ×10: datagrams every second, hellos every 500 ms.
    const chatty = await running(
      ctx,
      { SIMULATOR_SEND_INTERVAL_S: 10, SIMULATOR_HELLO_INTERVAL_S: 5, SIMULATOR_SAMPLING_MS: 1000 },
      { timeScale: 10 },
    )
    await sleep(3200)
    const quietHellos = quiet.obs.of(quiet.id, 'hello')
    assert.equal(quietHellos.length, 1, 'three hello intervals passed: only the boot hello')
    assert.equal(quietHellos[0]?.body.seq, 0)
    assert.ok(quiet.obs.of(quiet.id, 'telemetry').length >= 10, 'the datagrams are the heartbeat')

    const hellos = chatty.obs.of(chatty.id, 'hello').length
    const datagrams = chatty.obs.of(chatty.id, 'telemetry').length
    assert.ok(hellos >= 5, `hellos every 500 ms: ${hellos}`)
    assert.ok(datagrams >= 2 && datagrams < hellos, `${datagrams} datagrams, ${hellos} hellos`)
  })

  test('a datagram holds at most 200 measurements (a long window is split); values stay in PROTOCOL.md ranges', async (ctx) => {
    // One DC 750 V and one AC 25 kV meter; ×10 with 100 ms sampling and 10 s sending = 100 samples a window.
    const { obs, ids } = await running(
      ctx,
      {
        SIMULATOR_DEVICES: 2,
        SIMULATOR_AC_SHARE: 0.5,
        SIMULATOR_SEND_INTERVAL_S: 10,
        SIMULATOR_HELLO_INTERVAL_S: 30,
      },
      { timeScale: 10 },
    )
    const [dc, ac] = ids as [string, string]
    assert.match(dc, /-dc-0001$/)
    assert.match(ac, /-ac-0002$/)
    await obs.until(
      () => obs.of(ac, 'telemetry').length >= 5 && obs.of(dc, 'telemetry').length >= 3,
      'two windows',
    )
    const acDatagrams = obs.of(ac, 'telemetry')
    const sizes = acDatagrams.map((d) => d.body.measurements.length)
    assert.ok(
      sizes.every((n) => n <= MAX_MEASUREMENTS),
      `sizes ${sizes}`,
    )
    assert.equal(sizes[0], 200, 'the first window (100 samples × 4 readings + aux) is split')
    const seqs = acDatagrams.map((d) => d.body.seq)
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => (seqs[0] as number) + i),
    )
    for (const d of acDatagrams.slice(0, 2)) {
      // A split never cuts one sampling instant apart.
      const counts = new Map<string, number>()
      for (const m of d.body.measurements) counts.set(m.ts, (counts.get(m.ts) ?? 0) + 1)
      assert.ok([...counts.values()].every((n) => n >= 4))
    }

    const ac25 = SUPPLY_SYSTEMS.AC25k
    const dc750 = SUPPLY_SYSTEMS.DC750
    for (const d of [...acDatagrams, ...obs.of(dc, 'telemetry')]) {
      for (const m of d.body.measurements) {
        const range = RANGES[m.type]
        if (range) assert.ok(m.val >= range[0] && m.val <= range[1], `${m.type} ${m.val}`)
        if (m.type === 'voltage_ac')
          assert.ok(m.val >= ac25.min_v && m.val <= ac25.max_v, `AC 25 kV: ${m.val}`)
        if (m.type === 'voltage_dc')
          assert.ok(m.val >= dc750.min_v && m.val <= dc750.max_v, `DC 750 V: ${m.val}`)
        if (m.type === 'frequency') assert.ok(Math.abs(m.val - 50) <= 0.1)
      }
    }
  })

  test('a lost connection makes the broker publish the will (offline, retained); the meter comes back online', async (ctx) => {
    const { fleet, obs, id } = await running(ctx)
    await obs.until(() => obs.of(id, 'telemetry').length >= 1, 'a datagram')
    const seqBefore = obs.sequenced(id).at(-1)?.body.seq as number
    const since = obs.seen.length
    fleet.meter(id)?.links[0]?.client.stream.destroy()
    const will = await obs.until(
      () => obs.seen.slice(since).find((s) => s.deviceId === id && s.kind === 'status'),
      'the will',
    )
    assert.deepEqual(Object.keys(will.body).sort(), ['device_id', 'status', 'ts', 'v'])
    assert.equal(will.body.status, 'offline')
    assert.equal(will.body.device_id, id)
    await obs.until(
      () => obs.seen.slice(since).find((s) => s.kind === 'status' && s.body.status === 'online'),
      'online again',
    )
    const after = await obs.until(
      () => obs.seen.slice(since).find((s) => s.kind === 'telemetry'),
      'telemetry after the reconnect',
    )
    assert.ok(after.body.seq > seqBefore, 'a lost connection is not a reboot: seq runs on')
  })

  test('update_config applies the intervals live; invalid parameters are rejected and change nothing', async (ctx) => {
    const key = newKey()
    const { fleet, obs, id } = await running(ctx, {}, { keyFor: () => key, timeScale: 4 })
    const meter = fleet.meter(id)
    await obs.until(() => obs.of(id, 'telemetry').length >= 1, 'a datagram')

    const bad = await sendCommand(commander, id, 'update_config', { sampling_cadence_ms: 50 }, { key })
    const refused = await ackOf(obs, id, bad.cmd_id)
    assert.equal(refused.result, 'rejected')
    assert.match(refused.detail, /sampling_cadence_ms/)
    assert.equal(meter?.config.sampling_cadence_ms, 100)

    const good = await sendCommand(commander, id, 'update_config', { send_interval_s: 2 }, { key })
    const ack = await ackOf(obs, id, good.cmd_id)
    assert.equal(ack.result, 'accepted')
    assert.equal(ack.msg_type, 'command_ack')
    assert.equal(typeof ack.seq, 'number')
    assert.equal(meter?.config.send_interval_s, 2)
    const since = obs.seen.length
    await obs.until(
      () => obs.seen.slice(since).filter((s) => s.deviceId === id && s.kind === 'telemetry').length >= 2,
      'datagrams at the new interval',
    )
    const newer = obs.seen.slice(since).filter((s) => s.deviceId === id && s.kind === 'telemetry')
    const samples = sampleTimes(newer[1] as Seen).length
    assert.ok(samples >= 19 && samples <= 21, `2 s windows hold 20 samples, got ${samples}`)
  })

  test('request_status, unknown commands, duplicates and signatures', async (ctx) => {
    const key = newKey()
    const { fleet, obs, id } = await running(ctx, {}, { keyFor: () => key })
    await obs.until(() => obs.of(id, 'hello').length >= 1, 'the boot hello')

    const unknown = await sendCommand(commander, id, 'self_destruct', {}, { key })
    const unsupported = await ackOf(obs, id, unknown.cmd_id)
    assert.equal(unsupported.result, 'unsupported')

    const tampered = await sendCommand(
      commander,
      id,
      'update_config',
      { send_interval_s: 3 },
      {
        key,
        tamper: (e) => {
          e.params = { send_interval_s: 1 }
        },
      },
    )
    const badSig = await ackOf(obs, id, tampered.cmd_id)
    assert.equal(badSig.result, 'rejected')
    assert.equal(badSig.detail, 'bad signature')
    const unsigned = await sendCommand(commander, id, 'update_config', { send_interval_s: 3 })
    assert.equal((await ackOf(obs, id, unsigned.cmd_id)).detail, 'missing signature')
    const otherKey = await sendCommand(
      commander,
      id,
      'update_config',
      { send_interval_s: 3 },
      { key: newKey() },
    )
    assert.equal((await ackOf(obs, id, otherKey.cmd_id)).result, 'rejected')
    assert.equal(fleet.meter(id)?.config.send_interval_s, 1, 'no refused command changed anything')

    const cmdId = uniqueName('dup')
    await sendCommand(commander, id, 'request_status', {}, { key, cmdId })
    await sendCommand(commander, id, 'request_status', {}, { key, cmdId })
    await ackOf(obs, id, cmdId)
    await sleep(400)
    assert.equal(acks(obs, id).filter((a) => a.cmd_id === cmdId).length, 1, 'a cmd_id is handled once')
    assert.equal(obs.of(id, 'hello').length, 2, 'one hello for the request_status')
  })

  test('reboot: ack, offline, online, hello with seq 0 and a fresh uptime; seq restarts from 0', async (ctx) => {
    const { obs, id } = await running(ctx)
    await obs.until(() => obs.of(id, 'telemetry').length >= 2, 'two datagrams')
    const reboot = await sendCommand(commander, id, 'reboot')
    const ack = await ackOf(obs, id, reboot.cmd_id)
    assert.equal(ack.result, 'accepted')
    const afterAck = () =>
      obs
        .of(id)
        .slice(obs.of(id).findIndex((s) => s.kind === 'command/ack' && s.body.cmd_id === reboot.cmd_id))
    await obs.until(() => {
      const rest = afterAck()
      const boot = rest.findIndex((s) => s.kind === 'hello' && s.body.seq === 0)
      return boot > 0 && rest.slice(boot).some((s) => s.kind === 'telemetry' && s.body.seq === 2)
    }, 'the new boot')

    // Status (QoS 1) and ack (QoS 2) may pass each other on the broker; statuses keep their own order.
    const sent = obs.of(id).findIndex((s) => s.kind === 'command' && s.body.cmd_id === reboot.cmd_id)
    const statuses = obs
      .of(id)
      .slice(sent)
      .filter((s) => s.kind === 'status')
      .map((s) => s.body.status)
    assert.deepEqual(statuses.slice(0, 2), ['offline', 'online'])
    const seqs = afterAck()
      .filter((s) => typeof s.body?.seq === 'number')
      .map((s) => s.body.seq)
    const restart = seqs.indexOf(0)
    assert.ok(restart > 0, `seq restarts after the ack: ${seqs}`)
    assert.deepEqual(
      seqs.slice(0, restart),
      seqs.slice(0, restart).map((_, i) => ack.seq + i),
      'before: the ack, then the buffered samples',
    )
    assert.deepEqual(seqs.slice(restart, restart + 3), [0, 1, 2])
    const hello = obs.of(id, 'hello')[1]?.body
    assert.equal(hello.seq, 0)
    assert.ok(hello.uptime_s <= 1)
  })

  test('factory_reset restores the provisioned configuration and reboots', async (ctx) => {
    const { fleet, obs, id } = await running(ctx)
    const update = await sendCommand(commander, id, 'update_config', {
      send_interval_s: 7,
      hello_interval_s: 60,
    })
    await ackOf(obs, id, update.cmd_id)
    assert.equal(fleet.meter(id)?.config.send_interval_s, 7)
    const reset = await sendCommand(commander, id, 'factory_reset')
    assert.equal((await ackOf(obs, id, reset.cmd_id)).result, 'accepted')
    await obs.until(() => obs.of(id, 'hello').find((s, i) => i > 0 && s.body.seq === 0), 'the reboot')
    assert.deepEqual(
      { ...fleet.meter(id)?.config },
      { sampling_cadence_ms: 100, send_interval_s: 1, hello_interval_s: 5, brokers: [url] },
    )
  })

  test('OTA: accepted → downloading 0..100 → verifying → applying → success → reboot → hello with the new version', async (ctx) => {
    const { obs, id } = await running(ctx)
    await obs.until(() => obs.of(id, 'hello').length >= 1, 'the boot hello')
    const params = {
      fw_version: '2.1.0',
      fw_url: 'https://firmware.example/meter-2.1.0.bin',
      fw_sha256: 'ab'.repeat(32),
      fw_size_bytes: 524288,
    }
    const ota = await sendCommand(commander, id, 'start_ota', params)
    const ack = await ackOf(obs, id, ota.cmd_id)
    assert.equal(ack.result, 'accepted')
    const second = await sendCommand(commander, id, 'start_ota', params)
    assert.equal((await ackOf(obs, id, second.cmd_id)).result, 'rejected', 'one upgrade at a time')

    const hello = await obs.until(
      () => obs.of(id, 'hello').find((s) => s.body.fw_version === '2.1.0'),
      'hello 2.1.0',
    )
    assert.equal(hello.body.seq, 0, 'it comes back from a reboot')
    const reports = obs.of(id, 'ota/status').map((s) => s.body)
    assert.deepEqual(
      reports.map((r) => `${r.ota_state}:${r.progress_pct}`),
      [
        ...[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((p) => `downloading:${p}`),
        'verifying:100',
        'applying:100',
        'success:100',
      ],
    )
    for (const r of reports) {
      assert.equal(r.msg_type, 'ota_status')
      assert.equal(r.cmd_id, ota.cmd_id)
      assert.equal(r.fw_version_target, '2.1.0')
    }
    const success = reports.at(-1)
    const during = obs.of(id, 'telemetry').filter((s) => s.body.seq > ack.seq && s.body.seq < success.seq)
    assert.ok(during.length >= 1, 'data collection does not stop during the upgrade')
    const tail = obs
      .of(id)
      .filter((s) => s.kind === 'status' && s.at >= (obs.of(id, 'ota/status').at(-1) as Seen).at)
    assert.deepEqual(
      tail.map((s) => s.body.status),
      ['offline', 'online'],
    )
  })

  test('OTA with an image that fails its checksum: verifying → failed with a reason; no reboot, old version', async (ctx) => {
    const { obs, id } = await running(ctx)
    const ota = await sendCommand(commander, id, 'start_ota', {
      fw_version: '9.9.9',
      fw_url: 'https://firmware.example/broken.bin',
      fw_sha256: '0'.repeat(64),
      fw_size_bytes: 1000,
    })
    assert.equal((await ackOf(obs, id, ota.cmd_id)).result, 'accepted')
    const failed = await obs.until(
      () => obs.of(id, 'ota/status').find((s) => s.body.ota_state === 'failed'),
      'the failure report',
    )
    assert.match(failed.body.detail, /checksum/)
    const states = obs.of(id, 'ota/status').map((s) => s.body.ota_state)
    assert.deepEqual(states.slice(-2), ['verifying', 'failed'])
    const status = await sendCommand(commander, id, 'request_status')
    await ackOf(obs, id, status.cmd_id)
    const hello = await obs.until(() => obs.of(id, 'hello')[1], 'the status hello')
    assert.equal(hello.body.fw_version, '1.4.2')
    assert.ok(hello.body.seq > failed.body.seq, 'no reboot: seq runs on')
    assert.equal(obs.of(id, 'status').length, 1, 'never went offline')
  })

  test('fault knobs: duplicate, drop (a seq gap), reorder, and a scheduled reboot', async (ctx) => {
    const fast = { timeScale: 5 }
    const dup = await running(ctx, { SIMULATOR_DUPLICATE_RATE: 1 }, fast)
    const drop = await running(ctx, { SIMULATOR_DROP_RATE: 0.5 }, fast)
    const reorder = await running(ctx, { SIMULATOR_REORDER_RATE: 1 }, fast)
    const reboot = await running(ctx, { SIMULATOR_REBOOT_EVERY_S: 1 })
    await sleep(3000)

    const dupSeqs = dup.obs.of(dup.id, 'telemetry').map((s) => s.body.seq)
    assert.ok(dupSeqs.length >= 10)
    const counts = new Map<number, number>()
    for (const s of dupSeqs) counts.set(s, (counts.get(s) ?? 0) + 1)
    assert.ok(
      [...counts.values()].every((n) => n === 2),
      `every datagram twice: ${dupSeqs}`,
    )

    const dropSeqs = drop.obs.sequenced(drop.id).map((s) => s.body.seq)
    const max = Math.max(...dropSeqs)
    assert.equal(new Set(dropSeqs).size, dropSeqs.length, 'no copies')
    assert.ok(dropSeqs.length < max + 1, `gaps: ${dropSeqs}`)
    assert.deepEqual(
      dropSeqs,
      [...dropSeqs].sort((a, b) => a - b),
      'a dropped message consumes its seq; order kept',
    )

    const orderSeqs = reorder.obs.sequenced(reorder.id).map((s) => s.body.seq)
    assert.ok(
      orderSeqs.some((s, i) => i > 0 && s < (orderSeqs[i - 1] as number)),
      `out of order: ${orderSeqs}`,
    )
    const sorted = [...orderSeqs].sort((a, b) => a - b)
    assert.deepEqual(
      sorted,
      sorted.map((_, i) => i),
      'nothing lost, only late',
    )

    const boots = reboot.obs.of(reboot.id, 'hello').filter((s) => s.body.seq === 0)
    assert.ok(boots.length >= 2, `rebooted every second: ${boots.length} boots`)
    assert.ok(reboot.obs.of(reboot.id, 'status').filter((s) => s.body.status === 'offline').length >= 1)
  })

  test('every message goes to every broker; update_config brokers moves the meter', async (ctx) => {
    const second = await startEmbeddedBroker(0, '127.0.0.1')
    const secondUrl = `mqtt://127.0.0.1:${second.port}`
    ctx.after(() => second.close())
    const { fleet, obs, id } = await running(ctx, {}, { brokers: [url, secondUrl] })
    const obs2 = await Observer.open(secondUrl, [id])
    ctx.after(() => obs2.close())
    await obs2.until(() => obs2.of(id, 'telemetry').length >= 2, 'datagrams on the second broker')
    await obs.until(() => obs.of(id, 'telemetry').length >= 2, 'datagrams on the first broker')
    const one = new Map(obs.of(id, 'telemetry').map((s) => [s.body.seq, JSON.stringify(s.body)]))
    const both = obs2.of(id, 'telemetry').filter((s) => one.has(s.body.seq))
    assert.ok(both.length >= 1)
    for (const s of both)
      assert.equal(JSON.stringify(s.body), one.get(s.body.seq), 'the same bytes on each broker')
    const hello = obs2.of(id, 'hello')[0]?.body ?? obs.of(id, 'hello')[0]?.body
    assert.ok(hello.broker_connections >= 1)

    const move = await sendCommand(commander, id, 'update_config', {
      brokers: [{ host: '127.0.0.1', port: second.port }],
    })
    assert.equal((await ackOf(obs, id, move.cmd_id)).result, 'accepted')
    const left = await obs.until(
      () => obs.of(id, 'status').find((s) => s.body.status === 'offline'),
      'the meter leaving the first broker',
    )
    const count = obs2.of(id, 'telemetry').length
    await obs2.until(() => obs2.of(id, 'telemetry').length >= count + 2, 'datagrams on the second broker')
    assert.equal(obs.of(id, 'telemetry').filter((s) => s.at > left.at).length, 0, 'nothing more on the first')
    assert.deepEqual(fleet.meter(id)?.config.brokers, [secondUrl])
    await fleet.stop()
  })

  test('plugin mode: meters registered with their metadata, publishing, metrics on /metrics, server-signed commands', async (ctx) => {
    const dc = `${pluginPrefix}-dc-0001`
    const ac = `${pluginPrefix}-ac-0002`
    const obs = await Observer.open(url, [dc, ac])
    ctx.after(() => obs.close())
    await obs.until(
      () => obs.of(dc, 'telemetry').length >= 1 && obs.of(ac, 'telemetry').length >= 1,
      'telemetry',
    )
    const online = obs.of(dc, 'status')[0]
    assert.equal(online?.body.status, 'online')

    const res = await t.inject({ url: `/api/devices/${ac}` })
    assert.equal(res.statusCode, 200)
    const device = res.json()
    assert.equal(device.device_type, 'power_meter_ac')
    assert.equal(device.metadata.voltage_system, 'AC25k')
    assert.equal(device.metadata.accuracy_class, '0.5R')
    assert.equal(device.metadata.fw, '1.4.2')
    assert.equal(device.config.send_interval_s, 1, 'registered with the intervals it runs with')

    // The server's key (commands module) is the device's key: a command it signs is accepted.
    const keyRes = await t.inject({ url: `/api/devices/${dc}/command-key` })
    assert.equal(keyRes.statusCode, 200)
    const key = keyRes.json().command_key
    const signed = await sendCommand(commander, dc, 'request_status', {}, { key })
    assert.equal((await ackOf(obs, dc, signed.cmd_id)).result, 'accepted')
    const forged = await sendCommand(commander, dc, 'request_status', {}, { key: newKey() })
    assert.equal((await ackOf(obs, dc, forged.cmd_id)).detail, 'bad signature')

    const metrics = (await t.inject({ url: '/metrics' })).body
    assert.match(metrics, /simulator_messages_sent_total\{type="telemetry"\} [1-9]/)
    assert.match(metrics, /simulator_devices_connected 2/)
    assert.match(metrics, /simulator_commands_handled_total\{cmd="request_status",result="rejected"\} 1/)
  })

  test('CLI: registers through the API, publishes, prints progress and a summary, exits 0 at --duration', async (ctx) => {
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' })
    const prefix = uniqueName('cli')
    const ids = [`${prefix}-dc-0001`, `${prefix}-ac-0002`]
    used.push(...ids)
    const obs = await Observer.open(url, ids)
    ctx.after(() => obs.close())
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/simulate.ts',
        ...[
          '--mqtt',
          url,
          '--api',
          address,
          '--token',
          t.adminToken,
          '--devices',
          '2',
          '--ac-share',
          '0.5',
          '--prefix',
          prefix,
        ],
        ...['--sampling-ms', '100', '--send-interval', '1', '--duration', '3', '--progress-every', '1'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => {
      stdout += c
    })
    child.stderr.on('data', (c) => {
      stderr += c
    })
    const [code] = await once(child, 'exit')
    assert.equal(code, 0, stderr)
    assert.match(stdout, /connected 2\/2/)
    assert.match(stdout, /summary: ran 3\.\d s/)
    assert.match(stdout, /devices 2 \(1 DC, 1 AC\)/)
    for (const id of ids) {
      const res = await t.inject({ url: `/api/devices/${id}` })
      assert.equal(res.statusCode, 200, `${id} registered`)
      assert.equal(res.json().metadata.simulated, true)
      assert.ok(obs.of(id, 'telemetry').length >= 1, `${id} published`)
      assert.equal(obs.of(id, 'status').at(-1)?.body.status, 'offline', 'a clean exit says offline')
    }
  })

  test('closing the app stops the plugin fleet: promptly, and with a retained offline status per meter', async (ctx) => {
    const ids = [`${pluginPrefix}-dc-0001`, `${pluginPrefix}-ac-0002`]
    const obs = await Observer.open(url, ids)
    ctx.after(() => obs.close().catch(() => undefined))
    await obs.until(
      () => ids.every((id) => obs.of(id, 'status')[0]?.body.status === 'online'),
      'retained online',
    )
    appClosed = true
    const started = Date.now()
    await t.close()
    assert.ok(Date.now() - started < 5000, 'a bounded drain, never a hang')
    if (t.config.MQTT_URL) {
      // External broker: the meters' last words reach it. (Embedded: the ingest module stops acking
      // first and the broker dies with the process, so there is no one left to tell.)
      for (const id of ids) assert.equal(obs.of(id, 'status').at(-1)?.body.status, 'offline', id)
    }
  })
})
