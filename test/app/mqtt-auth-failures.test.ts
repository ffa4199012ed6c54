import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { createConnection } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { type IClientOptions, MqttClient } from 'mqtt'
import { DeviceSecrets, HashCache } from '../../src/modules/device-auth/index.ts'
import { DevicesService } from '../../src/modules/devices/index.ts'
import { addressKey, FailureWindows } from '../../src/platform/mqtt/failure-windows.ts'
import { LogBudget } from '../../src/platform/mqtt/log-budget.ts'
import { RefusalDelay } from '../../src/platform/mqtt/refusal-delay.ts'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import { dcTelemetry, metricValue, publishJson, registerDevice, waitFor } from '../helpers/device.ts'
import { realMqttUrl, uniqueName } from '../helpers/env.ts'

/**
 * What a failed CONNECT costs on the embedded broker (MQTT_AUTH_FAIL_*): the delayed refusal, the
 * per-address failure limit (refused before any credential lookup), and the bounded credential
 * cache under forged device ids. The broker tests need the embedded aedes.
 */
const embeddedOnly = realMqttUrl
  ? "external broker (TEST_MQTT_URL): authentication is the external broker's, see deploy/mosquitto"
  : false

const DELAY_MS = 600
const LIMIT = 3
const T0 = Date.now() - 600_000

/** Connects from `localAddress` (any 127.x.y.z is this host); resolves the client or the CONNACK's code. */
function connectFrom(url: string, localAddress: string, options: IClientOptions): Promise<MqttClient> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const client = new MqttClient(
      () => createConnection({ host: hostname, port: Number(port), localAddress }),
      {
        clean: true,
        protocolVersion: 4,
        reconnectPeriod: 0,
        ...options,
      },
    )
    client.once('connect', () => resolve(client))
    client.once('error', (error) => {
      client.end(true)
      reject(error)
    })
  })
}

/** The CONNACK code of a refusal (or 'connected') and how long the answer took. */
async function attempt(url: string, options: IClientOptions, localAddress = '127.0.0.1') {
  const start = performance.now()
  try {
    const client = await connectFrom(url, localAddress, options)
    const ms = performance.now() - start
    await client.endAsync()
    return { code: 'connected' as const, ms }
  } catch (error) {
    const code = (error as { code?: unknown }).code
    return { code: typeof code === 'number' ? code : String(error), ms: performance.now() - start }
  }
}

const denied = (t: TestApp) => metricValue(t, 'mqtt_denied_total', 'action="connect"')
const blocked = (t: TestApp, by: 'address' | 'device') =>
  metricValue(t, 'mqtt_connect_blocked_total', `by="${by}"`)

describe('failed CONNECTs on the embedded broker (MQTT_AUTH_FAIL_*)', { skip: embeddedOnly }, () => {
  let t: TestApp
  let url: string
  let lookups = 0
  before(async () => {
    t = await build({
      MQTT_DEVICE_AUTH: 'token',
      MQTT_AUTH_FAIL_DELAY_MS: String(DELAY_MS),
      MQTT_AUTH_FAIL_MAX: String(LIMIT),
      MQTT_AUTH_FAIL_WINDOW_MS: '600000',
      INGEST_FLUSH_MS: '50',
    })
    url = brokerUrl(t)
    await waitFor(() => t.app.mqtt.connectedCount() > 0, 10000, 'the server client connected')
    // The same registry check the app installs, counting the lookups the broker asks for.
    const secrets = new DeviceSecrets(t.app.db, new DevicesService(t.app.db))
    t.app.brokerAuth?.setCredentialCheck({
      verifySecret: (deviceId, password) => {
        lookups++
        return secrets.verify(deviceId, password)
      },
      isRegistered: (deviceId) => secrets.isRegistered(deviceId),
    })
  })
  after(() => t.close())

  const provisioned = async () => {
    const id = uniqueName('dev')
    await registerDevice(t, id)
    const res = await t.inject({ method: 'POST', url: `/api/devices/${id}/mqtt-secret/rotate` })
    assert.equal(res.statusCode, 200, res.body)
    return { id, password: (res.json() as { password: string }).password }
  }

  test('a refused CONNECT is answered only after the delay; a good one at once; after the limit the address is refused unchecked', async () => {
    const a = await provisioned()
    const b = await provisioned()
    const good = await attempt(url, { clientId: a.id, username: a.id, password: a.password })
    assert.equal(good.code, 'connected')
    assert.ok(good.ms < DELAY_MS, `a success is not delayed (${good.ms.toFixed(0)} ms)`)

    const connected = await connectFrom(url, '127.0.0.1', {
      clientId: a.id,
      username: a.id,
      password: a.password,
    })
    try {
      const denied0 = await denied(t)
      const blocked0 = await blocked(t, 'address')
      const lookups0 = lookups
      for (let i = 0; i < LIMIT; i++) {
        const bad = await attempt(url, { clientId: b.id, username: b.id, password: `${b.password}x` })
        assert.equal(bad.code, 4)
        assert.ok(bad.ms >= DELAY_MS - 5, `refusal ${i} answered after ${bad.ms.toFixed(0)} ms`)
      }
      assert.equal(lookups - lookups0, LIMIT, 'each failure below the limit was checked')

      // The address used up its failures: even the right password is refused, unchecked and delayed.
      const refused = await attempt(url, { clientId: b.id, username: b.id, password: b.password })
      assert.equal(refused.code, 5)
      assert.ok(refused.ms >= DELAY_MS - 5, `answered after ${refused.ms.toFixed(0)} ms`)
      assert.equal(lookups - lookups0, LIMIT, 'no credential lookup for a blocked address')
      assert.equal(await denied(t), denied0 + LIMIT + 1, 'counted in mqtt_denied_total{action="connect"}')
      assert.equal(await blocked(t, 'address'), blocked0 + 1)

      // Another address is not affected: the same device connects from 127.0.0.2.
      const other = await attempt(url, { clientId: b.id, username: b.id, password: b.password }, '127.0.0.2')
      assert.equal(other.code, 'connected')

      // A device connected before keeps its session and publishes.
      assert.ok(connected.connected)
      await publishJson(connected, `iot/${a.id}/telemetry`, dcTelemetry(a.id, 0, T0, 1), 1)
    } finally {
      await connected.endAsync()
    }
    assert.equal(t.app.brokerAuth?.refusalState.held, 0, 'no refusal left held')
  })

  test('a blocked address (other than the loopback the server uses) is closed at accept, before any MQTT', async () => {
    const id = uniqueName('nobody')
    for (let i = 0; i < LIMIT; i++) {
      const bad = await attempt(url, { clientId: id, username: id, password: 'x' }, '127.0.0.3')
      assert.equal(bad.code, 4)
    }
    const blocked0 = await blocked(t, 'address')
    const denied0 = await denied(t)
    // A raw TCP connection from the blocked address: closed at once, nothing read, no CONNACK.
    const { hostname, port } = new URL(url)
    const started = performance.now()
    const outcome = await new Promise<{ bytes: number }>((resolve) => {
      let bytes = 0
      const socket = createConnection({ host: hostname, port: Number(port), localAddress: '127.0.0.3' })
      socket.on('data', (chunk) => {
        bytes += chunk.length
      })
      socket.on('error', () => undefined)
      socket.on('close', () => resolve({ bytes }))
    })
    assert.equal(outcome.bytes, 0, 'no CONNACK')
    assert.ok(performance.now() - started < DELAY_MS, 'closed at once, not held for the delay')
    await waitFor(async () => (await blocked(t, 'address')) === blocked0 + 1, 5000, 'counted as blocked')
    assert.equal(await denied(t), denied0, 'no MQTT refusal: aedes never saw it')
    // Others are not affected.
    const b = await provisioned()
    const other = await attempt(url, { clientId: b.id, username: b.id, password: b.password }, '127.0.0.2')
    assert.equal(other.code, 'connected')
  })

  test("the server's own client reconnects from the blocked loopback address", async () => {
    const id = uniqueName('nobody')
    // Whatever the previous test left, make sure 127.0.0.1 is over its limit.
    for (let i = 0; i <= LIMIT; i++) await attempt(url, { clientId: id, username: id, password: 'x' })
    assert.equal((await attempt(url, { clientId: id, username: id, password: 'x' })).code, 5)
    const server = t.app.embeddedBroker?.aedes as unknown as { clients: Record<string, { close(): void }> }
    const own = server.clients[t.config.MQTT_CLIENT_ID]
    assert.ok(own, "the server's client is connected")
    own.close()
    await waitFor(() => t.app.mqtt.connectedCount() === 0, 5000, 'the server client dropped')
    await waitFor(() => t.app.mqtt.connectedCount() > 0, 10000, 'the server client reconnected')
    assert.equal((await t.inject({ url: '/readyz' })).statusCode, 200)
  })

  test('a device closed again and again for forbidden publishes is refused at CONNECT, from any address', async () => {
    const c = await provisioned()
    const d = await provisioned()
    const credentials = { clientId: c.id, username: c.id, password: c.password }
    for (let i = 0; i < LIMIT; i++) {
      const device = await connectFrom(url, '127.0.0.4', credentials)
      const gone = new Promise<void>((resolve) => device.once('close', () => resolve()))
      device.publish(`iot/${d.id}/telemetry`, JSON.stringify(dcTelemetry(d.id, i, T0, 1)), { qos: 1 })
      await gone
      device.end(true)
    }
    const blocked0 = await blocked(t, 'device')
    const lookups0 = lookups
    assert.equal((await attempt(url, credentials, '127.0.0.5')).code, 5)
    assert.equal(lookups, lookups0, 'refused before its credentials were looked up')
    assert.equal(await blocked(t, 'device'), blocked0 + 1)
    // Its neighbour on the same address is not affected (the address had no refused CONNECT).
    const neighbour = await attempt(
      url,
      { clientId: d.id, username: d.id, password: d.password },
      '127.0.0.4',
    )
    assert.equal(neighbour.code, 'connected')
    assert.equal(t.app.brokerAuth?.refusalState.devices, 1)
  })

  test('the credential cache stays bounded under forged ids and keeps the fleet', async () => {
    const cache = new HashCache({ max: 50, hitTtlMs: 60_000, missTtlMs: 60_000 })
    const secrets = new DeviceSecrets(t.app.db, new DevicesService(t.app.db), cache)
    const a = await provisioned()
    assert.equal(await secrets.verify(a.id, a.password), true)
    for (let i = 0; i < 500; i++) assert.equal(await secrets.verify(`forged_${i}`, 'guess'), false)
    assert.ok(cache.size <= 51, `${cache.size} entries`)
    // The fleet's entry survived the forged ids: it answers without the database (whose row is gone).
    await sql`delete from device_secrets where device_pk = (select id from devices where device_id = ${a.id})`.execute(
      t.app.db,
    )
    assert.equal(await secrets.verify(a.id, a.password), true, 'answered from the cache')
    secrets.forget(a.id)
    assert.equal(await secrets.verify(a.id, a.password), false, 'forgotten: read again')
  })
})

describe('refusal delay, failure windows, log budget (units)', () => {
  test('held refusals are bounded: beyond maxHeld they are answered at once; a hang-up releases early', async () => {
    const delay = new RefusalDelay(300, 2)
    const answered: number[] = []
    const start = performance.now()
    const conns = [new EventEmitter(), new EventEmitter(), new EventEmitter()]
    conns.forEach((conn, i) => {
      delay.hold(conn, () => answered.push(i))
    })
    assert.deepEqual(answered, [2], 'the third is answered at once')
    assert.equal(delay.held, 2)
    conns[0]?.emit('close')
    assert.deepEqual(answered, [2, 0], 'a closed connection is released at once')
    await waitFor(() => answered.length === 3, 2000)
    assert.ok(performance.now() - start >= 295)
    assert.equal(delay.held, 0)
    const off = new RefusalDelay(0, 10)
    off.hold(new EventEmitter(), () => answered.push(9))
    assert.equal(answered.at(-1), 9, '0 = off')
  })

  test('an address is blocked after max failures until its window ends; memory stays bounded under many addresses', () => {
    let now = 0
    const failures = new FailureWindows(3, 1000, { maxKeys: 100, keyOf: addressKey, now: () => now })
    for (let i = 0; i < 3; i++) {
      assert.equal(failures.blocked('10.0.0.1'), false)
      failures.record('10.0.0.1')
    }
    assert.equal(failures.blocked('10.0.0.1'), true)
    assert.equal(failures.blocked('::ffff:10.0.0.1'), true, 'IPv4-mapped is the same address')
    assert.equal(failures.blocked('10.0.0.2'), false)
    now = 1000
    assert.equal(failures.blocked('10.0.0.1'), false, 'the window passed')

    for (let i = 0; i < 3; i++) failures.record(`2001:db8:0:1::${i.toString(16)}`)
    assert.equal(failures.blocked('2001:db8:0:1:ffff::9'), true, 'IPv6 counts per /64')
    assert.equal(failures.blocked('2001:db8:0:2::1'), false)

    for (let i = 0; i < 20_000; i++) failures.record(randomBytes(4).join('.'))
    assert.ok(failures.size <= 100, `${failures.size} addresses tracked`)
    assert.equal(new FailureWindows(0, 1000).blocked('10.0.0.1'), false)
    assert.equal(addressKey('2001:db8::1:2:3:4:5'), '2001:db8:0:1::/64')
  })

  test('refusal logs: at most perWindow lines, the rest summed up when the window ends', async () => {
    const summaries: number[] = []
    const budget = new LogBudget(2, 100, (n) => summaries.push(n))
    const taken = Array.from({ length: 5 }, () => budget.take())
    assert.deepEqual(taken, [true, true, false, false, false])
    await waitFor(() => summaries.length === 1, 2000)
    assert.deepEqual(summaries, [3])
    assert.equal(budget.take(), true, 'a new window')
  })
})
