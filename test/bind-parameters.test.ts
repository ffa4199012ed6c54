import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { applyActivity } from '../src/modules/devices/activity.ts'
import { DevicesService } from '../src/modules/devices/service.ts'
import { confirmGaps } from '../src/modules/ingest/gap-claims.ts'
import { loadSeqStates, saveSeqStates } from '../src/modules/ingest/seq-state-repository.ts'
import { insertGaps, markDirty } from '../src/modules/telemetry/energy-repository.ts'
import { build, type TestApp } from './helpers/build.ts'
import { registerDevice } from './helpers/device.ts'
import { uniqueName } from './helpers/env.ts'

// Issue 16 row 9: a statement built from a batch must never pass PostgreSQL's 65,535 bind
// parameters (the count wraps: "bind message has N parameter formats but 0 parameters"), which
// made the ingest retry one batch forever. Each statement here gets more rows than would fit.
const OVER = 70_000

describe('multi-row statements past 65,535 bind parameters', () => {
  let t: TestApp
  let pk: number
  before(async () => {
    t = await build()
    pk = (await registerDevice(t, uniqueName('bind'))).id
  })
  after(() => t.close())

  test('insertGaps: 14,000 gaps (70,000 values) in one call', async () => {
    const gaps = Array.from({ length: OVER / 5 }, (_, i) => ({
      devicePk: pk,
      fromSeq: i * 10,
      toSeq: i * 10 + 5,
      fromTs: Date.now() - 3_600_000 + i,
      toTs: Date.now() - 3_600_000 + i + 1,
    }))
    await insertGaps(t.app.db, gaps)
    const n = await sql<{
      n: number
    }>`select count(*)::int as n from seq_gaps where device_pk = ${pk}::int`.execute(t.app.db)
    assert.equal(Number(n.rows[0]?.n), gaps.length)
  })

  test('markDirty, applyActivity, load/saveSeqStates and lookupMany with more rows than parameters allow', async () => {
    const pks = Array.from({ length: OVER }, (_, i) => (i === 0 ? pk : 1_000_000 + i))
    await markDirty(
      t.app.db,
      pks.map((p, i) => ({ pk: p, start: Date.UTC(2026, 0, 1) + i * 60_000 })),
    )
    const changed = await applyActivity(
      t.app.db,
      pks
        .slice(0, OVER / 4)
        .map((p) => ({ devicePk: p, lastSeen: new Date(), connection: 'online' as const })),
    )
    assert.deepEqual(
      changed.map((c) => c.devicePk),
      [pk],
    )
    const state = { high: 5, bits: '', missing: [] }
    await saveSeqStates(
      t.app.db,
      pks.map((p) => ({ pk: p, state: state as never })),
    )
    const loaded = await loadSeqStates(t.app.db, pks)
    assert.deepEqual([...loaded.keys()], [pk])
    const ids = Array.from({ length: OVER }, (_, i) => `nobody-${i}`)
    const devices = new DevicesService(t.app.db)
    assert.equal((await devices.lookupMany(ids)).size, 0)
    assert.equal((await devices.configsByPk(pks)).size, 1)
  })

  test('row 10: gaps of a deleted device are neither claimed nor inserted (no foreign-key error)', async () => {
    const gone = (await registerDevice(t, uniqueName('gone'))).id
    await sql`delete from devices where id = ${gone}::int`.execute(t.app.db)
    const range = { from: 1, to: 3, fromTs: Date.now() - 10_000, toTs: Date.now(), since: Date.now() }
    assert.deepEqual(await confirmGaps(t.app.db, gone, [range], 'me'), [])
    await insertGaps(t.app.db, [
      { devicePk: gone, fromSeq: 1, toSeq: 3, fromTs: range.fromTs, toTs: range.toTs },
    ])
  })
})
