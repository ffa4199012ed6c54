import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { createAlertsModule } from '../../src/modules/alerts/index.ts'
import { createDevicesModule } from '../../src/modules/devices/index.ts'
import { type Alertmanager, alertmanagerBinary, prepareAlertmanager } from '../helpers/alertmanager.ts'
import { build, type TestApp } from '../helpers/build.ts'
import { uniqueName } from '../helpers/env.ts'

// CI installs Debian's prometheus-alertmanager (.ci/services.sh): this skips only where it is missing.
const skip = alertmanagerBinary
  ? false
  : 'prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)'
const ADMIN_TOKEN = `admin-${randomBytes(16).toString('hex')}`
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }

interface AmAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  startsAt: string
  endsAt: string
  status: { state: string }
}

let am: Alertmanager | undefined
let t: TestApp | undefined
before(async () => {
  if (skip) return
  am = await prepareAlertmanager()
  t = await build({
    AUTH_DISABLED: 'false',
    ADMIN_TOKEN,
    ALERTMANAGER_URL: am.url,
    ALERTMANAGER_RESEND_S: '5',
    ALERT_DELIVERY_POLL_MS: '50',
    ALERT_RETRY_MIN_MS: '50',
    ALERT_RETRY_MAX_MS: '300',
  })
})
after(async () => {
  await t?.close()
  await am?.remove()
})

/** The alerts Alertmanager holds for this alert id (its API lists active, unresolved ones). */
async function inAlertmanager(alertId: number): Promise<AmAlert[]> {
  const filter = encodeURIComponent(`alert_id="${alertId}"`)
  const res = await fetch(`${(am as Alertmanager).url}/api/v2/alerts?filter=${filter}`)
  assert.equal(res.status, 200)
  return (await res.json()) as AmAlert[]
}

async function eventually<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  timeoutMs = 15_000,
) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (ok(value)) return value
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}: ${JSON.stringify(value)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function registerWithAlert(
  app: TestApp,
  alertType: string,
): Promise<{ devicePk: number; deviceId: string; alertId: number }> {
  const deviceId = uniqueName('am')
  const device = await app.app.inject({
    method: 'POST',
    url: '/api/devices',
    headers: auth,
    payload: { device_id: deviceId, device_name: deviceId },
  })
  assert.equal(device.statusCode, 201)
  const alert = await app.app.inject({
    method: 'POST',
    url: `/api/devices/${deviceId}/alerts`,
    headers: auth,
    payload: { alert_type: alertType, severity: 'critical', message: 'breaker tripped' },
  })
  assert.equal(alert.statusCode, 201)
  return { devicePk: device.json().id, deviceId, alertId: alert.json().id }
}

test('Alertmanager down, then up: the alert fires there; resolved, it ends there', { skip }, async () => {
  const app = t as TestApp
  const { devicePk, deviceId, alertId } = await registerWithAlert(app, 'breaker_trip')
  await eventually(
    () =>
      app.app.db
        .selectFrom('alert_outbox')
        .select(['attempts', 'last_error'])
        .where('alert_id', '=', alertId)
        .execute(),
    (rows) => rows.length === 1 && (rows[0]?.attempts ?? 0) >= 2,
    'failed attempts while Alertmanager is down',
  )
  await (am as Alertmanager).start()
  const [firing] = await eventually(
    () => inAlertmanager(alertId),
    (a) => a.length === 1,
    'alert in Alertmanager',
  )
  assert.equal(firing?.status.state, 'active')
  assert.deepEqual(firing?.labels, {
    alertname: 'breaker_trip',
    device_id: deviceId,
    severity: 'critical',
    alert_id: String(alertId),
    source: 'iot-meter',
  })
  assert.equal(firing?.annotations.summary, 'breaker tripped')
  assert.ok(
    Date.parse(firing?.endsAt ?? '') > Date.now(),
    'firing: endsAt in the future (renewed by resends)',
  )

  const alerts = createAlertsModule(app.app.db, createDevicesModule(app.app.db).service, {
    config: app.config,
  }).service
  await alerts.resolve(devicePk, 'breaker_trip')
  await eventually(
    () => inAlertmanager(alertId),
    (a) => a.length === 0,
    'resolved: no longer active',
  )
  const delivered = await app.app.db
    .selectFrom('alert_outbox')
    .select(['event', 'delivered_at'])
    .where('alert_id', '=', alertId)
    .orderBy('id')
    .execute()
  assert.deepEqual(
    delivered.map((r) => [r.event, r.delivered_at !== null]),
    [
      ['opened', true],
      ['resolved', true],
    ],
  )
})

test('an Alertmanager restarted (alerts held in memory) gets the open alerts again', { skip }, async () => {
  const app = t as TestApp
  const { alertId } = await registerWithAlert(app, 'overheat')
  await eventually(
    () => inAlertmanager(alertId),
    (a) => a.length === 1,
    'alert in Alertmanager',
  )
  await (am as Alertmanager).stop()
  await (am as Alertmanager).start()
  // A restarted Alertmanager holds nothing (alerts live in its memory) and the alert's "opened"
  // event was delivered already: what it shows now comes from the resend loop.
  await eventually(
    () => inAlertmanager(alertId),
    (a) => a.length === 1,
    'sent again by the resend loop',
    20_000,
  )
})
