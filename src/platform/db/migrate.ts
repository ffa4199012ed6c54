import { promises as fs } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FileMigrationProvider, type Kysely, Migrator, sql } from 'kysely'

/** migrations/ at the repository root, or dist/migrations when running the compiled build. */
export const migrationFolder = fileURLToPath(new URL('../../../migrations', import.meta.url))

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(
  // biome-ignore lint/suspicious/noExplicitAny: the migrator works on any schema
  db: Kysely<any>,
): Promise<string[]> {
  // Name the schema explicitly: Kysely otherwise finds its lock table in any schema of the database.
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
  const migrator = new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder }),
    migrationTableSchema: rows[0]?.schema ?? 'public',
  })
  const { error, results } = await migrator.migrateToLatest()
  const failed = results?.find((r) => r.status === 'Error')
  if (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${reason}`)
  }
  return (results ?? []).map((r) => r.migrationName)
}
