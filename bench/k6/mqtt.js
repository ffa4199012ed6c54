// k6 load test of the IoT Meter ingest over MQTT: every VU is one DC power meter that speaks
// protocol v2 (PROTOCOL.md): retained status online with an offline will, then a telemetry
// datagram of SAMPLES samples (voltage_dc, current_dc) every SEND_INTERVAL_S, QoS 2, seq +1
// per message, published to every broker of BROKERS like a real meter.
//
// Needs a k6 built with the MQTT extension github.com/grafana/xk6-mqtt (module k6/x/mqtt; written
// against its v0.2 API), see bench/k6/README.md:
//   xk6 build --with github.com/grafana/xk6-mqtt
//   ./k6 run -e BROKERS=mqtt://broker:1883 -e BASE_URL=http://iot-meter:8080 bench/k6/mqtt.js
//
// setup() registers the meters through the HTTP API with an admin bearer token API_TOKEN (skip with
// REGISTER=false when the server runs with UNKNOWN_DEVICE_POLICY=auto_register); teardown() deletes them.
import { fail, sleep } from 'k6'
import http from 'k6/http'
import { Counter } from 'k6/metrics'
import { Client } from 'k6/x/mqtt'

const BROKERS = (__ENV.BROKERS || 'mqtt://localhost:1883').split(',').map((s) => s.trim())
const BASE_URL = (__ENV.BASE_URL || 'http://localhost:8080').replace(/\/$/, '')
const REGISTER = (__ENV.REGISTER || 'true') !== 'false'
const API_TOKEN = __ENV.API_TOKEN || ''
const PREFIX = __ENV.DEVICE_PREFIX || 'k6-meter'
// Meters (VUs) at the peak; the stages ramp up to it, hold, and ramp down.
const PEAK_VUS = Number(__ENV.PEAK_VUS || 100)
const STAGE = __ENV.STAGE || '2m'
const SEND_INTERVAL_S = Number(__ENV.SEND_INTERVAL_S || 10)
// Samples per datagram: 10 samples × 2 types = 20 measurements, the protocol's default datagram.
const SAMPLES = Number(__ENV.SAMPLES || 10)
// One MQTT session per iteration; the next iteration reconnects with the same client id.
const SESSION_S = Number(__ENV.SESSION_S || 60)
// Broker credentials: the user name is the device id (deploy/mosquitto/acl). Either one password for
// every load-test meter, or a JSON file {"k6-meter-00001": "secret", ...} of one per meter (the
// embedded broker's MQTT_DEVICE_AUTH=token wants each device's own token). open() works in init only.
const DEVICE_PASSWORD = __ENV.DEVICE_PASSWORD || ''
const DEVICE_CREDENTIALS = __ENV.DEVICE_CREDENTIALS ? JSON.parse(open(__ENV.DEVICE_CREDENTIALS)) : {}

export const options = {
  scenarios: {
    meters: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: STAGE, target: Math.max(1, Math.round(PEAK_VUS / 5)) },
        { duration: STAGE, target: PEAK_VUS },
        { duration: STAGE, target: PEAK_VUS },
        { duration: STAGE, target: 0 },
      ],
      // A ramped-down VU finishes its session (SESSION_S) before it stops.
      gracefulRampDown: `${SESSION_S + 10}s`,
      gracefulStop: `${SESSION_S + 10}s`,
    },
  },
  thresholds: {
    // Metrics of xk6-mqtt: no failed operation.
    mqtt_errors: ['count==0'],
    meter_datagrams_published: ['count>0'],
  },
}

const datagrams = new Counter('meter_datagrams_published')
const publishErrors = new Counter('meter_publish_errors')

const deviceId = (vu) => `${PREFIX}-${String(vu).padStart(5, '0')}`
const auth = API_TOKEN ? { authorization: `Bearer ${API_TOKEN}` } : {}

export function setup() {
  if (!REGISTER) return
  for (let vu = 1; vu <= PEAK_VUS; vu++) {
    const body = { device_id: deviceId(vu), device_name: `k6 meter ${vu}`, device_type: 'power_meter_dc' }
    const r = http.post(`${BASE_URL}/api/devices`, JSON.stringify(body), {
      headers: { ...auth, 'content-type': 'application/json' },
    })
    if (r.status === 401 || r.status === 403)
      fail(`registering: ${r.status}: pass an admin token as API_TOKEN`)
    if (r.status !== 201 && r.status !== 409) fail(`registering ${body.device_id}: ${r.status} ${r.body}`)
  }
}

// Module scope lives as long as the VU: seq keeps counting across sessions (a reconnect is not a reboot).
let seq = 0

function telemetry(id) {
  const now = Date.now()
  const measurements = []
  for (let i = SAMPLES - 1; i >= 0; i--) {
    const ts = new Date(now - i * Math.round((SEND_INTERVAL_S * 1000) / SAMPLES)).toISOString()
    // A 750 V tram line: voltage 650–850 V; current negative while braking with regeneration.
    measurements.push({ ts, type: 'voltage_dc', val: Math.round(650 + Math.random() * 200), unit: 'V' })
    measurements.push({ ts, type: 'current_dc', val: Math.round(-300 + Math.random() * 1500), unit: 'A' })
  }
  const message = {
    v: 2,
    device_id: id,
    ts: new Date(now).toISOString(),
    seq: seq,
    msg_type: 'telemetry',
    measurements,
  }
  seq = (seq + 1) % 2 ** 32
  return JSON.stringify(message)
}

function status(id, value) {
  return JSON.stringify({ v: 2, device_id: id, ts: new Date().toISOString(), status: value })
}

export default function () {
  const id = deviceId(__VU)
  const topic = (kind) => `iot/${id}/${kind}`
  // One connection per broker, all with the device id as client id, as a multi-broker meter does.
  const clientOptions = {
    client_id: id,
    will: { topic: topic('status'), payload: status(id, 'offline'), qos: 1, retain: true },
  }
  const password = DEVICE_CREDENTIALS[id] || DEVICE_PASSWORD
  if (password) Object.assign(clientOptions, { username: id, password })
  const clients = BROKERS.map(() => new Client(clientOptions))
  let connected = 0
  let timer

  function publishAll(kind, payload, qos, retain) {
    for (const client of clients) {
      client.publishAsync(topic(kind), payload, { qos, retain }).catch((error) => {
        publishErrors.add(1)
        console.warn(`${id}: publish ${kind} failed: ${error.message}`)
      })
    }
  }

  clients.forEach((client, i) => {
    client.on('connect', () => {
      client.publish(topic('status'), status(id, 'online'), { qos: 1, retain: true })
      connected++
      if (connected < clients.length) return
      // All brokers connected: one datagram now and every SEND_INTERVAL_S until the session ends.
      const send = () => {
        publishAll('telemetry', telemetry(id), 2, false)
        datagrams.add(1)
      }
      send()
      timer = setInterval(send, SEND_INTERVAL_S * 1000)
      setTimeout(() => {
        clearInterval(timer)
        // A clean disconnect does not fire the will: say offline ourselves.
        for (const c of clients) {
          c.publish(topic('status'), status(id, 'offline'), { qos: 1, retain: true })
          c.end()
        }
      }, SESSION_S * 1000)
    })
    client.on('error', (error) => {
      console.warn(`${id}: ${BROKERS[i]}: ${error.message}`)
    })
    // Keep-alive 15 s and a persistent session, as the protocol's meters connect.
    client.connect(BROKERS[i], { keepalive: 15, clean_session: false })
  })
}

export function teardown() {
  if (!REGISTER) return
  // Let the server store the last datagrams before their device disappears.
  sleep(5)
  for (let vu = 1; vu <= PEAK_VUS; vu++)
    http.del(`${BASE_URL}/api/devices/${deviceId(vu)}`, null, { headers: auth })
}
