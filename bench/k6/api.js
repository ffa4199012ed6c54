// k6 load test of the IoT Meter HTTP API (every endpoint group of the API contract), ramping stages.
//
//   k6 run -e BASE_URL=https://iot-meter.example.com bench/k6/api.js
//   k6 run -e BASE_URL=http://localhost:8080 -e PEAK_VUS=20 -e STAGE=30s bench/k6/api.js
//
// setup() registers DEVICES load-test devices (id prefix k6-api-), teardown() deletes them with
// their alerts and commands. Commands go to devices that do not exist on the broker: they are
// acknowledged through the manual ack route. With HTTP authentication on (the default), pass an
// admin bearer token as API_TOKEN. See bench/k6/README.md.
import { check, fail, group, sleep } from 'k6'
import http from 'k6/http'
import { Counter } from 'k6/metrics'

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:8080').replace(/\/$/, '')
const PEAK_VUS = Number(__ENV.PEAK_VUS || 50)
const STAGE = __ENV.STAGE || '1m'
const DEVICES = Number(__ENV.DEVICES || 20)
const PREFIX = __ENV.DEVICE_PREFIX || 'k6-api'
// Registering and deleting devices needs the admin role; the mix also issues commands and acks.
const API_TOKEN = __ENV.API_TOKEN || ''

export const options = {
  scenarios: {
    api: {
      executor: 'ramping-vus',
      startVUs: 0,
      // Warm up, ramp to the peak, hold it, ramp down.
      stages: [
        { duration: STAGE, target: Math.max(1, Math.round(PEAK_VUS / 5)) },
        { duration: STAGE, target: PEAK_VUS },
        { duration: STAGE, target: PEAK_VUS },
        { duration: STAGE, target: 0 },
      ],
      gracefulRampDown: '10s',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{group:::health}': ['p(95)<100'],
    'http_req_duration{group:::devices}': ['p(95)<300'],
    'http_req_duration{group:::telemetry}': ['p(95)<1000'],
    checks: ['rate>0.99'],
  },
}

const unexpected = new Counter('unexpected_status')
const auth = API_TOKEN ? { authorization: `Bearer ${API_TOKEN}` } : {}
const get = (u) => get(u, { headers: auth })
const del = (u) => del(u, null, { headers: auth })
const post = (u, body) =>
  body === undefined
    ? http.post(u, null, { headers: auth })
    : http.post(u, JSON.stringify(body), { headers: { ...auth, 'content-type': 'application/json' } })
const put = (u, body) =>
  http.put(u, JSON.stringify(body), { headers: { ...auth, 'content-type': 'application/json' } })

/** A route of the API contract with its {params} filled in (test/deploy.test.ts checks the routes exist). */
function url(route, params = {}, query = '') {
  const path = route.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(params[name]))
  return `${BASE_URL}${path}${query ? `?${query}` : ''}`
}

function expect(response, status, what) {
  const ok = check(response, { [`${what}: ${status}`]: (r) => r.status === status })
  if (!ok) unexpected.add(1, { what, status: String(response.status) })
  return ok
}

const deviceIds = Array.from({ length: DEVICES }, (_, i) => `${PREFIX}-${String(i).padStart(4, '0')}`)

export function setup() {
  const health = get(url('/health'))
  if (health.status !== 200) fail(`${BASE_URL}/health answered ${health.status}: is BASE_URL right?`)
  for (const id of deviceIds) {
    const body = {
      device_id: id,
      device_name: `k6 load-test meter ${id}`,
      device_type: 'power_meter_dc',
      location: 'k6',
      metadata: { load_test: true },
    }
    const r = post(url('/api/devices'), body)
    // 409: left over from an earlier run that did not reach teardown.
    if (r.status === 401 || r.status === 403)
      fail(`registering ${id}: ${r.status}: pass an admin token as API_TOKEN`)
    if (r.status !== 201 && r.status !== 409) fail(`registering ${id}: ${r.status} ${r.body}`)
  }
  return { deviceIds }
}

export default function (data) {
  const id = data.deviceIds[Math.floor(Math.random() * data.deviceIds.length)]
  const roll = Math.random()

  // Weights: mostly reads, as dashboards and scripts poll; a few writes.
  if (roll < 0.1) {
    group('health', () => {
      expect(get(url('/health')), 200, 'health')
      expect(get(url('/healthz')), 200, 'healthz')
      expect(get(url('/readyz')), 200, 'readyz')
      expect(get(url('/metrics')), 200, 'metrics')
    })
  } else if (roll < 0.45) {
    group('devices', () => {
      expect(get(url('/api/devices', {}, 'limit=100')), 200, 'list devices')
      expect(get(url('/api/devices', {}, `q=${PREFIX}&status=active&limit=50`)), 200, 'search devices')
      expect(get(url('/api/devices/{device_id}', { device_id: id })), 200, 'get device')
      expect(get(url('/api/devices/{device_id}/status', { device_id: id })), 200, 'get status')
      expect(post(url('/api/devices/{device_id}/heartbeat', { device_id: id })), 200, 'heartbeat')
      const update = { location: `k6 depot ${__VU}` }
      expect(put(url('/api/devices/{device_id}', { device_id: id }), update), 200, 'update')
      const status = { connection_status: 'online', fw_version: '2.4.1' }
      expect(put(url('/api/devices/{device_id}/status', { device_id: id }), status), 200, 'put status')
      expect(get(url('/api/devices/{device_id}', { device_id: 'k6-no-such-device' })), 404, 'unknown device')
    })
  } else if (roll < 0.7) {
    group('telemetry', () => {
      const d = { device_id: id }
      expect(get(url('/api/devices/{device_id}/metrics', d, 'start=-1h')), 200, 'metrics raw')
      expect(
        get(url('/api/devices/{device_id}/metrics', d, 'start=-24h&metric=voltage_dc&every=15m&fn=mean')),
        200,
        'metrics windowed',
      )
      expect(get(url('/api/devices/{device_id}/energy', d, 'start=-24h&interval=1h')), 200, 'energy')
      expect(get(url('/api/devices/{device_id}/raw-data', d, 'limit=100')), 200, 'raw data')
    })
  } else if (roll < 0.85) {
    group('alerts', () => {
      const d = { device_id: id }
      const alert = { alert_type: 'k6', severity: 'info', message: 'k6 load test' }
      const raised = post(url('/api/devices/{device_id}/alerts', d), alert)
      if (expect(raised, 201, 'raise alert')) {
        expect(post(url('/api/alerts/{id}/acknowledge', { id: raised.json('id') })), 200, 'acknowledge')
      }
      expect(get(url('/api/devices/{device_id}/alerts', d, 'acknowledged=false')), 200, 'device alerts')
      expect(get(url('/api/alerts', {}, 'limit=50')), 200, 'fleet alerts')
    })
  } else if (roll < 0.95) {
    group('stats', () => {
      expect(get(url('/api/stats')), 200, 'stats')
    })
  } else {
    group('commands', () => {
      const d = { device_id: id }
      const issued = post(url('/api/devices/{device_id}/commands', d), { cmd: 'request_status', params: {} })
      // 202: stored while the broker is unreachable, sent later.
      const ok = check(issued, { 'issue command: 201 or 202': (r) => r.status === 201 || r.status === 202 })
      if (!ok) unexpected.add(1, { what: 'issue command', status: String(issued.status) })
      if (ok) {
        const cmd = { cmd_id: issued.json('cmd_id') }
        expect(get(url('/api/commands/{cmd_id}', cmd)), 200, 'get command')
        const ack = { result: 'accepted', detail: 'k6' }
        expect(put(url('/api/commands/{cmd_id}/ack', cmd), ack), 200, 'ack command')
      }
      expect(get(url('/api/devices/{device_id}/commands', d)), 200, 'command history')
    })
  }
  sleep(0.5 + Math.random())
}

export function teardown(data) {
  for (const id of data.deviceIds) del(url('/api/devices/{device_id}', { device_id: id }))
}
