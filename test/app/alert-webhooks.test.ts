import assert from 'node:assert/strict'
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { AlertsService, createAlertsModule } from '../../src/modules/alerts/index.ts'
import { createDevicesModule } from '../../src/modules/devices/index.ts'
import { build, type TestApp } from '../helpers/build.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../helpers/env.ts'
import { type Received, WebhookReceiver } from '../helpers/webhook-receiver.ts'

const SECRET = `whsec-${randomBytes(16).toString('hex')}`
const ADMIN_TOKEN = `admin-${randomBytes(16).toString('hex')}`
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** Fast retries and polls so an outage of a second is many attempts. */
const deliveryEnv = (urls: string[]) => ({
  AUTH_DISABLED: 'false',
  ADMIN_TOKEN,
  ALERT_WEBHOOK_URLS: urls.join(','),
  ALERT_WEBHOOK_SECRET: SECRET,
  ALERT_DELIVERY_POLL_MS: '50',
  ALERT_RETRY_MIN_MS: '50',
  ALERT_RETRY_MAX_MS: '400',
  ALERT_UPDATE_NOTIFY_S: '0',
})

interface Event {
  event_id: string
  event: string
  occurred_at: string
  alert: {
    id: number
    device_id: string
    alert_type: string
    resolved_at: string | null
    acknowledged: boolean
  }
}

/** What a receiver does: checks the signature over "t.body" and that t is recent, then parses. */
function verified(r: Received): Event {
  const header = String(r.headers['x-iot-meter-signature'])
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header)
  assert.ok(match, `signature header ${header}`)
  const [, t, mac] = match as unknown as [string, string, string]
  const expected = createHmac('sha256', SECRET).update(`${t}.${r.body}`).digest()
  assert.ok(timingSafeEqual(expected, Buffer.from(mac, 'hex')), 'HMAC matches')
  assert.ok(Math.abs(Date.now() / 1000 - Number(t)) < 300, 'timestamp is recent')
  const event = JSON.parse(r.body) as Event
  assert.equal(r.headers['x-iot-meter-event-id'], event.event_id)
  return event
}

async function eventually(ok: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function registerDevice(t: TestApp, deviceId: string): Promise<{ id: number }> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/devices',
    headers: auth,
    payload: { device_id: deviceId, device_name: deviceId },
  })
  assert.equal(res.statusCode, 201, res.body)
  return res.json()
}

/** The facade other modules hold (raise/resolve), over the app's database and targets. */
const facade = (t: TestApp) =>
  createAlertsModule(t.app.db, createDevicesModule(t.app.db).service, { config: t.config }).service

const userAlert = (t: TestApp, deviceId: string, message: string, alertType = 'inspection') =>
  t.app.inject({
    method: 'POST',
    url: `/api/devices/${deviceId}/alerts`,
    headers: auth,
    payload: { alert_type: alertType, severity: 'warning', message },
  })

/** Each event id exactly once among the accepted deliveries. */
function assertOncePerEventId(events: Event[]) {
  const ids = events.map((e) => e.event_id)
  assert.equal(new Set(ids).size, ids.length, 'no event id delivered twice')
}

describe('alert webhooks', () => {
  let a: WebhookReceiver
  let b: WebhookReceiver
  let t: TestApp
  before(async () => {
    a = await WebhookReceiver.start()
    b = await WebhookReceiver.start()
    t = await build(deliveryEnv([a.url, b.url]))
  })
  after(async () => {
    await t.close()
    await a.down()
    await b.down()
  })

  test('opened, updated, acknowledged and resolved reach every webhook, signed, in order per alert', async () => {
    const deviceId = uniqueName('hook')
    const device = await registerDevice(t, deviceId)
    const first = await userAlert(t, deviceId, 'door open')
    assert.equal(first.statusCode, 201)
    const id = first.json().id as number
    assert.equal(
      (await userAlert(t, deviceId, 'door still open')).json().id,
      id,
      'a repeat counts on the open alert',
    )
    assert.equal(
      (await t.app.inject({ method: 'POST', url: `/api/alerts/${id}/acknowledge`, headers: auth }))
        .statusCode,
      200,
    )
    assert.equal(
      (await t.app.inject({ method: 'POST', url: `/api/alerts/${id}/acknowledge`, headers: auth }))
        .statusCode,
      200,
    )
    const alerts = facade(t)
    const offline = await alerts.raise({
      device_pk: device.id,
      alert_type: 'device_offline',
      severity: 'warning',
      message: 'gone',
    })
    await alerts.resolve(device.id, 'device_offline')

    for (const receiver of [a, b]) {
      await eventually(() => receiver.accepted.length >= 5, 'five events')
      const events = receiver.accepted.map(verified)
      assertOncePerEventId(events)
      assert.deepEqual(
        events.filter((e) => e.alert.id === id).map((e) => e.event),
        ['opened', 'updated', 'acknowledged'],
        'a second acknowledge is no event',
      )
      assert.deepEqual(
        events.filter((e) => e.alert.id === offline).map((e) => e.event),
        ['opened', 'resolved'],
      )
      const resolved = events.find((e) => e.event === 'resolved') as Event
      assert.ok(resolved.alert.resolved_at, 'the resolved event carries the alert as resolved')
      assert.equal(resolved.alert.device_id, deviceId)
    }
    assert.deepEqual(
      a.accepted.map((r) => verified(r).event_id).sort(),
      b.accepted.map((r) => verified(r).event_id).sort(),
      'one event id per event, the same at every target',
    )
  })

  test('a receiver answering 503 gets the same event again, with the next attempt number', async () => {
    const deviceId = uniqueName('retry')
    await registerDevice(t, deviceId)
    const before = a.received.length
    let refused = 0
    a.answer = () => (refused++ < 3 ? 503 : 204)
    try {
      const id = (await userAlert(t, deviceId, 'flaky receiver')).json().id as number
      await eventually(() => a.accepted.some((r) => verified(r).alert.id === id), 'delivered after refusals')
      const tries = a.received.slice(before).filter((r) => verified(r).alert.id === id)
      assert.deepEqual(
        tries.map((r) => [r.status, r.headers['x-iot-meter-delivery-attempt']]),
        [
          [503, '1'],
          [503, '2'],
          [503, '3'],
          [204, '4'],
        ],
      )
      assert.equal(new Set(tries.map((r) => verified(r).event_id)).size, 1, 'one event id over every attempt')
    } finally {
      a.answer = () => 204
    }
  })
})

test('repeats of an open alert send at most one "updated" per ALERT_UPDATE_NOTIFY_S', async () => {
  const t = await build({ AUTH_DISABLED: 'false', ADMIN_TOKEN })
  try {
    const devices = createDevicesModule(t.app.db).service
    // A target no worker of this app sends to: the queued events stay for the test to read.
    const alerts = new AlertsService(t.app.db, devices, {
      targets: ['webhook:http://nowhere'],
      updateEveryS: 300,
    })
    const device = await registerDevice(t, uniqueName('rate'))
    const raise = () =>
      alerts.raise({ device_pk: device.id, alert_type: 'out_of_range', severity: 'warning', message: 'hot' })
    const id = await raise()
    for (let i = 0; i < 5; i++) assert.equal(await raise(), id)
    await alerts.acknowledge(id)
    const queued = await t.app.db
      .selectFrom('alert_outbox')
      .select('event')
      .where('alert_id', '=', id)
      .orderBy('id')
      .execute()
    assert.deepEqual(
      queued.map((r) => r.event),
      ['opened', 'acknowledged'],
      'five repeats within 300 s: no "updated" (the alert counts them: occurrences)',
    )
    assert.equal((await alerts.get(id)).occurrences, 6)
  } finally {
    await t.close()
  }
})

test('receiver down for a while and the server restarted meanwhile: every event arrives, once', async () => {
  const receiver = await WebhookReceiver.start()
  await receiver.down()
  const dir = tempDir()
  const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
  const database: Record<string, string> = schema ? { DATABASE_URL: schema.url } : { DATA_DIR: dir.path }
  const env = { ...deliveryEnv([receiver.url]), ...database }
  try {
    const first = await build(env, { inMemoryDb: false })
    const deviceId = uniqueName('outage')
    try {
      await registerDevice(first, deviceId)
      for (let i = 0; i < 6; i++)
        assert.equal((await userAlert(first, deviceId, `while down ${i}`)).statusCode, 201)
      // The alert's first event (the others wait behind it: order per alert) has failed twice.
      await eventually(async () => {
        const rows = await first.app.db.selectFrom('alert_outbox').select('attempts').orderBy('id').execute()
        return rows.length === 6 && (rows[0]?.attempts ?? 0) >= 2
      }, 'attempts while the receiver is down')
    } finally {
      await first.close()
    }
    const second = await build(env, { inMemoryDb: false })
    try {
      const device = await second.app.inject({ url: `/api/devices/${deviceId}`, headers: auth })
      await facade(second).resolve(device.json().id, 'inspection')
      await new Promise((r) => setTimeout(r, 500))
      assert.equal(receiver.received.length, 0, 'nothing arrives while the receiver is down')
      await receiver.up()
      await eventually(() => receiver.accepted.length >= 7, 'seven events after the receiver is back')
      // Long enough for any duplicate (a retry of a delivered event) to show up.
      await new Promise((r) => setTimeout(r, 1000))
      const events = receiver.accepted.map(verified)
      assert.equal(events.length, 7)
      assertOncePerEventId(events)
      assert.deepEqual(
        events.map((e) => e.event),
        ['opened', ...Array(5).fill('updated'), 'resolved'],
      )
      const pending = await second.app.db
        .selectFrom('alert_outbox')
        .select('id')
        .where('delivered_at', 'is', null)
        .execute()
      assert.equal(pending.length, 0, 'the outbox is drained')
    } finally {
      await second.close()
    }
  } finally {
    await receiver.down()
    await schema?.drop()
    dir.remove()
  }
})

test('two replicas on one PostgreSQL never send the same event', {
  skip: realDatabaseUrl ? false : 'replicas share one PostgreSQL: set TEST_DATABASE_URL to run this test',
}, async () => {
  const receiver = await WebhookReceiver.start()
  receiver.delayMs = 20
  const schema = await createSchema(realDatabaseUrl as string)
  const env = { ...deliveryEnv([receiver.url]), DATABASE_URL: schema.url }
  const replicas = [await build(env), await build(env)]
  try {
    const deviceId = uniqueName('rep')
    await registerDevice(replicas[0] as TestApp, deviceId)
    const writes = []
    // 40 alerts (their events are independent, so both replicas claim side by side), raised twice.
    for (let i = 0; i < 80; i++)
      writes.push(userAlert(replicas[i % 2] as TestApp, deviceId, `m${i}`, `kind_${i % 40}`))
    await Promise.all(writes)
    const queued = await (replicas[0] as TestApp).app.db.selectFrom('alert_outbox').select('id').execute()
    await eventually(() => receiver.accepted.length >= queued.length, 'all queued events delivered')
    await new Promise((r) => setTimeout(r, 1000))
    const events = receiver.accepted.map(verified)
    assert.equal(events.length, queued.length)
    assertOncePerEventId(events)
  } finally {
    for (const r of replicas) await r.close()
    await schema.drop()
    await receiver.down()
  }
})
