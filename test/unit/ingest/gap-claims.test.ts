import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { confirmGaps, confirmGapsMany } from '../../../src/modules/ingest/gap-claims.ts'
import type { SeqRun } from '../../../src/modules/telemetry/index.ts'
import { build, type TestApp } from '../../helpers/build.ts'
import { registerDevice } from '../../helpers/device.ts'
import { uniqueName } from '../../helpers/env.ts'

type SeqAsk = { devicePk: number; run: SeqRun }

// Issue 15: gap claims ask the telemetry store for stored seqs (PostgreSQL or InfluxDB alike),
// never the PostgreSQL table behind its back.
describe('gap claims ask the telemetry store they are given', () => {
  let t: TestApp
  before(async () => {
    t = await build()
  })
  after(() => t.close())

  test('seqs the store holds are taken out of the hole; the rest is declared once', async () => {
    const pk = (await registerDevice(t, uniqueName('claims'))).id
    const asked: SeqRun[] = []
    const store = {
      storedSeqsMany: async (asks: readonly SeqAsk[]) =>
        asks.map(({ devicePk, run }) => {
          assert.equal(devicePk, pk)
          asked.push(run)
          return new Set([2, 3])
        }),
    }
    const now = Date.now()
    const hole = { from: 1, to: 5, fromTs: now - 10_000, toTs: now, since: now }
    const declared = await confirmGaps(t.app.db, pk, [hole], 'me', store)
    assert.deepEqual(asked, [{ from: 1, to: 5, fromTs: now - 10_000, toTs: now }])
    assert.deepEqual(
      declared.map((r) => [r.from, r.to]),
      [
        [1, 1],
        [4, 5],
      ],
    )
    // Another replica finds the pieces claimed, and declares nothing.
    assert.deepEqual(await confirmGaps(t.app.db, pk, [hole], 'other', store), [])
  })

  test('a hole the store holds whole is no gap', async () => {
    const pk = (await registerDevice(t, uniqueName('claims'))).id
    const now = Date.now()
    const hole = { from: 7, to: 8, fromTs: now - 10_000, toTs: now, since: now }
    const store = { storedSeqsMany: async (asks: readonly SeqAsk[]) => asks.map(() => new Set([7, 8])) }
    assert.deepEqual(await confirmGaps(t.app.db, pk, [hole], 'me', store), [])
  })
  test('the holes of many devices are looked up in one call; only holes left take a claim', async () => {
    const pks: number[] = []
    for (let i = 0; i < 3; i++) pks.push((await registerDevice(t, uniqueName('claims'))).id)
    const now = Date.now()
    const hole = (seq: number) => ({ from: seq, to: seq, fromTs: now - 10_000, toTs: now, since: now })
    const calls: SeqAsk[][] = []
    // What a shared subscription leaves: every other seq is another replica's, stored; seq 9 is lost.
    const store = {
      storedSeqsMany: async (asks: readonly SeqAsk[]) => {
        calls.push([...asks])
        return asks.map(({ run }) => new Set(run.from === 9 ? [] : [run.from]))
      },
    }
    const expired = new Map(
      pks.map((pk, i) => [pk, i === 2 ? [hole(1), hole(3), hole(9)] : [hole(1), hole(3)]]),
    )
    const result = await confirmGapsMany(t.app.db, expired, 'me', store)
    assert.equal(calls.length, 1)
    assert.equal(calls[0]?.length, 7)
    assert.deepEqual(
      pks.map((pk) => (result.get(pk) as { from: number }[]).map((r) => r.from)),
      [[], [], [9]],
    )
  })
})
