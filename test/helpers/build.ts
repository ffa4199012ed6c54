import { randomBytes } from 'node:crypto'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { type Config, loadConfig } from '../../src/config.ts'
import { buildServer } from '../../src/server.ts'
import { createSchema, realDatabaseUrl, realMqttUrl, tempDir, uniqueName } from './env.ts'

export interface TestApp {
  app: FastifyInstance
  config: Config
  /** The admin token the app accepts (ADMIN_TOKEN): tests call the API the way users do, signed in. */
  adminToken: string
  /** `app.inject` with `Authorization: Bearer <adminToken>` added (a caller's own authorization wins). */
  inject: (opts: InjectOptions | string) => Promise<LightMyRequestResponse>
  close: () => Promise<void>
}

export interface BuildOptions {
  /** false: embedded PGlite on disk under env.DATA_DIR, so a second build can reopen it (restart tests). */
  inMemoryDb?: boolean
  /** The test (or suite) context: the app is closed after it, without a try/finally at the call. */
  t?: { after: (fn: () => Promise<void>) => void }
}

/**
 * Builds the production plugin tree for a test file, in the suite's mode, on free ports and
 * its own database (PGlite in memory, or a fresh schema). `env` overrides configuration; a
 * DATABASE_URL given there is the caller's to clean up.
 */
export async function build(env: Record<string, string> = {}, options: BuildOptions = {}): Promise<TestApp> {
  const dir = tempDir()
  const schema = realDatabaseUrl && !env.DATABASE_URL ? await createSchema(realDatabaseUrl) : undefined
  const adminToken = env.ADMIN_TOKEN ?? `test-admin-${randomBytes(16).toString('hex')}`
  const config = loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    MQTT_BROKER_PORT: '0',
    DATA_DIR: dir.path,
    MQTT_CLIENT_ID: uniqueName('test'),
    // Authentication ON, as users run it: TestApp.inject signs every request with this admin token.
    // A suite that needs it off passes AUTH_DISABLED: 'true' and says why.
    AUTH_DISABLED: 'false',
    ADMIN_TOKEN: adminToken,
    RATE_LIMIT_MAX: '0',
    // Devices in tests connect anonymously; test/app/mqtt-auth.test.ts builds with token / mtls.
    MQTT_DEVICE_AUTH: 'none',
    ...(schema ? { DATABASE_URL: schema.url } : {}),
    ...(realMqttUrl ? { MQTT_URL: realMqttUrl } : {}),
    ...env,
  })
  const app = await buildServer({ config, inMemoryDb: options.inMemoryDb ?? !config.DATABASE_URL })
  try {
    await app.ready()
  } catch (error) {
    // A start that failed (or timed out) leaves sockets and timers open: the test file's process
    // would never exit, and the whole suite would wait for it.
    await app.close().catch(() => {})
    await schema?.drop().catch(() => {})
    dir.remove()
    throw error
  }
  const inject = (opts: InjectOptions | string) => {
    const options = typeof opts === 'string' ? { url: opts } : opts
    const headers = { authorization: `Bearer ${adminToken}`, ...options.headers }
    return app.inject({ ...options, headers })
  }
  const close = async () => {
    await app.close()
    await schema?.drop()
    dir.remove()
  }
  options.t?.after(close)
  return { app, config, adminToken, inject, close }
}

/** The URL devices of this test app connect to (embedded broker port, or the real broker). */
export function brokerUrl(t: TestApp): string {
  if (t.config.MQTT_URL) return t.config.MQTT_URL.split(',')[0] as string
  return `mqtt://127.0.0.1:${t.app.embeddedBroker?.port}`
}
