import { type Kysely, sql } from 'kysely'

/**
 * The dedup windows' payload digests by block (module ingest, seq-digests.ts): a checkpoint writes
 * the 256-byte blocks that changed instead of every window whole inside its state (version 3 of
 * device_seq_tracking.state; version 2, with the digests in it, is still read). `boot` 0 holds the
 * current boot's digests, 1 the previous boot's.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table device_seq_digests (
      device_pk integer not null references devices (id) on delete cascade,
      boot smallint not null check (boot in (0, 1)),
      block integer not null,
      digests bytea not null,
      primary key (device_pk, boot, block)
    )`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table device_seq_digests`.execute(db)
}
