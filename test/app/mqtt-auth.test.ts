import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import {
  connectDevice,
  dcTelemetry,
  metricValue,
  publishJson,
  registerDevice,
  waitFor,
} from '../helpers/device.ts'
import { realMqttUrl, tempDir, uniqueName } from '../helpers/env.ts'

/**
 * Device authentication and topic isolation of the embedded broker (MQTT_DEVICE_AUTH token / mtls),
 * and the per-device ingest rate limit. The broker tests need the embedded aedes: against an
 * external broker (TEST_MQTT_URL) the broker's own configuration decides (deploy/mosquitto).
 */
const embeddedOnly = realMqttUrl
  ? "external broker (TEST_MQTT_URL): authentication is the external broker's, see deploy/mosquitto"
  : false

const T0 = Date.now() - 600_000

/** Connects like a meter would; resolves with the client or rejects with the CONNACK's code. */
function connect(url: string, options: IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clean: true, protocolVersion: 4, reconnectPeriod: 0, ...options })
}

/** The CONNACK return code of a refused connection (or the error's message when none came). */
async function refusal(url: string, options: IClientOptions): Promise<number | string> {
  try {
    const client = await connect(url, options)
    await client.endAsync()
  } catch (error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'number' ? code : (error as Error).message
  }
  return 'connected'
}

/** The QoS the broker granted (128 = refused; MQTT.js rejects then, with the SUBACK attached). */
async function granted(client: MqttClient, topic: string, qos: 0 | 1 | 2): Promise<number | undefined> {
  try {
    return (await client.subscribeAsync(topic, { qos }))[0]?.qos
  } catch (error) {
    const packet = (error as { packet?: { granted?: number[] } }).packet
    if (!packet?.granted) throw error
    return packet.granted[0]
  }
}

const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once('close', () => resolve()))

async function rotate(t: TestApp, deviceId: string): Promise<{ username: string; password: string }> {
  const res = await t.inject({ method: 'POST', url: `/api/devices/${deviceId}/mqtt-secret/rotate` })
  assert.equal(res.statusCode, 200, res.body)
  const body = res.json()
  assert.equal(body.device_id, deviceId)
  assert.equal(body.username, deviceId)
  return body
}

const storedPoints = async (t: TestApp, deviceId: string) =>
  (
    await t.inject({
      url: `/api/devices/${deviceId}/metrics?metric=voltage_dc&start=${new Date(T0 - 86400_000).toISOString()}&stop=now()`,
    })
  ).json() as unknown[]

const denied = (t: TestApp, action: string) => metricValue(t, 'mqtt_denied_total', `action="${action}"`)

describe('embedded broker, MQTT_DEVICE_AUTH=token', { skip: embeddedOnly }, () => {
  let t: TestApp
  let url: string
  before(async () => {
    // Refusals answered at once here; their delay and the per-address limit: mqtt-auth-failures.test.ts.
    t = await build({ MQTT_DEVICE_AUTH: 'token', MQTT_AUTH_FAIL_DELAY_MS: '0', INGEST_FLUSH_MS: '50' })
    url = brokerUrl(t)
    await waitFor(() => t.app.mqtt.connectedCount() > 0, 10000, 'the server client connected')
  })
  after(() => t.close())

  const provisioned = async () => {
    const id = uniqueName('dev')
    await registerDevice(t, id)
    return { id, ...(await rotate(t, id)) }
  }

  test('good credentials connect; the telemetry is stored; the password is stored only as SHA-256', async () => {
    const { id, password } = await provisioned()
    const device = await connect(url, { clientId: id, username: id, password })
    try {
      await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, 0, T0, 3))
      await waitFor(async () => (await storedPoints(t, id)).length === 3, 10000, 'telemetry stored')
    } finally {
      await device.endAsync()
    }
    const rows = await sql<{ secret_hash: string }>`
      select s.secret_hash from device_secrets s join devices d on d.id = s.device_pk
      where d.device_id = ${id}`.execute(t.app.db)
    assert.match(rows.rows[0]?.secret_hash ?? '', /^[0-9a-f]{64}$/)
    assert.ok(!rows.rows[0]?.secret_hash.includes(password))
  })

  test('a registered but never rotated device, wrong passwords, unknown devices and missing credentials are refused at CONNECT', async () => {
    const { id, password } = await provisioned()
    const fresh = uniqueName('dev')
    await registerDevice(t, fresh)
    const before = await denied(t, 'connect')
    assert.equal(await refusal(url, { clientId: fresh, username: fresh, password: 'x'.repeat(43) }), 4)
    assert.equal(await refusal(url, { clientId: id, username: id, password: `${password}x` }), 4)
    assert.equal(await refusal(url, { clientId: 'nobody_here', username: 'nobody_here', password }), 4)
    assert.equal(await refusal(url, { clientId: id }), 4, 'anonymous')
    // Another device's valid credential under a different client id (session takeover) is refused.
    assert.equal(await refusal(url, { clientId: uniqueName('other'), username: id, password }), 5)
    // The server's client id is reserved for the process-local credential.
    assert.equal(await refusal(url, { clientId: t.config.MQTT_CLIENT_ID, username: id, password }), 5)
    assert.equal(await denied(t, 'connect'), before + 6)
  })

  test('rotation revokes the old password and closes the live session; revoking locks the device out', async () => {
    const { id, password: first } = await provisioned()
    const device = await connect(url, { clientId: id, username: id, password: first })
    const gone = closed(device)
    const { password: second } = await rotate(t, id)
    await gone
    device.end(true)
    assert.notEqual(first, second)
    assert.equal(await refusal(url, { clientId: id, username: id, password: first }), 4)
    const again = await connect(url, { clientId: id, username: id, password: second })
    await again.endAsync()
    const res = await t.inject({ method: 'DELETE', url: `/api/devices/${id}/mqtt-secret` })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(await refusal(url, { clientId: id, username: id, password: second }), 4)
    assert.equal(
      (await t.inject({ method: 'POST', url: '/api/devices/nope/mqtt-secret/rotate' })).statusCode,
      404,
    )
  })

  test('a deleted device is disconnected and refused at once, although its secret was just checked (and cached)', async () => {
    const { id, password } = await provisioned()
    const device = await connect(url, { clientId: id, username: id, password })
    const gone = closed(device)
    const res = await t.inject({ method: 'DELETE', url: `/api/devices/${id}` })
    assert.equal(res.statusCode, 200, res.body)
    await gone // its live session ends with the device
    device.end(true)
    assert.equal(await refusal(url, { clientId: id, username: id, password }), 4)
  })

  test("a publish to another device's topic is dropped, counted and stores nothing; so is a foreign will", async () => {
    const a = await provisioned()
    const b = await provisioned()
    const before = await denied(t, 'publish')
    const device = await connect(url, { clientId: a.id, username: a.id, password: a.password })
    const gone = closed(device)
    device.publish(`iot/${b.id}/telemetry`, JSON.stringify(dcTelemetry(b.id, 0, T0, 2)), { qos: 1 })
    await gone // aedes drops the message unacknowledged and closes the connection
    device.end(true)
    await waitFor(async () => (await denied(t, 'publish')) === before + 1, 5000, 'publish denial counted')

    // The will (LWT) is checked too: a will on another device's status topic never fires.
    const wills = await denied(t, 'will')
    const liar = await connect(url, {
      clientId: a.id,
      username: a.id,
      password: a.password,
      will: {
        topic: `iot/${b.id}/status`,
        payload: Buffer.from('{"status":"offline"}'),
        qos: 1,
        retain: true,
      },
    })
    liar.stream.destroy() // abnormal loss: the broker publishes the will
    liar.end(true)
    await waitFor(async () => (await denied(t, 'will')) === wills + 1, 5000, 'will denial counted')

    await new Promise((r) => setTimeout(r, 300))
    assert.equal((await storedPoints(t, b.id)).length, 0)
    const status = (await t.inject({ url: `/api/devices/${b.id}` })).json()
    assert.equal(status.last_seen, null, 'nothing of b was seen')
  })

  test("subscribing to another device's command topic is refused (128); its own is granted", async () => {
    const a = await provisioned()
    const b = await provisioned()
    const device = await connect(url, { clientId: a.id, username: a.id, password: a.password })
    try {
      const before = await denied(t, 'subscribe')
      assert.equal(await granted(device, `iot/${b.id}/command`, 2), 128)
      assert.equal(await granted(device, 'iot/+/command', 2), 128)
      assert.equal(await granted(device, `iot/${a.id}/command`, 2), 2)
      assert.equal(await denied(t, 'subscribe'), before + 2)
      assert.ok(device.connected, 'a refused subscription does not close the connection')
    } finally {
      await device.endAsync()
    }
  })

  test("the server's own client still works: a command sent through the API reaches the device", async () => {
    const { id, password } = await provisioned()
    const device = await connect(url, { clientId: id, username: id, password })
    try {
      await device.subscribeAsync(`iot/${id}/command`, { qos: 2 })
      const received = new Promise<Record<string, unknown>>((resolve) =>
        device.once('message', (_topic, payload) => resolve(JSON.parse(payload.toString()))),
      )
      const res = await t.inject({
        method: 'POST',
        url: `/api/devices/${id}/commands`,
        payload: { cmd: 'request_status' },
      })
      assert.ok([201, 202].includes(res.statusCode), res.body)
      const command = await received
      assert.equal(command.cmd, 'request_status')
      assert.equal(command.cmd_id, res.json().cmd_id)
    } finally {
      await device.endAsync()
    }
  })
})

describe('simulator in plugin mode with MQTT_DEVICE_AUTH=token', { skip: embeddedOnly }, () => {
  test('its meters get secrets at start and their data is stored', async () => {
    const prefix = uniqueName('simauth').replace(/_/g, '-')
    const t = await build({
      MQTT_DEVICE_AUTH: 'token',
      SIMULATOR_ENABLED: 'true',
      SIMULATOR_DEVICES: '2',
      SIMULATOR_SEND_INTERVAL_S: '1',
      SIMULATOR_ID_PREFIX: prefix,
      INGEST_FLUSH_MS: '50',
    })
    try {
      await waitFor(
        async () => {
          const r = await sql<{ n: number }>`
            select count(*)::int as n from devices
            where device_id like ${`${prefix}-%`} and last_seen is not null`.execute(t.app.db)
          return Number(r.rows[0]?.n) === 2
        },
        15000,
        'both simulated meters seen',
      )
      assert.equal(await denied(t, 'connect'), 0)
    } finally {
      await t.close()
    }
  })
})

/** A CA, the broker's certificate (127.0.0.1) and device certificates, made with openssl. */
function makeCertificates(dir: string, deviceCns: string[]) {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-ca')
  const sign = (name: string, cn: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext)
    ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    )
  }
  sign('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  deviceCns.forEach((cn, i) => {
    sign(`device${i}`, cn, 'extendedKeyUsage=clientAuth\n')
  })
  const file = (name: string) => join(dir, name)
  return { file }
}

describe('embedded broker, MQTT_DEVICE_AUTH=mtls', { skip: embeddedOnly }, () => {
  const dir = tempDir('iot-meter-mtls-')
  const deviceId = uniqueName('cert')
  const otherId = uniqueName('cert')
  let t: TestApp
  let certs: ReturnType<typeof makeCertificates>
  let tlsUrl: string
  before(async () => {
    certs = makeCertificates(dir.path, [deviceId, otherId])
    t = await build({
      MQTT_DEVICE_AUTH: 'mtls',
      MQTT_AUTH_FAIL_DELAY_MS: '0',
      MQTT_TLS_PORT: '0',
      MQTT_TLS_CERT: certs.file('server.pem'),
      MQTT_TLS_KEY: certs.file('server.key'),
      MQTT_TLS_CA: certs.file('ca.pem'),
      INGEST_FLUSH_MS: '50',
    })
    tlsUrl = `mqtts://127.0.0.1:${t.app.brokerTlsPort}`
    await registerDevice(t, deviceId)
    await registerDevice(t, otherId)
    await waitFor(() => t.app.mqtt.connectedCount() > 0, 10000, 'the server client connected')
  })
  after(async () => {
    await t?.close()
    dir.remove()
  })

  const tlsOptions = (index: number) => ({
    ca: certs.file('ca.pem'),
    cert: certs.file(`device${index}.pem`),
    key: certs.file(`device${index}.key`),
  })
  const read = (options: { ca: string; cert: string; key: string }) => ({
    ca: readFileSync(options.ca),
    cert: readFileSync(options.cert),
    key: readFileSync(options.key),
  })

  test('a certificate whose CN is the device id connects, publishes and its telemetry is stored', async () => {
    const device = await connect(tlsUrl, { clientId: deviceId, ...read(tlsOptions(0)) })
    try {
      await publishJson(device, `iot/${deviceId}/telemetry`, dcTelemetry(deviceId, 0, T0, 2))
      await waitFor(async () => (await storedPoints(t, deviceId)).length === 2, 10000, 'telemetry stored')
      const foreign = await granted(device, `iot/${otherId}/command`, 1)
      assert.equal(foreign, 128, 'the ACL applies to certificate identities too')
      assert.equal(await granted(device, `iot/${deviceId}/command`, 1), 1)
    } finally {
      await device.endAsync()
    }
  })

  test('a CN that is not the client id, no certificate, or plain TCP are refused', async () => {
    const { ca, cert, key } = read(tlsOptions(1))
    assert.equal(await refusal(tlsUrl, { clientId: deviceId, ca, cert, key }), 5, 'CN mismatch')
    const noCert = await refusal(tlsUrl, { clientId: deviceId, ca })
    assert.notEqual(noCert, 'connected', 'the TLS handshake needs a client certificate')
    assert.equal(
      await refusal(brokerUrl(t), { clientId: deviceId, username: deviceId, password: 'x' }),
      5,
      'devices must use the TLS listener',
    )
    assert.ok(t.app.mqtt.connectedCount() > 0, "the server's own client is on the plain listener")
  })
})

describe('per-device ingest rate limit (INGEST_DEVICE_RATE_MAX)', () => {
  let t: TestApp
  let device: MqttClient
  before(async () => {
    t = await build({ INGEST_DEVICE_RATE_MAX: '5', INGEST_FLUSH_MS: '50' })
    device = await connectDevice(brokerUrl(t), uniqueName('probe'))
    if (t.config.MQTT_URL) {
      const id = uniqueName('warmup')
      await registerDevice(t, id)
      let seq = 0
      await waitFor(
        async () => {
          await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, seq++, T0, 1))
          return (await storedPoints(t, id)).length > 0
        },
        15000,
        'server subscription',
      )
    }
  })
  after(async () => {
    await device.endAsync()
    await t.close()
  })

  test('a burst beyond the rate is dropped and counted; the rest is stored', async () => {
    const id = uniqueName('flood')
    await registerDevice(t, id)
    const before = await metricValue(t, 'ingest_rejected_total', 'reason="rate_limited"')
    const burst = 40
    await Promise.all(
      Array.from({ length: burst }, (_, seq) =>
        publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, seq, T0 + seq * 1000, 1), 1),
      ),
    )
    let outcome = { n: 0, stored: 0 }
    await waitFor(async () => {
      const n = (await metricValue(t, 'ingest_rejected_total', 'reason="rate_limited"')) - before
      outcome = { n, stored: (await storedPoints(t, id)).length }
      return n + outcome.stored >= burst && outcome.stored >= 5
    }, 30000).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(outcome)}`)
    })
    // On a shared external broker this server also receives other suites' devices (a simulated
    // fleet's burst, say), and the counter has no device label: their drops count too.
    if (t.config.MQTT_URL) assert.ok(outcome.n + outcome.stored >= burst, JSON.stringify(outcome))
    else assert.equal(outcome.n + outcome.stored, burst, JSON.stringify(outcome))
    assert.ok(outcome.stored >= 5 && outcome.stored <= 10, `stored ${outcome.stored}`)
    assert.ok(outcome.n >= burst - 10, `rejected ${outcome.n}`)
  })
})
