import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { sql } from 'kysely'
import { insertGaps, markDirty } from '../../../src/modules/telemetry/energy-repository.ts'
import { suiteWithDevice } from '../../helpers/device.ts'

// Issue 16 row 9: a statement built from a batch must never pass PostgreSQL's 65,535 bind
// parameters (the count wraps: "bind message has N parameter formats but 0 parameters"), which
// made the ingest retry one batch forever. Each statement here gets more rows than would fit.
const OVER = 70_000

describe('telemetry statements past 65,535 bind parameters', () => {
  const suite = suiteWithDevice('bind')

  test('insertGaps: 14,000 gaps (70,000 values) in one call; a deleted device’s gaps are skipped (row 10)', async () => {
    const gaps = Array.from({ length: OVER / 5 }, (_, i) => ({
      devicePk: suite.pk,
      fromSeq: i * 10,
      toSeq: i * 10 + 5,
      fromTs: Date.now() - 3_600_000 + i,
      toTs: Date.now() - 3_600_000 + i + 1,
    }))
    await insertGaps(suite.t.app.db, [...gaps, { ...gaps[0], devicePk: 999_999 } as (typeof gaps)[number]])
    const n = await sql<{
      n: number
    }>`select count(*)::int as n from seq_gaps where device_pk = ${suite.pk}::int`.execute(suite.t.app.db)
    assert.equal(Number(n.rows[0]?.n), gaps.length)
  })

  test('markDirty: 70,000 marks (140,000 values) in one call', async () => {
    const marks = Array.from({ length: OVER }, (_, i) => ({
      pk: i % 2 ? suite.pk : 999_999,
      start: Date.UTC(2026, 0, 1) + i * 60_000,
    }))
    await markDirty(suite.t.app.db, marks)
    const n = await sql<{
      n: number
    }>`select count(*)::int as n from energy_dirty where device_pk = ${suite.pk}::int`.execute(suite.t.app.db)
    assert.equal(Number(n.rows[0]?.n), OVER / 2)
  })
})
