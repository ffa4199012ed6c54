import assert from 'node:assert/strict'
import { createHmac, randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createAlertsModule } from '../../src/modules/alerts/index.ts'
import {
  type CommandsService,
  canonicalJson,
  createCommandsModule,
  signCommand,
  verifyCommand,
} from '../../src/modules/commands/index.ts'
import { createDevicesModule } from '../../src/modules/devices/index.ts'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import { connectMeter, freePort } from '../helpers/commands-meter.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../helpers/env.ts'
import { startMosquitto } from '../helpers/mosquitto.ts'

/** The commands facade over the app's database and broker hub, as the ingest module will hold it. */
function facadeOf(t: TestApp): CommandsService {
  const devices = createDevicesModule(t.app.db).service
  const alerts = createAlertsModule(t.app.db, devices).service
  return createCommandsModule({
    db: t.app.db,
    mqtt: t.app.mqtt,
    devices,
    alerts,
    config: t.config,
    log: t.app.log,
  }).service
}

async function register(t: TestApp, prefix = 'cmd'): Promise<{ deviceId: string; pk: number }> {
  const deviceId = uniqueName(prefix)
  const res = await t.inject({
    method: 'POST',
    url: '/api/devices',
    payload: { device_id: deviceId, device_name: 'M' },
  })
  assert.equal(res.statusCode, 201)
  return { deviceId, pk: res.json().id }
}

const send = (t: TestApp, deviceId: string, body: unknown) =>
  t.inject({ method: 'POST', url: `/api/devices/${deviceId}/commands`, payload: body as object })

const command = async (t: TestApp, cmdId: string) =>
  (await t.inject({ url: `/api/commands/${cmdId}` })).json()

const ack = (t: TestApp, cmdId: string, body: unknown) =>
  t.inject({ method: 'PUT', url: `/api/commands/${cmdId}/ack`, payload: body as object })

const alertsOf = async (t: TestApp, deviceId: string, type: string) =>
  (await t.inject({ url: `/api/devices/${deviceId}/alerts` }))
    .json()
    .filter((a: { alert_type: string }) => a.alert_type === type)

async function eventually<T>(
  probe: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 8000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (ok(value)) return value
    if (Date.now() > deadline)
      assert.fail(`condition not met within ${timeoutMs} ms: ${JSON.stringify(value)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** A freshly built app may still be connecting to its broker (a command then waits in the outbox). */
const brokerConnected = (t: TestApp) =>
  eventually(
    async () => t.app.mqtt.connectedCount(),
    (n) => n > 0,
  )

const at = (base: number, s: number) => new Date(base + s * 1000).toISOString()

const OTA = {
  fw_version: '2.1.0',
  fw_url: 'https://fw.example.com/meter/2.1.0.bin',
  fw_sha256: 'AB'.repeat(32),
  fw_size_bytes: 524288,
}

describe('commands', () => {
  let t: TestApp
  let facade: CommandsService
  before(async () => {
    t = await build()
    facade = facadeOf(t)
    await brokerConnected(t)
  })
  after(() => t.close())

  test('params are validated per command; a 400 names the field and stores nothing', async () => {
    const { deviceId } = await register(t)
    const broker = (port: unknown) => ({ host: 'broker.example', port })
    const cases: [unknown, RegExp][] = [
      [{ cmd: 'launch' }, /cmd/],
      [{}, /cmd/],
      [{ cmd: 'reboot', extra: 1 }, /extra|additional/],
      [{ cmd: 'reboot', params: 'now' }, /params/],
      [{ cmd: 'reboot', params: null }, /params/],
      [{ cmd: 'update_config' }, /at least one of sampling_cadence_ms/],
      [{ cmd: 'update_config', params: {} }, /at least one of sampling_cadence_ms/],
      [
        { cmd: 'update_config', params: { sampling_cadence_ms: 99 } },
        /params\.sampling_cadence_ms: .*100 to 60000/,
      ],
      [{ cmd: 'update_config', params: { sampling_cadence_ms: 60001 } }, /params\.sampling_cadence_ms/],
      [{ cmd: 'update_config', params: { sampling_cadence_ms: 1000.5 } }, /params\.sampling_cadence_ms/],
      [{ cmd: 'update_config', params: { send_interval_s: 0 } }, /params\.send_interval_s: .*1 to 3600/],
      [{ cmd: 'update_config', params: { send_interval_s: 3601 } }, /params\.send_interval_s/],
      [{ cmd: 'update_config', params: { send_interval_s: '10' } }, /params\.send_interval_s/],
      [{ cmd: 'update_config', params: { hello_interval_s: 4 } }, /params\.hello_interval_s: .*5 to 3600/],
      [{ cmd: 'update_config', params: { brokers: [] } }, /params\.brokers: .*1 to 5/],
      [{ cmd: 'update_config', params: { brokers: Array(6).fill(broker(1883)) } }, /params\.brokers/],
      [
        { cmd: 'update_config', params: { brokers: [{ host: 'b' }] } },
        /params\.brokers\[0\]\.port: required/,
      ],
      [{ cmd: 'update_config', params: { brokers: [broker(70000)] } }, /params\.brokers\[0\]\.port: .*65535/],
      [
        { cmd: 'update_config', params: { brokers: [{ host: 'a b', port: 1 }] } },
        /params\.brokers\[0\]\.host/,
      ],
      [{ cmd: 'update_config', params: { tls_enabled: false } }, /params\.tls_enabled: not a parameter/],
      [{ cmd: 'start_ota', params: { ...OTA, fw_url: undefined } }, /params\.fw_url: required/],
      [
        { cmd: 'start_ota', params: { ...OTA, fw_url: 'http://fw.example.com/x.bin' } },
        /params\.fw_url: .*https/,
      ],
      [{ cmd: 'start_ota', params: { ...OTA, fw_url: 'ftp://fw.example.com/x.bin' } }, /params\.fw_url/],
      [{ cmd: 'start_ota', params: { ...OTA, fw_url: 'https://' } }, /params\.fw_url/],
      [{ cmd: 'start_ota', params: { ...OTA, fw_sha256: 'a'.repeat(63) } }, /params\.fw_sha256: .*64 hex/],
      [{ cmd: 'start_ota', params: { ...OTA, fw_sha256: 'g'.repeat(64) } }, /params\.fw_sha256/],
      [{ cmd: 'start_ota', params: { ...OTA, fw_version: '2.1' } }, /params\.fw_version: .*semantic/],
      [{ cmd: 'start_ota', params: { ...OTA, fw_size_bytes: 0 } }, /params\.fw_size_bytes: .*positive/],
      [{ cmd: 'start_ota', params: { ...OTA, fw_size_bytes: 1.5 } }, /params\.fw_size_bytes/],
      [{ cmd: 'start_ota', params: { ...OTA, fw_size_bytes: '524288' } }, /params\.fw_size_bytes/],
      [{ cmd: 'reboot', params: { delay_s: 5 } }, /params\.delay_s: reboot takes no parameters/],
      [{ cmd: 'factory_reset', params: { keep: true } }, /params\.keep: factory_reset takes no parameters/],
      [{ cmd: 'request_status', params: { now: 1 } }, /params\.now: request_status takes no parameters/],
    ]
    for (const [body, field] of cases) {
      const res = await send(t, deviceId, body)
      assert.equal(res.statusCode, 400, JSON.stringify(body))
      assert.match(res.json().error, field, JSON.stringify(body))
    }
    const stored = await t.inject({ url: `/api/devices/${deviceId}/commands` })
    assert.deepEqual(stored.json(), [], 'a refused command is not stored')
  })

  test('404 for an unknown device, command or OTA; 400 for a malformed cmd_id or ack', async () => {
    const { deviceId } = await register(t)
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/api/devices/nope/commands', { cmd: 'reboot' }, 404, /^Device not found$/],
      ['GET', '/api/devices/nope/commands', undefined, 404, /^Device not found$/],
      ['GET', '/api/devices/nope/command-key', undefined, 404, /^Device not found$/],
      ['POST', '/api/devices/nope/command-key/rotate', undefined, 404, /^Device not found$/],
      ['GET', '/api/devices/nope/ota', undefined, 404, /^Device not found$/],
      ['GET', `/api/devices/${deviceId}/ota`, undefined, 404, /^No OTA for this device$/],
      ['GET', `/api/commands/${randomUUID()}`, undefined, 404, /^Command not found$/],
      ['PUT', `/api/commands/${randomUUID()}/ack`, { result: 'accepted' }, 404, /^Command not found$/],
      ['GET', '/api/commands/not-a-uuid', undefined, 400, /cmd_id/],
      ['PUT', `/api/commands/${randomUUID()}/ack`, { result: 'done' }, 400, /result/],
      ['PUT', `/api/commands/${randomUUID()}/ack`, {}, 400, /result/],
      ['GET', `/api/devices/${deviceId}/commands?status=lost`, undefined, 400, /status/],
      ['GET', `/api/devices/${deviceId}/commands?limit=0`, undefined, 400, /limit/],
    ]
    for (const [method, url, payload, status, message] of cases) {
      const res = await t.inject({ method: method as 'GET', url, payload: payload as object })
      assert.equal(res.statusCode, status, `${method} ${url}`)
      assert.match(res.json().error, message, `${method} ${url}`)
    }
  })

  test('the meter receives the command signed with its key: 201 and sent', async () => {
    const { deviceId } = await register(t)
    const meter = await connectMeter(brokerUrl(t), deviceId)
    try {
      const params = { send_interval_s: 20, brokers: [{ host: 'broker-a.example.com', port: 8883 }] }
      const res = await send(t, deviceId, { cmd: 'update_config', params })
      assert.equal(res.statusCode, 201)
      const body = res.json()
      assert.deepEqual(Object.keys(body).sort(), ['cmd', 'cmd_id', 'device_id', 'message', 'status'])
      assert.equal(body.status, 'sent')
      assert.equal(body.device_id, deviceId)
      assert.equal(body.cmd, 'update_config')

      const envelope = await meter.next()
      assert.deepEqual(Object.keys(envelope).sort(), [
        'cmd',
        'cmd_id',
        'device_id',
        'exp',
        'params',
        'sig',
        'ts',
        'v',
      ])
      assert.equal(envelope.v, 2)
      assert.equal(envelope.cmd_id, body.cmd_id)
      assert.equal(envelope.cmd, 'update_config')
      assert.deepEqual(envelope.params, params)
      assert.match(String(envelope.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

      const keyRes = await t.inject({ url: `/api/devices/${deviceId}/command-key` })
      assert.equal(keyRes.statusCode, 200)
      const { command_key: key, rotated_at } = keyRes.json()
      assert.match(key, /^[0-9a-f]{64}$/)
      assert.equal(rotated_at, null)
      assert.ok(verifyCommand(envelope, key), 'the signature verifies with the device key')

      // The signature, computed here from the definition: HMAC-SHA256 over sorted, compact JSON.
      const canonical =
        `{"cmd":"update_config","cmd_id":"${body.cmd_id}","device_id":"${deviceId}","exp":"${envelope.exp}",` +
        `"params":{"brokers":[{"host":"broker-a.example.com",` +
        `"port":8883}],"send_interval_s":20},"ts":"${envelope.ts}","v":2}`
      // The expiry is COMMAND_ACK_TIMEOUT_S after the signing time (issue 16 row 4).
      assert.equal(
        Date.parse(String(envelope.exp)) - Date.parse(String(envelope.ts)),
        t.config.COMMAND_ACK_TIMEOUT_S * 1000,
      )
      assert.equal(
        envelope.sig,
        createHmac('sha256', Buffer.from(key, 'hex')).update(canonical).digest('hex'),
      )

      const tampered = [
        { ...envelope, params: { ...params, send_interval_s: 1 } },
        { ...envelope, cmd: 'factory_reset' },
        { ...envelope, cmd_id: randomUUID() },
        { ...envelope, device_id: 'another-meter' },
        { ...envelope, exp: new Date(Date.now() + 86_400_000).toISOString() },
        { ...envelope, ts: new Date().toISOString() },
        {
          ...envelope,
          sig: `${String(envelope.sig).slice(0, 63)}${String(envelope.sig).endsWith('0') ? '1' : '0'}`,
        },
        { ...envelope, sig: undefined },
      ]
      for (const forged of tampered) assert.equal(verifyCommand(forged, key), false, JSON.stringify(forged))
      const other = await register(t)
      const otherKey = (await t.inject({ url: `/api/devices/${other.deviceId}/command-key` })).json()
        .command_key
      assert.equal(verifyCommand(envelope, otherKey), false, "another device's key does not verify")

      const stored = await command(t, body.cmd_id)
      assert.equal(stored.status, 'sent')
      assert.ok(stored.sent_at)
      assert.equal(stored.acked_at, null)
      assert.equal(stored.ota, null)
      assert.deepEqual(stored.params, params)
    } finally {
      await meter.close()
    }
  })

  test('canonical JSON sorts keys at every depth, without whitespace; sig is left out of the signature', () => {
    const value = { b: 1, a: { d: [3, { z: true, y: null }], c: 'é "q"' }, u: undefined }
    assert.equal(canonicalJson(value), '{"a":{"c":"é \\"q\\"","d":[3,{"y":null,"z":true}]},"b":1}')
    assert.equal(canonicalJson({ x: 1, y: [2, 1] }), canonicalJson({ y: [2, 1], x: 1 }))
    assert.throws(() => canonicalJson({ n: Number.NaN }), /non-finite/)
    const key = 'ab'.repeat(32)
    const unsigned = {
      v: 2 as const,
      device_id: 'meter-1',
      cmd_id: randomUUID(),
      ts: new Date().toISOString(),
      exp: new Date(Date.now() + 300_000).toISOString(),
      cmd: 'reboot',
      params: {},
    }
    const sig = signCommand(unsigned, key)
    assert.equal(signCommand({ ...unsigned, sig: 'x' } as typeof unsigned, key), sig)
    assert.ok(verifyCommand({ ...unsigned, sig }, key))
    assert.ok(verifyCommand({ ...unsigned, sig: sig.toUpperCase() }, key))
    assert.equal(verifyCommand({ ...unsigned, sig }, 'not a key'), false, 'a malformed key does not verify')
    assert.equal(verifyCommand({ ...unsigned, params: { n: Number.NaN }, sig }, key), false)
  })

  test('reboot, factory_reset and request_status go out with empty params, given or omitted', async () => {
    const { deviceId } = await register(t)
    const meter = await connectMeter(brokerUrl(t), deviceId)
    try {
      for (const body of [
        { cmd: 'reboot' },
        { cmd: 'factory_reset', params: {} },
        { cmd: 'request_status' },
      ]) {
        const res = await send(t, deviceId, body)
        assert.equal(res.statusCode, 201, JSON.stringify(body))
        const envelope = await meter.next()
        assert.equal(envelope.cmd, body.cmd)
        assert.deepEqual(envelope.params, {})
        assert.deepEqual((await command(t, res.json().cmd_id)).params, {})
      }
    } finally {
      await meter.close()
    }
  })

  test('an accepted update_config (manual ack) becomes the configuration, with a history row', async () => {
    const { deviceId } = await register(t)
    const res = await send(t, deviceId, {
      cmd: 'update_config',
      params: { send_interval_s: 45, hello_interval_s: 60 },
    })
    assert.equal(res.statusCode, 201)
    const cmdId = res.json().cmd_id

    const acked = await ack(t, cmdId, { result: 'accepted', detail: 'applied' })
    assert.equal(acked.statusCode, 200)
    assert.equal(acked.json().status, 'accepted')
    assert.equal(acked.json().detail, 'applied')
    assert.ok(acked.json().acked_at)

    const device = (await t.inject({ url: `/api/devices/${deviceId}` })).json()
    assert.equal(device.config.send_interval_s, 45)
    assert.equal(device.config.hello_interval_s, 60)
    assert.equal(device.config.sampling_cadence_ms, 1000, 'fields not in the command stay')
    const history = (await t.inject({ url: `/api/devices/${deviceId}/config-history` })).json()
    assert.equal(history.length, 2)
    assert.equal(history[0].source, 'update_config')
    assert.equal(history[0].cmd_id, cmdId)
    assert.equal(history[0].config.send_interval_s, 45)

    const again = await ack(t, cmdId, { result: 'accepted' })
    assert.equal(again.statusCode, 200, 'repeating the recorded result is harmless')
    assert.equal(again.json().detail, 'applied')
    const other = await ack(t, cmdId, { result: 'rejected' })
    assert.equal(other.statusCode, 409)
    assert.match(other.json().error, /already acknowledged/)
    const historyAfter = (await t.inject({ url: `/api/devices/${deviceId}/config-history` })).json()
    assert.equal(historyAfter.length, 2, 'a repeated ack applies nothing twice')

    const refused = await send(t, deviceId, { cmd: 'update_config', params: { send_interval_s: 5 } })
    const rejected = await ack(t, refused.json().cmd_id, { result: 'rejected', detail: 'busy' })
    assert.equal(rejected.json().status, 'rejected')
    const unchanged = (await t.inject({ url: `/api/devices/${deviceId}` })).json()
    assert.equal(unchanged.config.send_interval_s, 45, 'a rejected update_config changes nothing')
  })

  test("the facade records acks of the device's own commands and ignores the rest", async () => {
    const { deviceId } = await register(t)
    const other = await register(t)
    const cmdId = (await send(t, deviceId, { cmd: 'reboot' })).json().cmd_id
    const ts = new Date().toISOString()

    await facade.handleAck(other.deviceId, { cmd_id: cmdId, result: 'accepted', ts })
    await facade.handleAck(deviceId, { cmd_id: randomUUID(), result: 'accepted', ts })
    await facade.handleAck(deviceId, { cmd_id: 'not-a-uuid', result: 'accepted', ts })
    assert.equal((await command(t, cmdId)).status, 'sent', "another device's ack changes nothing")

    await facade.handleAck(deviceId, {
      cmd_id: cmdId,
      result: 'unsupported',
      detail: 'no reboot on this model',
      ts,
    })
    const stored = await command(t, cmdId)
    assert.equal(stored.status, 'unsupported')
    assert.equal(stored.detail, 'no reboot on this model')
    await facade.handleAck(deviceId, { cmd_id: cmdId, result: 'accepted', ts })
    assert.equal((await command(t, cmdId)).status, 'unsupported', 'the first result stands')

    const config = (
      await send(t, deviceId, { cmd: 'update_config', params: { sampling_cadence_ms: 500 } })
    ).json()
    await facade.handleAck(deviceId, { cmd_id: config.cmd_id, result: 'accepted', ts })
    assert.equal((await command(t, config.cmd_id)).status, 'accepted')
    const device = (await t.inject({ url: `/api/devices/${deviceId}` })).json()
    assert.equal(device.config.sampling_cadence_ms, 500)
    const history = (await t.inject({ url: `/api/devices/${deviceId}/config-history` })).json()
    assert.equal(history[0].cmd_id, config.cmd_id)
  })

  test('the history is newest first, filtered by status, paged', async () => {
    const { deviceId } = await register(t)
    const ids: string[] = []
    for (const cmd of ['reboot', 'request_status', 'factory_reset'])
      ids.push((await send(t, deviceId, { cmd })).json().cmd_id)
    await ack(t, ids[1] as string, { result: 'rejected' })
    const list = async (query: string) =>
      (await t.inject({ url: `/api/devices/${deviceId}/commands${query}` }))
        .json()
        .map((c: { cmd: string }) => c.cmd)
    assert.deepEqual(await list(''), ['factory_reset', 'request_status', 'reboot'])
    assert.deepEqual(await list('?status=rejected'), ['request_status'])
    assert.deepEqual(await list('?status=sent'), ['factory_reset', 'reboot'])
    assert.deepEqual(await list('?limit=1&offset=1'), ['request_status'])
    const full = (await t.inject({ url: `/api/devices/${deviceId}/commands?limit=1` })).json()[0]
    for (const field of ['cmd_id', 'device_id', 'cmd', 'params', 'status', 'detail', 'ota', 'created_at']) {
      assert.ok(field in full, field)
    }
    for (const field of ['sent_at', 'acked_at', 'updated_at']) assert.ok(field in full, field)
  })

  test('keys: issued at registration, created when missing; rotation signs later commands with the new key', async () => {
    const { deviceId, pk } = await register(t)
    const issued = await t.app.db.selectFrom('device_keys').selectAll().where('device_pk', '=', pk).execute()
    assert.equal(issued.length, 1, 'registration issued a key')

    const first = (await t.inject({ url: `/api/devices/${deviceId}/command-key` })).json()
    assert.equal(first.command_key, issued[0]?.command_key)
    const rotated = await t.inject({ method: 'POST', url: `/api/devices/${deviceId}/command-key/rotate` })
    assert.equal(rotated.statusCode, 200)
    const second = rotated.json()
    assert.match(second.command_key, /^[0-9a-f]{64}$/)
    assert.notEqual(second.command_key, first.command_key)
    assert.ok(second.rotated_at)
    assert.equal(second.created_at, first.created_at)
    assert.equal(
      (await t.inject({ url: `/api/devices/${deviceId}/command-key` })).json().command_key,
      second.command_key,
    )

    const meter = await connectMeter(brokerUrl(t), deviceId)
    try {
      assert.equal((await send(t, deviceId, { cmd: 'reboot' })).statusCode, 201)
      const envelope = await meter.next()
      assert.ok(verifyCommand(envelope, second.command_key))
      assert.equal(verifyCommand(envelope, first.command_key), false, 'the old key no longer verifies')
    } finally {
      await meter.close()
    }

    await t.app.db.deleteFrom('device_keys').where('device_pk', '=', pk).execute()
    const lazy = await t.inject({ url: `/api/devices/${deviceId}/command-key` })
    assert.equal(lazy.statusCode, 200, 'a device without a key gets one on first use')
    assert.match(lazy.json().command_key, /^[0-9a-f]{64}$/)
    assert.equal(lazy.json().rotated_at, null)
  })

  test('OTA: progress is tracked on the command; a hello with the target version confirms it', async () => {
    const { deviceId } = await register(t)
    const res = await send(t, deviceId, { cmd: 'start_ota', params: OTA })
    assert.equal(res.statusCode, 201)
    const cmdId = res.json().cmd_id
    assert.equal(
      (await command(t, cmdId)).params.fw_sha256,
      'ab'.repeat(32),
      'the hash is stored in lower case',
    )
    await facade.handleAck(deviceId, { cmd_id: cmdId, result: 'accepted', ts: new Date().toISOString() })

    const base = Date.now()
    const report = (
      ota_state: 'downloading' | 'verifying' | 'applying' | 'success' | 'failed',
      s: number,
      pct?: number,
    ) => facade.handleOtaStatus(deviceId, { cmd_id: cmdId, ota_state, progress_pct: pct, ts: at(base, s) })
    await report('downloading', 0, 0)
    await report('downloading', 1, 50)
    await report('downloading', 3, 100)
    await report('downloading', 2, 75) // a copy that arrives late: older than the last report
    let ota = (await t.inject({ url: `/api/devices/${deviceId}/ota` })).json()
    assert.equal(ota.cmd_id, cmdId)
    assert.equal(ota.status, 'accepted')
    assert.equal(ota.ota.state, 'downloading')
    assert.equal(ota.ota.progress_pct, 100, 'an older report does not move progress back')
    assert.equal(ota.ota.fw_version_target, '2.1.0')

    await report('verifying', 4)
    await report('applying', 5)
    await facade.handleHello(deviceId, '2.0.0') // the old firmware keeps sending hellos before the reboot
    ota = (await t.inject({ url: `/api/devices/${deviceId}/ota` })).json().ota
    assert.equal(ota.state, 'applying')
    assert.equal(ota.confirmed, undefined)
    assert.deepEqual(
      ota.history.map((h: { state: string }) => h.state),
      ['downloading', 'verifying', 'applying'],
    )

    await facade.handleHello(deviceId, '2.1.0', 3)
    ota = (await t.inject({ url: `/api/devices/${deviceId}/ota` })).json().ota
    assert.equal(ota.state, 'success')
    assert.equal(ota.confirmed, true)
    assert.ok(ota.confirmed_at)
    await report('failed', 9)
    assert.equal((await command(t, cmdId)).ota.state, 'success', 'a finished upgrade stays finished')
    assert.deepEqual(await alertsOf(t, deviceId, 'fw_mismatch'), [])
    assert.deepEqual(await alertsOf(t, deviceId, 'ota_failed'), [])
  })

  test('a failed upgrade raises ota_failed; the first report stands for a missing ack', async () => {
    const { deviceId } = await register(t)
    const cmdId = (await send(t, deviceId, { cmd: 'start_ota', params: OTA })).json().cmd_id
    const other = await register(t)
    const reboot = (await send(t, deviceId, { cmd: 'reboot' })).json().cmd_id
    const ts = new Date().toISOString()

    await facade.handleOtaStatus(other.deviceId, { cmd_id: cmdId, ota_state: 'failed', ts })
    await facade.handleOtaStatus(deviceId, { cmd_id: reboot, ota_state: 'downloading', ts })
    assert.equal((await command(t, cmdId)).ota, null, "another device's report is ignored")
    assert.equal(
      (await command(t, reboot)).ota,
      null,
      'a report for a command other than start_ota is ignored',
    )

    await facade.handleOtaStatus(deviceId, { cmd_id: cmdId, ota_state: 'downloading', progress_pct: 10, ts })
    const downloading = await command(t, cmdId)
    assert.equal(downloading.status, 'accepted')
    assert.match(downloading.detail, /ota_status/)

    await facade.handleOtaStatus(deviceId, {
      cmd_id: cmdId,
      ota_state: 'failed',
      detail: 'sha256 mismatch',
      fw_version_target: '2.1.0',
      ts: new Date(Date.now() + 1000).toISOString(),
    })
    const failed = (await t.inject({ url: `/api/devices/${deviceId}/ota` })).json()
    assert.equal(failed.ota.state, 'failed')
    assert.equal(failed.ota.detail, 'sha256 mismatch')
    assert.equal(failed.ota.progress_pct, 10)
    const alerts = await alertsOf(t, deviceId, 'ota_failed')
    assert.equal(alerts.length, 1)
    assert.equal(alerts[0].severity, 'error')
    assert.equal(alerts[0].details.cmd_id, cmdId)
    assert.match(alerts[0].message, /2\.1\.0.*sha256 mismatch/)
  })

  test('fw_mismatch: another firmware after the upgrade raises an alert, once per version', async () => {
    const rollback = await register(t)
    const cmdId = (await send(t, rollback.deviceId, { cmd: 'start_ota', params: OTA })).json().cmd_id
    const base = Date.now()
    for (const [i, state] of (['downloading', 'verifying', 'applying'] as const).entries()) {
      await facade.handleOtaStatus(rollback.deviceId, { cmd_id: cmdId, ota_state: state, ts: at(base, i) })
    }
    await facade.handleHello(rollback.deviceId, '2.0.0', 3600)
    assert.deepEqual(
      await alertsOf(t, rollback.deviceId, 'fw_mismatch'),
      [],
      'booted before applying: not yet rebooted',
    )
    await facade.handleHello(rollback.deviceId, '2.0.0', 0)
    await facade.handleHello(rollback.deviceId, '2.0.0', 30)
    const alerts = await alertsOf(t, rollback.deviceId, 'fw_mismatch')
    assert.equal(alerts.length, 1)
    assert.equal(alerts[0].severity, 'error')
    assert.equal(alerts[0].occurrences, 1, 'the same version is reported once')
    assert.deepEqual(alerts[0].details, { cmd_id: cmdId, expected: '2.1.0', reported: '2.0.0' })
    const ota = (await command(t, cmdId)).ota
    assert.equal(ota.mismatch_fw_version, '2.0.0')
    assert.equal(ota.confirmed, false)

    const wrong = await register(t)
    const second = (await send(t, wrong.deviceId, { cmd: 'start_ota', params: OTA })).json().cmd_id
    await facade.handleOtaStatus(wrong.deviceId, {
      cmd_id: second,
      ota_state: 'success',
      ts: new Date().toISOString(),
    })
    await facade.handleHello(wrong.deviceId, '9.9.9')
    assert.equal(
      (await alertsOf(t, wrong.deviceId, 'fw_mismatch')).length,
      1,
      'after success, without uptime',
    )
    await facade.handleHello(wrong.deviceId, '2.1.0')
    assert.equal((await command(t, second)).ota.confirmed, true, 'the target version later still confirms')
  })
})

describe('command ack timeout', () => {
  let t: TestApp
  before(async () => {
    t = await build({ COMMAND_ACK_TIMEOUT_S: '1' })
    await brokerConnected(t)
  })
  after(() => t.close())

  test('no ack within COMMAND_ACK_TIMEOUT_S: timeout and a command_timeout alert; a late ack still records', async () => {
    const { deviceId } = await register(t)
    const silent = (await send(t, deviceId, { cmd: 'reboot' })).json()
    const answered = (await send(t, deviceId, { cmd: 'request_status' })).json()
    assert.equal(silent.status, 'sent')
    assert.equal((await ack(t, answered.cmd_id, { result: 'accepted' })).statusCode, 200)

    const timedOut = await eventually(
      () => command(t, silent.cmd_id),
      (c) => c.status === 'timeout',
    )
    assert.match(timedOut.detail, /no acknowledgement within 1 s/)
    assert.equal(timedOut.acked_at, null)
    assert.equal(
      (await command(t, answered.cmd_id)).status,
      'accepted',
      'an answered command does not time out',
    )
    const alerts = await eventually(
      () => alertsOf(t, deviceId, 'command_timeout'),
      (a) => a.length === 1,
    )
    assert.equal(alerts[0].severity, 'warning')
    assert.equal(alerts[0].details.cmd_id, silent.cmd_id)

    const late = await ack(t, silent.cmd_id, { result: 'accepted', detail: 'rebooted' })
    assert.equal(late.statusCode, 200)
    assert.equal(late.json().status, 'accepted')
    assert.match(late.json().detail, /^rebooted; late acknowledgement, after the 1 s timeout$/)
    assert.ok(late.json().acked_at)
  })
})

describe('command outbox', () => {
  test('202 without a broker; the pending command survives a restart and is sent by the next process', async () => {
    const dir = tempDir()
    const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
    const database: Record<string, string> = schema ? { DATABASE_URL: schema.url } : { DATA_DIR: dir.path }
    try {
      const first = await build({ ...database, MQTT_URL: 'mqtt://127.0.0.1:1' }, { inMemoryDb: false })
      let cmdId: string
      let deviceId: string
      try {
        ;({ deviceId } = await register(first))
        const res = await send(first, deviceId, { cmd: 'reboot' })
        assert.equal(res.statusCode, 202)
        assert.equal(res.json().status, 'pending')
        assert.match(res.json().message, /stored/)
        cmdId = res.json().cmd_id
        const stored = await command(first, cmdId)
        assert.equal(stored.status, 'pending')
        assert.equal(stored.sent_at, null)
        const pending = (
          await first.inject({ url: `/api/devices/${deviceId}/commands?status=pending` })
        ).json()
        assert.deepEqual(
          pending.map((c: { cmd_id: string }) => c.cmd_id),
          [cmdId],
        )
      } finally {
        // MqttHub.close() (a graceful end) waits forever for the ingest's subscribe that MQTT.js
        // queued while the broker was down; end these never-connected clients at once.
        await Promise.all(first.app.mqtt.links.map((link) => link.client.endAsync(true)))
        await first.close()
      }

      const second = await build(database, { inMemoryDb: false })
      try {
        const sent = await eventually(
          () => command(second, cmdId),
          (c) => c.status === 'sent',
        )
        assert.ok(sent.sent_at)
      } finally {
        await second.close()
      }
    } finally {
      await schema?.drop()
      dir.remove()
    }
  })

  test('a command waits in the outbox while the broker is down and reaches the meter once it is back', async () => {
    const dir = tempDir('iot-meter-mosquitto-')
    const port = await freePort()
    const url = `mqtt://127.0.0.1:${port}`
    const deviceId = uniqueName('cmd')
    // The meter's persistent session exists on the broker before it goes down, as a real meter's would.
    let broker = await startMosquitto(port, dir.path)
    await (await connectMeter(url, deviceId, false)).close()
    await broker.stop()

    const t = await build({ MQTT_URL: url })
    try {
      await t.inject({
        method: 'POST',
        url: '/api/devices',
        payload: { device_id: deviceId, device_name: 'M' },
      })
      const res = await send(t, deviceId, { cmd: 'request_status' })
      assert.equal(res.statusCode, 202)
      const cmdId = res.json().cmd_id

      broker = await startMosquitto(port, dir.path)
      await eventually(
        () => command(t, cmdId),
        (c) => c.status === 'sent',
      )
      const meter = await connectMeter(url, deviceId, false)
      try {
        const envelope = await meter.next()
        assert.equal(envelope.cmd_id, cmdId)
        const key = (await t.inject({ url: `/api/devices/${deviceId}/command-key` })).json().command_key
        assert.ok(verifyCommand(envelope, key))
      } finally {
        await meter.close()
      }
    } finally {
      await t.close()
      await broker.stop()
      dir.remove()
    }
  })
})
