import { type Kysely, sql } from 'kysely'

/**
 * The last run of each background job (module retention): when, on which replica, and what it
 * did. A restarted replica reads it (the job's state lives here, not in memory); GET /api/retention
 * shows it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('maintenance_runs')
    .addColumn('job', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('replica', 'text', (c) => c.notNull())
    .addColumn('ok', 'boolean', (c) => c.notNull())
    .addColumn('result', 'jsonb', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('maintenance_runs').ifExists().execute()
}
