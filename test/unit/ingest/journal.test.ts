import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Journal } from '../../../src/modules/ingest/journal.ts'

const dirs: string[] = []
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-'))
  dirs.push(dir)
  return dir
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const payloadOf = (i: number) => Buffer.from(JSON.stringify({ seq: i, text: 'x'.repeat(i % 50) }))

describe('ingest journal (group commit)', () => {
  test('appended records reach the disk at commit, all in one group, and replay with their ids', () => {
    const dir = freshDir()
    const journal = new Journal(dir)
    assert.deepEqual(journal.open(), [])
    const ids = []
    for (let i = 0; i < 100; i++) ids.push(journal.append(`iot/d${i}/telemetry`, payloadOf(i), 1000 + i).id)
    assert.equal(journal.uncommitted, 100)
    const bytesOnDisk = () => readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0)
    assert.equal(bytesOnDisk(), 0, 'nothing is on disk before the commit')
    journal.commit()
    assert.ok(bytesOnDisk() > 100 * 20)
    assert.equal(journal.uncommitted, 0)
    // A crash after the commit (no close): every record is there, in order, with its id.
    const replayed = new Journal(dir).open()
    assert.equal(replayed.length, 100)
    assert.deepEqual(
      replayed.map((r) => r.id),
      ids,
    )
    for (const [i, r] of replayed.entries()) {
      assert.equal(r.topic, `iot/d${i}/telemetry`)
      assert.equal(r.receivedAt, 1000 + i)
      assert.deepEqual(r.payload, payloadOf(i))
    }
  })

  test('the payload view returned by append is the record written, not the caller buffer', () => {
    const journal = new Journal(freshDir())
    journal.open()
    const input = Buffer.from('{"a":1}')
    const { payload } = journal.append('iot/a/telemetry', input, 1)
    input.fill(0)
    assert.equal(payload.toString(), '{"a":1}')
    journal.close()
  })

  test('a slab is appended to again only once its records are settled; the records on disk stay whole', () => {
    const dir = freshDir()
    const journal = new Journal(dir)
    journal.open()
    // 100 KB payloads: two records a 256 KB slab.
    const payload = (i: number) => Buffer.alloc(100_000, i)
    const views = new Map<number, Buffer>()
    const append = (i: number) => views.set(i, journal.append('iot/d/telemetry', payload(i), i).payload)
    for (let i = 1; i <= 6; i++) append(i)
    journal.commit()
    journal.settle(2) // the first slab (records 1 and 2) is free
    append(7)
    append(8)
    assert.equal(views.get(7)?.buffer, views.get(1)?.buffer, 'record 7 went into the settled slab')
    for (let i = 3; i <= 8; i++) assert.ok(views.get(i)?.equals(payload(i)), `record ${i} unchanged`)
    journal.close()
    const replayed = new Journal(dir).open()
    assert.deepEqual(
      replayed.map((r) => [r.id, r.payload.equals(payload(r.receivedAt))]),
      [1, 2, 3, 4, 5, 6, 7, 8].map((i) => [i, true]),
    )
  })

  test('segments rotate at their size; settled segments are deleted; ids stay consistent across them', () => {
    const dir = freshDir()
    const journal = new Journal(dir, 500)
    journal.open()
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 5; i++) journal.append('iot/d/telemetry', payloadOf(round * 5 + i), round)
      journal.commit()
    }
    const segments = readdirSync(dir).length
    assert.ok(segments > 2, `rotated into ${segments} segments`)
    const replayed = new Journal(dir).open()
    assert.deepEqual(
      replayed.map((r) => r.id),
      Array.from({ length: 50 }, (_, i) => i + 1),
    )
    assert.deepEqual(
      replayed.map((r) => JSON.parse(r.payload.toString()).seq),
      Array.from({ length: 50 }, (_, i) => i),
    )
    journal.settle(30)
    const left = new Journal(dir).open()
    assert.ok(left[0] && left[0].id <= 31 && left[0].id > 1, `the oldest kept record is ${left[0]?.id}`)
    assert.equal(left.at(-1)?.id, 50)
    journal.close()
  })

  test('a failed write (ENOSPC) throws, drops only that group, and the journal goes on in a new segment', () => {
    const dir = freshDir()
    // Records of ~50 bytes; at 40 bytes a segment rotates after each commit.
    const journal = new Journal(dir, 40)
    journal.open()
    journal.append('iot/d/telemetry', payloadOf(1), 1)
    // The segment the rotation opens next is a device that refuses every write.
    symlinkSync('/dev/full', join(dir, `segment-${String(2).padStart(15, '0')}.log`))
    journal.commit()
    journal.append('iot/d/telemetry', payloadOf(2), 2)
    journal.append('iot/d/telemetry', payloadOf(3), 3)
    assert.throws(() => journal.commit(), /ENOSPC/)
    journal.append('iot/d/telemetry', payloadOf(4), 4)
    journal.commit()
    rmSync(join(dir, `segment-${String(2).padStart(15, '0')}.log`))
    const replayed = new Journal(dir).open()
    assert.deepEqual(
      replayed.map((r) => [r.id, JSON.parse(r.payload.toString()).seq]),
      [
        [1, 1],
        [4, 4],
      ],
      'records 2 and 3 were never acknowledged: the broker delivers them again',
    )
    journal.close()
  })
})
