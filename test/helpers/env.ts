import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

/**
 * The two modes of the suite. Embedded (default): PGlite in memory + aedes on a free port.
 * Real: TEST_DATABASE_URL (PostgreSQL; each suite gets its own schema) and TEST_MQTT_URL (a broker).
 */
export const realDatabaseUrl = process.env.TEST_DATABASE_URL
export const realMqttUrl = process.env.TEST_MQTT_URL
export const mode = realDatabaseUrl ? 'real' : 'embedded'

export const uniqueName = (prefix: string) => `${prefix}_${randomBytes(5).toString('hex')}`

/** A PostgreSQL schema of the suite's own on the real database; dropped by the returned cleanup. */
export async function createSchema(baseUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = uniqueName('t')
  const admin = new pg.Client({ connectionString: baseUrl })
  await admin.connect()
  await admin.query(`create schema ${schema}`)
  await admin.end()
  const url = new URL(baseUrl)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: baseUrl })
      await c.connect()
      await c.query(`drop schema if exists ${schema} cascade`)
      await c.end()
    },
  }
}

/** A temporary directory removed by the returned cleanup. */
export function tempDir(prefix = 'iot-meter-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}
