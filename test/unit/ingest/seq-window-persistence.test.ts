import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { type DigestBlock, SeqWindow, type SeqWindowState } from '../../../src/modules/ingest/seq-window.ts'

// Not a multiple of the 64-slot block: the last block is a short one.
const SIZE = 202
const T0 = Date.parse('2026-06-01T12:00:00Z')

type Message = { kind: 'message'; seq: number; dt: number; digest: number }
type Op = Message | { kind: 'online' } | { kind: 'save' } | { kind: 'failedSave' }

// Seqs mostly moving on, sometimes back (late, copies, reboots), with a few digests (copies vs conflicts).
const message = fc.record({
  kind: fc.constant('message' as const),
  seq: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 600 }) }, fc.integer({ min: 0, max: 5 })),
  dt: fc.integer({ min: -2000, max: 5000 }),
  digest: fc.integer({ min: 1, max: 3 }),
})
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 12, arbitrary: message },
  { weight: 1, arbitrary: fc.constant({ kind: 'online' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'save' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'failedSave' as const }) },
)

/** What the database holds: the last state saved, and every digest block written (upserts). */
class SavedRows {
  state: SeqWindowState | undefined
  readonly blocks = new Map<string, DigestBlock>()
  write(state: SeqWindowState, blocks: DigestBlock[]): void {
    this.state = JSON.parse(JSON.stringify(state))
    for (const b of blocks) this.blocks.set(`${b.boot}:${b.block}`, b)
  }
  load(): SeqWindow {
    return SeqWindow.fromState(SIZE, this.state, [...this.blocks.values()])
  }
}

/** Applies an op's message to a window; returns what it says. */
function apply(w: SeqWindow, o: Op, at: { ts: number }): string {
  if (o.kind === 'online') {
    w.noteOnline()
    return 'online'
  }
  if (o.kind !== 'message') return o.kind
  at.ts += o.dt
  const verdict = w.check(o.seq, at.ts, o.digest, at.ts)
  return `${verdict}${w.seenOther ? '+other' : ''}`
}

/** What a window says about the next messages (and how it ends up): compared between two windows. */
function probe(w: SeqWindow, messages: Op[], ts: number): string[] {
  const at = { ts }
  const out = messages.map((m) => apply(w, m, at))
  const missing = w.missing.map((r) => `${r.from}-${r.to}@${r.fromTs}-${r.toTs}`).join(',')
  return [...out, `high ${w.high} ${w.highTs} boot ${w.bootSeq} ${w.bootTs}`, missing]
}

function replayed(ops: Op[]): SeqWindow {
  const w = new SeqWindow(SIZE)
  const at = { ts: T0 }
  for (const o of ops) apply(w, o, at)
  return w
}

/** A state as JSON without the times holes were noticed (a reboot's is the clock's, not the test's). */
const withoutSince = (state: SeqWindowState | undefined) =>
  JSON.parse(JSON.stringify(state, (key, value) => (key === 'since' ? undefined : value)))

test('a window saved as its state and the digest blocks that changed reads back as it was', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 250 }), (ops) => {
      const live = new SeqWindow(SIZE)
      const rows = new SavedRows()
      const at = { ts: T0 }
      /** The ops applied up to the last successful save, and the ts then. */
      let savedUpTo = 0
      let savedTs = T0
      ops.forEach((o, i) => {
        apply(live, o, at)
        if (o.kind === 'failedSave') {
          // Taken for a checkpoint that failed: its blocks must be written by the next save.
          const taken = live.takeChangedBlocks()
          live.toState()
          live.giveBackBlocks(taken)
        }
        if (o.kind !== 'save') return
        rows.write(live.toState(), live.takeChangedBlocks())
        savedUpTo = i + 1
        savedTs = at.ts
        // The same history replayed into a window never saved: every one of its blocks (all count
        // as changed) must be in the rows as it is, and its state too.
        const twin = replayed(ops.slice(0, savedUpTo))
        for (const b of twin.takeChangedBlocks())
          assert.equal(
            rows.blocks.get(`${b.boot}:${b.block}`)?.base64,
            b.base64,
            `block ${b.boot}:${b.block}`,
          )
        assert.deepEqual(withoutSince(rows.state), withoutSince(twin.toState()))
        // And the window read back answers the next messages as that one does.
        const next = ops.slice(i + 1, i + 40).filter((p) => p.kind === 'message')
        assert.deepEqual(
          probe(rows.load(), next, savedTs),
          probe(replayed(ops.slice(0, savedUpTo)), next, savedTs),
        )
      })
    }),
    { numRuns: 300 },
  )
})

test('a state of version 2 (digests inside, as base64) is read, and all its blocks are saved next', () => {
  const digests = new Uint32Array(SIZE)
  digests[5] = 77
  const state = {
    version: 2,
    high: 5,
    highTs: T0,
    bootSeq: 0,
    bootTs: T0 - 5000,
    digests: Buffer.from(digests.buffer).toString('base64'),
    missing: [],
    prev: null,
    uptime: null,
    expectReboot: false,
  } as SeqWindowState
  const w = SeqWindow.fromState(SIZE, state)
  assert.equal(w.check(5, T0, 77, T0), 'duplicate')
  assert.equal(w.check(5, T0, 78, T0), 'conflict')
  assert.deepEqual(
    w.takeChangedBlocks().map((b) => [b.boot, b.block, Buffer.from(b.base64, 'base64').length]),
    [
      [0, 0, 256],
      [0, 1, 256],
      [0, 2, 256],
      [0, 3, 40],
    ],
  )
  assert.equal(w.toState().version, 3)
  assert.equal(w.toState().digests, undefined)
})

test('a window of another size starts afresh', () => {
  const w = new SeqWindow(SIZE)
  w.check(3, T0, 9, T0)
  const rows = new SavedRows()
  rows.write(w.toState(), w.takeChangedBlocks())
  const other = SeqWindow.fromState(SIZE + 64, rows.state, [...rows.blocks.values()])
  assert.equal(other.check(3, T0, 9, T0), 'conflict')
  assert.equal(rows.load().check(3, T0, 9, T0), 'duplicate')
})
