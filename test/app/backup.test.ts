import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { build, type TestApp } from '../helpers/build.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../helpers/env.ts'

const ADMIN_TOKEN = `admin-${randomBytes(16).toString('hex')}`
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
const root = fileURLToPath(new URL('../..', import.meta.url))
const exec = promisify(execFile)

/** `npm run backup|restore -- …` as an operator runs it. */
const npmRun = (script: 'backup' | 'restore', env: Record<string, string>, ...args: string[]) =>
  exec('npm', ['run', '--silent', script, '--', ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
  })

const alertTypes = async (t: TestApp) => {
  const res = await t.app.inject({ url: '/api/alerts?limit=1000', headers: auth })
  assert.equal(res.statusCode, 200)
  return (res.json() as { id: number; alert_type: string }[]).map((a) => a.alert_type)
}

test('backup while the server runs and writes; restore after a stop brings back that moment exactly', async () => {
  const dir = tempDir()
  const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
  const database: Record<string, string> = schema ? { DATABASE_URL: schema.url } : { DATA_DIR: dir.path }
  const env = { AUTH_DISABLED: 'false', ADMIN_TOKEN, ...database }
  const file = join(dir.path, 'backup.bin')
  try {
    const first = await build(env, { inMemoryDb: false })
    let written = 0
    let stop = false
    let writer: Promise<void> | undefined
    try {
      await first.app.listen({ port: 0, host: '127.0.0.1' })
      const { port } = first.app.server.address() as { port: number }
      const deviceId = uniqueName('bk')
      const created = await first.app.inject({
        method: 'POST',
        url: '/api/devices',
        headers: auth,
        payload: { device_id: deviceId, device_name: 'kept' },
      })
      assert.equal(created.statusCode, 201)
      // One writer, one alert after the other, all through the backup.
      writer = (async () => {
        while (!stop) {
          const res = await first.app.inject({
            method: 'POST',
            url: `/api/devices/${deviceId}/alerts`,
            headers: auth,
            payload: { alert_type: `k_${written}`, message: `alert ${written}` },
          })
          assert.equal(res.statusCode, 201)
          written++
        }
      })()
      while (written < 20) await new Promise((r) => setTimeout(r, 20))
      const before = written
      const { stdout } = await npmRun('backup', { ...env, PORT: String(port) }, '--out', file)
      assert.match(stdout, /backup of (PostgreSQL|the embedded database) written/)
      stop = true
      await writer
      assert.ok(existsSync(file) && !existsSync(`${file}.partial`))
      const res = await first.app.inject({
        method: 'POST',
        url: `/api/devices/${deviceId}/alerts`,
        headers: auth,
        payload: { alert_type: 'after_backup', message: 'not in the backup' },
      })
      assert.equal(res.statusCode, 201)
      assert.ok(before >= 20)
    } finally {
      stop = true
      await writer?.catch(() => {})
      await first.close()
    }

    const { stdout } = await npmRun('restore', env, file)
    assert.match(stdout, /restored/)
    const second = await build(env, { inMemoryDb: false })
    try {
      const types = await alertTypes(second)
      assert.ok(!types.includes('after_backup'), 'nothing written after the backup')
      // Consistent: the alerts written one after the other are a prefix k_0 … k_(n-1), no holes.
      const n = types.length
      assert.ok(n >= 20 && n <= written, `${n} alerts restored of ${written} written`)
      assert.deepEqual([...types].sort(), Array.from({ length: n }, (_, i) => `k_${i}`).sort())
      const devices = await second.app.inject({ url: '/api/devices', headers: auth })
      assert.deepEqual(
        devices.json().map((d: { device_name: string }) => d.device_name),
        ['kept'],
      )
    } finally {
      await second.close()
    }
  } finally {
    await schema?.drop()
    dir.remove()
  }
})

test('restore refuses a file that is no backup of the configured engine, and changes nothing', async () => {
  const dir = tempDir()
  try {
    const bogus = join(dir.path, 'notes.txt')
    writeFileSync(bogus, 'not a backup')
    const env: Record<string, string> = realDatabaseUrl
      ? { DATABASE_URL: realDatabaseUrl }
      : { DATA_DIR: dir.path }
    await assert.rejects(npmRun('restore', env, bogus), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1)
      assert.match(
        err.stderr,
        /notes\.txt is no backup of this tool, the configured database is (pglite|postgres)/,
      )
      return true
    })
    assert.ok(!existsSync(join(dir.path, 'pglite')), 'nothing created')
  } finally {
    dir.remove()
  }
})
