import type { PGlite } from '@electric-sql/pglite'
import fp from 'fastify-plugin'
import { type Kysely, sql } from 'kysely'
import type { Config } from '../../config.ts'
import { connectDatabase, type DbEngine } from './connect.ts'
import { migrateToLatest } from './migrate.ts'
import type { Database } from './schema.ts'

export { backupPglite, backupPostgres, restorePglite, restorePostgres } from './backup.ts'
export { connectDatabase } from './connect.ts'
export { runExclusive } from './exclusive-run.ts'
export { migrateToLatest } from './migrate.ts'
export type { Database } from './schema.ts'
export type { DbEngine }

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<Database>
    dbEngine: DbEngine
    /** The embedded engine itself (backups); null on PostgreSQL. */
    pglite: PGlite | null
  }
}

export interface DbPluginOptions {
  config: Config
  /** PGlite in memory instead of DATA_DIR (tests). */
  inMemory?: boolean
}

/** Kysely on PostgreSQL or PGlite, migrated at start when configured, destroyed on close. */
export const dbPlugin = fp<DbPluginOptions>(
  async (app, { config, inMemory }) => {
    const { db, engine, pglite } = await connectDatabase({
      databaseUrl: config.DATABASE_URL,
      dataDir: config.DATA_DIR,
      poolMax: config.DB_POOL_MAX,
      inMemory,
    })
    app.decorate('db', db)
    app.decorate('dbEngine', engine)
    app.decorate('pglite', pglite ?? null)
    app.addHook('onClose', async () => {
      await db.destroy()
    })
    if (config.DB_MIGRATE_ON_START) {
      const applied = await migrateToLatest(db)
      if (applied.length > 0) app.log.info({ applied }, 'database migrated')
    }
    app.readiness.add('database', async () => {
      await sql`select 1`.execute(db)
    })
    app.log.info({ engine }, 'database ready')
  },
  { name: 'db', dependencies: ['readiness'] },
)
