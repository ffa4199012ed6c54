import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PostgresDialect } from 'kysely'
import { defineConfig } from 'kysely-ctl'
import { PGliteDialect } from 'kysely-pglite-dialect'
import pg from 'pg'
import { loadConfig } from './src/config.ts'

// `npm run db:migrate` uses the same configuration as the server: DATABASE_URL, or PGlite under DATA_DIR.
const config = loadConfig()

function dialect() {
  if (config.DATABASE_URL) {
    return new PostgresDialect({ pool: new pg.Pool({ connectionString: config.DATABASE_URL, max: 1 }) })
  }
  const dir = join(config.DATA_DIR, 'pglite')
  mkdirSync(dir, { recursive: true })
  return new PGliteDialect(new PGlite(dir))
}

export default defineConfig({
  dialect: dialect(),
  migrations: { migrationFolder: 'migrations' },
})
