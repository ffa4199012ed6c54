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
  let { error, results } = await migrator.migrateToLatest()
  // Kysely's introspection reads the tables of every schema of the database, qualifying them by
  // name: a schema another client drops meanwhile (another app's, a test's) fails it with
  // "schema … does not exist" before any migration ran. That is not ours: try again.
  for (let attempt = 0; attempt < 3 && droppedElsewhere(error, rows[0]?.schema); attempt++) {
    ;({ error, results } = await migrator.migrateToLatest())
  }
  const failed = results?.find((r) => r.status === 'Error')
  if (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${reason}`)
  }
  return (results ?? []).map((r) => r.migrationName)
}

/** The error names a schema that is not the app's own (dropped by another client while introspecting). */
function droppedElsewhere(error: unknown, own: string | undefined): boolean {
  const match = /schema "([^"]+)" does not exist/.exec(
    error instanceof Error ? error.message : String(error ?? ''),
  )
  return match !== null && match[1] !== own
}
