import { type Kysely, sql } from 'kysely'

/**
 * Energy registers split by direction (issue 14): apparent energy import/export, the four reactive
 * quadrants (IEC 62053-23) and reactive energy without sign information. Every stored interval is
 * marked for recomputation: the new rules (each sample stands for one cadence, seq holes no longer
 * stop integration) change registers computed before.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table energy_intervals
      add column apparent_import_vah float8, add column apparent_export_vah float8,
      add column reactive_import_inductive_varh float8, add column reactive_import_capacitive_varh float8,
      add column reactive_export_inductive_varh float8, add column reactive_export_capacitive_varh float8,
      add column reactive_unsigned_varh float8`.execute(db)
  await sql`
    insert into energy_dirty (device_pk, start, marked_at)
    select device_pk, start, clock_timestamp() from energy_intervals
    on conflict (device_pk, start) do nothing`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    alter table energy_intervals
      drop column apparent_import_vah, drop column apparent_export_vah,
      drop column reactive_import_inductive_varh, drop column reactive_import_capacitive_varh,
      drop column reactive_export_inductive_varh, drop column reactive_export_capacitive_varh,
      drop column reactive_unsigned_varh`.execute(db)
}
