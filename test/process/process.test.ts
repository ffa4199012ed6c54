import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { tempDir } from '../helpers/env.ts'
import { serverFetch, startServer } from '../helpers/process.ts'

const dir = tempDir()
after(() => dir.remove())

// Process life is about the embedded defaults (PGlite on disk, aedes); it runs the same in both modes.
const env = { DATA_DIR: dir.path, MQTT_CLIENT_ID: 'process-test' }

test('npm start serves, SIGTERM closes cleanly within 10 s, and data under DATA_DIR survives', async () => {
  const first = await startServer(env)
  // stdout is a pipe here: JSON lines, the banner's facts as one "ready" line.
  const deadline = Date.now() + 10_000
  while (!/"msg":"ready"/.test(first.output()) && Date.now() < deadline) await delay(50)
  assert.match(first.output(), /"dashboard":"http:\/\/127\.0\.0\.1:\d+\/".*"msg":"ready"/)
  const created = await serverFetch(`${first.baseUrl}/api/devices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ device_id: 'survivor', device_name: 'S' }),
  })
  assert.equal(created.status, 201)
  const started = Date.now()
  first.child.kill('SIGTERM')
  const { code } = await first.exited
  assert.equal(code, 0, first.output())
  assert.ok(Date.now() - started < 10000)
  assert.match(first.output(), /"signal":"SIGTERM"/)

  const second = await startServer(env)
  const res = await serverFetch(`${second.baseUrl}/api/devices/survivor`)
  assert.equal(res.status, 200)
  second.child.kill('SIGINT')
  assert.equal((await second.exited).code, 0)
})

test('a second signal exits at once', async () => {
  const server = await startServer(env)
  server.child.kill('SIGTERM')
  server.child.kill('SIGTERM')
  const { code } = await server.exited
  assert.notEqual(code, null)
})

test('a busy port (MQTT or HTTP) stops the start before the database is opened, naming the fix', async () => {
  const blocker = createServer().listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  const { port } = blocker.address() as { port: number }
  const data = tempDir()
  try {
    for (const [variable, fix] of [
      [
        'MQTT_BROKER_PORT',
        /choose another port \(MQTT_BROKER_PORT=1884\), or use that broker instead \(MQTT_URL=/,
      ],
      ['PORT', /choose another port, e\.g\. PORT=8081/],
    ] as const) {
      const started = Date.now()
      const error = await startServer({ ...env, DATA_DIR: data.path, [variable]: String(port) }).then(
        () => assert.fail(`${variable}: the server started on a busy port`),
        (e: Error) => e,
      )
      const elapsed = Date.now() - started
      const line = new RegExp(`port ${port} on 127\\.0\\.0\\.1 \\(${variable}, [^)]+\\) is already in use: `)
      assert.match(error.message, line)
      assert.match(error.message, fix)
      // Nothing was opened: no database line, no migration, no data directory content.
      assert.doesNotMatch(error.message, /database|migrat/i)
      assert.deepEqual(readdirSync(data.path), [])
      // The check runs before the application's modules load; what remains is Node, tsx and the
      // configuration schema loading (measured ~1-3 s on the shared 2-core machine, ~23 s before).
      console.log(`# ${variable} busy: the process exited after ${elapsed} ms`)
      assert.ok(elapsed < 10_000, `${elapsed} ms`)
    }
  } finally {
    blocker.close()
    data.remove()
  }
})

test('the start-up banner (LOG_FORMAT=pretty) says where everything is and shows the bootstrap token once', async () => {
  const data = tempDir()
  const server = await startServer({
    DATA_DIR: data.path,
    MQTT_CLIENT_ID: 'banner-test',
    LOG_FORMAT: 'pretty',
    AUTH_DISABLED: 'false',
    MQTT_DEVICE_AUTH: 'token',
    SIMULATOR_ENABLED: 'true',
    SIMULATOR_DEVICES: '2',
  })
  try {
    const deadline = Date.now() + 10_000
    while (!/Stop with Ctrl\+C/.test(server.output()) && Date.now() < deadline) await delay(50)
    const out = server.output()
    const base = server.baseUrl
    assert.match(out, /IoT Meter \d+\.\d+\.\d+ is ready/)
    assert.ok(out.includes(`Dashboard:      ${base}/`), out)
    assert.ok(out.includes(`API reference:  ${base}/docs`), out)
    assert.match(out, /MQTT broker: {4}embedded, mqtt:\/\/127\.0\.0\.1:\d+ \(device auth: token\)/)
    assert.ok(
      out.includes(`Database:       embedded PostgreSQL (PGlite) in ${join(data.path, 'pglite')}`),
      out,
    )
    assert.ok(out.includes(`Data directory: ${data.path}`), out)
    assert.match(out, /Simulator: {6}on, 2 meters: sim-dc-0001, sim-dc-0002/)
    // The bootstrap admin token: on a line of its own, printed once, and it works.
    const token = /^ {6}(im_\S+)$/m.exec(out)?.[1]
    assert.ok(token, out)
    assert.equal(out.split(token).length - 1, 1, 'the token is printed exactly once')
    const res = await fetch(`${base}/api/session`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as { role: string }).role, 'admin')
    // Pretty log lines, not JSON; reads (this fetch, the simulator's polling) are not logged at info.
    assert.match(out, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}database ready engine=pglite$/m)
    assert.doesNotMatch(out, /^\{"level"/m)
    await delay(200)
    assert.doesNotMatch(server.output(), /GET \/api\/session/)
  } finally {
    server.child.kill('SIGTERM')
    await server.exited
    data.remove()
  }
})
