import type { FastifyBaseLogger } from 'fastify'
import type { Journal } from './journal.ts'

type Done = (error?: Error) => void

/** A commit within this long of the previous one means load: the next group waits COMMIT_DELAY_MS. */
const COMMIT_BUSY_MS = 5
const COMMIT_DELAY_MS = 2

/**
 * The journal's group commit: the messages appended in one event-loop turn are written together,
 * and only then acknowledged (a message is acknowledged only once its group is on disk).
 */
export class JournalCommitter {
  /** Acknowledgements waiting for the journal commit, and what runs right after it. */
  private awaitingCommit: Done[] = []
  private commitHooks: Done[] = []
  private commitScheduled = false
  private lastCommitAt = Number.NEGATIVE_INFINITY

  constructor(
    private readonly journal: Journal,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Calls `done` once the open group is committed (with the commit's error if it failed). */
  ackAfterCommit(done: Done): void {
    this.awaitingCommit.push(done)
    this.schedule()
  }

  /**
   * Runs `hook` right after the next journal commit, with the commit's error if it failed: the
   * intake holds a broker connection's acknowledgements back (corked) until then.
   */
  afterCommit(hook: Done): void {
    this.commitHooks.push(hook)
    this.schedule()
  }

  schedule(): void {
    if (this.commitScheduled) return
    this.commitScheduled = true
    // After every message that arrived in this event-loop turn: one write for all of them. Under
    // load, when messages trickle in one per turn (many devices, each message its own packet), the
    // group stays open a little longer so that it still holds many (as commit_delay does for
    // PostgreSQL's WAL): fewer writes here, and fewer, fuller PUBACK writes to the broker.
    if (performance.now() - this.lastCommitAt < COMMIT_BUSY_MS)
      setTimeout(() => this.commit(), COMMIT_DELAY_MS)
    else setImmediate(() => this.commit())
  }

  /** Writes the journal's open group, then lets its acknowledgements go (or fails them). */
  commit(): void {
    this.commitScheduled = false
    this.lastCommitAt = performance.now()
    const dones = this.awaitingCommit
    const hooks = this.commitHooks
    this.awaitingCommit = []
    this.commitHooks = []
    let failed: Error | undefined
    try {
      this.journal.commit()
    } catch (error) {
      failed = error instanceof Error ? error : new Error(String(error))
      this.log.error({ err: failed }, 'ingest journal write failed; the messages are not acknowledged')
    }
    for (const hook of hooks) hook(failed)
    for (const done of dones) done(failed)
  }
}
