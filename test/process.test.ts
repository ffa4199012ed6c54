import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { after, test } from 'node:test'
import { tempDir } from './helpers/env.ts'
import { startServer } from './helpers/process.ts'

const dir = tempDir()
after(() => dir.remove())

// Process life is about the embedded defaults (PGlite on disk, aedes); it runs the same in both modes.
const env = { DATA_DIR: dir.path, MQTT_CLIENT_ID: 'process-test' }

test('npm start serves, SIGTERM closes cleanly within 10 s, and data under DATA_DIR survives', async () => {
  const first = await startServer(env)
  const created = await fetch(`${first.baseUrl}/api/devices`, {
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
  const res = await fetch(`${second.baseUrl}/api/devices/survivor`)
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

test('a busy MQTT_BROKER_PORT stops the start with a message saying what to do', async () => {
  const blocker = createServer().listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  const { port } = blocker.address() as { port: number }
  const data = tempDir()
  try {
    await assert.rejects(
      startServer({ ...env, DATA_DIR: data.path, MQTT_BROKER_PORT: String(port) }),
      /MQTT_BROKER_PORT \d+ is already in use .*set MQTT_BROKER_PORT to a free port, or MQTT_URL/,
    )
  } finally {
    blocker.close()
    data.remove()
  }
})
