import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { Kysely, PostgresDialect } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import pg from 'pg'
import type { Database } from './schema.ts'

export type DbEngine = 'postgres' | 'pglite'

export interface DbOptions {
  databaseUrl?: string
  dataDir: string
  poolMax: number
  /** PGlite only: keep the database in memory (tests). */
  inMemory?: boolean
}

// bigint (int8) arrives as a string from pg; counts and bigserial ids here stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))

/** Kysely instances over an embedded PGlite: one process, one connection (see exclusive-run.ts). */
const embedded = new WeakSet<Kysely<Database>>()
export const isEmbedded = (db: Kysely<Database>) => embedded.has(db)

/** Opens kysely on PostgreSQL when a URL is given, otherwise on an embedded PGlite under dataDir. */
export async function connectDatabase(
  options: DbOptions,
): Promise<{ db: Kysely<Database>; engine: DbEngine; pglite?: PGlite }> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolMax })
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', () => {})
    // A checked-out client (held by a transaction, or between a query and its release) has no
    // listener of the pool's: its connection dropping would be an uncaught 'error' that closes the
    // process. The query in progress gets the error itself; the pool discards the dead client.
    pool.on('connect', (client) => client.on('error', () => {}))
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), engine: 'postgres' }
  }
  let pglite: PGlite
  if (options.inMemory) {
    pglite = new PGlite()
  } else {
    const dir = join(options.dataDir, 'pglite')
    mkdirSync(dir, { recursive: true })
    pglite = new PGlite(dir)
  }
  await pglite.waitReady
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) })
  embedded.add(db)
  return { db, engine: 'pglite', pglite }
}
