import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { build, type TestApp } from '../helpers/build.ts'

describe('devices API', () => {
  let t: TestApp
  before(async () => {
    t = await build()
  })
  after(() => t.close())

  const create = (body: unknown) => t.inject({ method: 'POST', url: '/api/devices', payload: body as object })

  test('create returns 201 with every field of the contract', async () => {
    const res = await create({
      device_id: 'dev-create',
      device_name: 'Meter A',
      device_type: 'power_meter_dc',
      location: 'Depot 1',
      metadata: { hw_rev: 'B', voltage_system: 'DC750' },
    })
    assert.equal(res.statusCode, 201)
    const d = res.json()
    for (const field of [
      'id',
      'device_id',
      'device_name',
      'device_type',
      'location',
      'status',
      'connection_status',
      'last_seen',
      'fw_version',
      'created_at',
      'updated_at',
      'metadata',
    ]) {
      assert.ok(field in d, `missing ${field}`)
    }
    assert.equal(d.status, 'active')
    assert.equal(d.connection_status, 'unknown')
    assert.equal(d.last_seen, null)
    assert.deepEqual(d.metadata, { hw_rev: 'B', voltage_system: 'DC750' })
    assert.equal(d.config.send_interval_s, 10)
    assert.match(d.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  test('registration metadata may override the default configuration', async () => {
    const res = await create({
      device_id: 'dev-config',
      device_name: 'Meter C',
      metadata: { config: { send_interval_s: 60, hello_interval_s: 99999 } },
    })
    assert.equal(res.statusCode, 201)
    assert.equal(res.json().config.send_interval_s, 60)
    assert.equal(res.json().config.hello_interval_s, 30, 'an out-of-range value keeps the default')
  })

  test('registration writes the first entry of the configuration history', async () => {
    await create({ device_id: 'dev-hist', device_name: 'H' })
    const res = await t.inject({ url: '/api/devices/dev-hist/config-history' })
    assert.equal(res.statusCode, 200)
    const history = res.json()
    assert.equal(history.length, 1)
    assert.equal(history[0].source, 'registration')
    assert.equal(history[0].config.hello_interval_s, 30)
    assert.equal((await t.inject({ url: '/api/devices/nope/config-history' })).statusCode, 404)
  })

  test('duplicate create returns 409 with the contract message', async () => {
    await create({ device_id: 'dev-dup', device_name: 'x' })
    const res = await create({ device_id: 'dev-dup', device_name: 'y' })
    assert.equal(res.statusCode, 409)
    assert.deepEqual(res.json(), { error: 'Device with this ID already exists', code: 'conflict' })
  })

  test('a NUL character in a query parameter is a 400 naming it (found by fuzzing: was a 500)', async () => {
    const res = await t.inject({ url: '/api/devices?type=a%00b' })
    assert.equal(res.statusCode, 400, res.body)
    assert.match(res.json().error, /type must not contain NUL/)
  })

  test('invalid bodies get 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ device_name: 'no id' }, /device_id/],
      [{ device_id: 'ok-id' }, /device_name/],
      [{ device_id: 'bad/id', device_name: 'x' }, /device_id/],
      [{ device_id: 'bad+id', device_name: 'x' }, /device_id/],
      [{ device_id: 'x'.repeat(65), device_name: 'x' }, /device_id/],
      [{ device_id: 'ok-id', device_name: 'x'.repeat(256) }, /device_name/],
      [{ device_id: 'ok-id', device_name: 42 }, /device_name/],
      // PostgreSQL text cannot hold U+0000: refused as input, not a 500 from the database.
      [{ device_id: 'ok-id', device_name: 'a\u0000b' }, /device_name must not contain NUL/],
      [{ device_id: 'ok-id', device_name: 'x', metadata: { 'k\u0000': 1 } }, /metadata.*NUL/],
      [{ device_id: 'ok-id', device_name: 'x', metadata: 'text' }, /metadata/],
      [{ device_id: 'ok-id', device_name: 'x', status: 'NOT VALID' }, /status/],
      [{ device_id: 'ok-id', device_name: 'x', unknown_field: 1 }, /unknown_field|additional/],
      [[], /body/],
    ]
    for (const [body, field] of cases) {
      const res = await create(body)
      assert.equal(res.statusCode, 400, JSON.stringify(body))
      assert.match(res.json().error, field, JSON.stringify(body))
    }
    const bad = await t.inject({
      method: 'POST',
      url: '/api/devices',
      headers: { 'content-type': 'application/json' },
      payload: '{"device_id": ',
    })
    assert.equal(bad.statusCode, 400)
    assert.match(bad.json().error, /JSON/)
  })

  test('get returns the device, unknown gives 404, a bad id 400', async () => {
    await create({ device_id: 'dev-get', device_name: 'G' })
    const ok = await t.inject({ url: '/api/devices/dev-get' })
    assert.equal(ok.statusCode, 200)
    assert.equal(ok.json().device_name, 'G')
    const missing = await t.inject({ url: '/api/devices/nope' })
    assert.equal(missing.statusCode, 404)
    assert.deepEqual(missing.json(), { error: 'Device not found', code: 'not_found' })
    const bad = await t.inject({ url: `/api/devices/${'y'.repeat(70)}` })
    assert.equal(bad.statusCode, 400)
  })

  test('list is newest first and filters by type, status, connection_status, q, with paging', async () => {
    await create({ device_id: 'lst-1', device_name: 'Tram 1', device_type: 'lst_ac', location: 'North' })
    await create({ device_id: 'lst-2', device_name: 'Tram 2', device_type: 'lst_dc', status: 'maintenance' })
    await create({
      device_id: 'lst-3',
      device_name: 'Metro 3',
      device_type: 'lst_dc',
      location: 'South 100%',
    })
    const all = (await t.inject({ url: '/api/devices' })).json()
    const ids = all.map((d: { device_id: string }) => d.device_id)
    assert.ok(ids.indexOf('lst-3') < ids.indexOf('lst-2') && ids.indexOf('lst-2') < ids.indexOf('lst-1'))

    const byType = (await t.inject({ url: '/api/devices?type=lst_dc' })).json()
    assert.deepEqual(
      byType.map((d: { device_id: string }) => d.device_id),
      ['lst-3', 'lst-2'],
    )
    const byStatus = (await t.inject({ url: '/api/devices?status=maintenance' })).json()
    assert.deepEqual(
      byStatus.map((d: { device_id: string }) => d.device_id),
      ['lst-2'],
    )
    const search = (await t.inject({ url: '/api/devices?q=tram' })).json()
    assert.deepEqual(search.map((d: { device_id: string }) => d.device_id).sort(), ['lst-1', 'lst-2'])
    const literalPercent = (await t.inject({ url: '/api/devices?q=100%25' })).json()
    assert.deepEqual(
      literalPercent.map((d: { device_id: string }) => d.device_id),
      ['lst-3'],
    )
    const page = (await t.inject({ url: '/api/devices?type=lst_dc&limit=1&offset=1' })).json()
    assert.deepEqual(
      page.map((d: { device_id: string }) => d.device_id),
      ['lst-2'],
    )
    const unknownConn = (await t.inject({ url: '/api/devices?connection_status=unknown&q=lst' })).json()
    assert.equal(unknownConn.length, 3)
    for (const url of [
      '/api/devices?limit=0',
      '/api/devices?limit=abc',
      '/api/devices?connection_status=sleeping',
      '/api/devices?offset=-1',
    ]) {
      const res = await t.inject({ url })
      assert.equal(res.statusCode, 400, url)
      assert.match(res.json().error, /querystring/, url)
    }
  })

  test('update changes only the given fields; empty body 400; unknown 404', async () => {
    await create({ device_id: 'dev-upd', device_name: 'Before', location: 'A' })
    const res = await t.inject({
      method: 'PUT',
      url: '/api/devices/dev-upd',
      payload: { device_name: 'After', metadata: { k: 1 } },
    })
    assert.equal(res.statusCode, 200)
    assert.equal(res.json().device_name, 'After')
    assert.equal(res.json().location, 'A')
    assert.deepEqual(res.json().metadata, { k: 1 })
    const empty = await t.inject({ method: 'PUT', url: '/api/devices/dev-upd', payload: {} })
    assert.equal(empty.statusCode, 400)
    const wrongType = await t.inject({
      method: 'PUT',
      url: '/api/devices/dev-upd',
      payload: { location: 5 },
    })
    assert.equal(wrongType.statusCode, 400)
    assert.match(wrongType.json().error, /location/)
    const missing = await t.inject({
      method: 'PUT',
      url: '/api/devices/nope',
      payload: { location: 'x' },
    })
    assert.equal(missing.statusCode, 404)
  })

  test('delete removes the device and its alerts; a second delete is 404', async () => {
    await create({ device_id: 'dev-del', device_name: 'D' })
    const alert = await t.inject({
      method: 'POST',
      url: '/api/devices/dev-del/alerts',
      payload: { message: 'm' },
    })
    assert.equal(alert.statusCode, 201)
    const res = await t.inject({ method: 'DELETE', url: '/api/devices/dev-del' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { message: 'Device deleted successfully' })
    assert.equal((await t.inject({ url: '/api/devices/dev-del' })).statusCode, 404)
    assert.equal((await t.inject({ method: 'DELETE', url: '/api/devices/dev-del' })).statusCode, 404)
    const left = await t.app.db
      .selectFrom('device_alerts')
      .select('id')
      .where('id', '=', alert.json().id)
      .execute()
    assert.equal(left.length, 0, 'alerts cascade with the device')
  })

  test('heartbeat sets last_seen and online; 404 for unknown', async () => {
    await create({ device_id: 'dev-hb', device_name: 'H' })
    const before = Date.now()
    const res = await t.inject({ method: 'POST', url: '/api/devices/dev-hb/heartbeat' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { message: 'Heartbeat received' })
    const status = (await t.inject({ url: '/api/devices/dev-hb/status' })).json()
    assert.equal(status.connection_status, 'online')
    assert.ok(Date.parse(status.last_seen) >= before - 1000)
    assert.equal((await t.inject({ method: 'POST', url: '/api/devices/nope/heartbeat' })).statusCode, 404)
  })

  test('status get/put', async () => {
    await create({ device_id: 'dev-st', device_name: 'S' })
    const get = await t.inject({ url: '/api/devices/dev-st/status' })
    assert.deepEqual(get.json(), {
      device_id: 'dev-st',
      connection_status: 'unknown',
      last_seen: null,
      fw_version: null,
    })
    const put = await t.inject({
      method: 'PUT',
      url: '/api/devices/dev-st/status',
      payload: { connection_status: 'offline', fw_version: '2.1.0' },
    })
    assert.equal(put.statusCode, 200)
    assert.equal(put.json().connection_status, 'offline')
    assert.equal(put.json().fw_version, '2.1.0')
    const bad = await t.inject({
      method: 'PUT',
      url: '/api/devices/dev-st/status',
      payload: { connection_status: 'asleep' },
    })
    assert.equal(bad.statusCode, 400)
    assert.match(bad.json().error, /connection_status/)
    assert.equal((await t.inject({ url: '/api/devices/nope/status' })).statusCode, 404)
    const missing = await t.inject({
      method: 'PUT',
      url: '/api/devices/nope/status',
      payload: { connection_status: 'online' },
    })
    assert.equal(missing.statusCode, 404)
  })

  test('stats count devices by status and connection, and unacknowledged alerts', async () => {
    const res = await t.inject({ url: '/api/stats' })
    assert.equal(res.statusCode, 200)
    const stats = res.json()
    const devices = (await t.inject({ url: '/api/devices?limit=10000' })).json()
    assert.equal(stats.total_devices, devices.length)
    const sum = stats.device_by_status.reduce((s: number, r: { count: number }) => s + r.count, 0)
    assert.equal(sum, devices.length)
    assert.equal(stats.devices_online + stats.devices_offline + stats.devices_unknown, devices.length)
    assert.equal(typeof stats.unacknowledged_alerts, 'number')
  })

  test('unknown routes answer 404 in the error format', async () => {
    const res = await t.inject({ url: '/api/nothing-here' })
    assert.equal(res.statusCode, 404)
    assert.match(res.json().error, /not found/)
  })
})
