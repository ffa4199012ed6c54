import type { FastifyInstance } from 'fastify'
import { type Config, loadConfig } from '../../src/config.ts'
import { buildServer } from '../../src/server.ts'
import { createSchema, realDatabaseUrl, realMqttUrl, tempDir, uniqueName } from './env.ts'

export interface TestApp {
  app: FastifyInstance
  config: Config
  close: () => Promise<void>
}

export interface BuildOptions {
  /** false: embedded PGlite on disk under env.DATA_DIR, so a second build can reopen it (restart tests). */
  inMemoryDb?: boolean
}

/**
 * Builds the production plugin tree for a test file, in the suite's mode, on free ports and
 * its own database (PGlite in memory, or a fresh schema). `env` overrides configuration; a
 * DATABASE_URL given there is the caller's to clean up.
 */
export async function build(env: Record<string, string> = {}, options: BuildOptions = {}): Promise<TestApp> {
  const dir = tempDir()
  const schema = realDatabaseUrl && !env.DATABASE_URL ? await createSchema(realDatabaseUrl) : undefined
  const config = loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    MQTT_BROKER_PORT: '0',
    DATA_DIR: dir.path,
    MQTT_CLIENT_ID: uniqueName('test'),
    // Suites that call routes without tokens; test/auth.test.ts builds with AUTH_DISABLED=false.
    AUTH_DISABLED: 'true',
    RATE_LIMIT_MAX: '0',
    // Devices in tests connect anonymously; test/mqtt-auth.test.ts builds with token / mtls.
    MQTT_DEVICE_AUTH: 'none',
    ...(schema ? { DATABASE_URL: schema.url } : {}),
    ...(realMqttUrl ? { MQTT_URL: realMqttUrl } : {}),
    ...env,
  })
  const app = await buildServer({ config, inMemoryDb: options.inMemoryDb ?? !config.DATABASE_URL })
  await app.ready()
  return {
    app,
    config,
    close: async () => {
      await app.close()
      await schema?.drop()
      dir.remove()
    },
  }
}

/** The URL devices of this test app connect to (embedded broker port, or the real broker). */
export function brokerUrl(t: TestApp): string {
  if (t.config.MQTT_URL) return t.config.MQTT_URL.split(',')[0] as string
  return `mqtt://127.0.0.1:${t.app.embeddedBroker?.port}`
}
