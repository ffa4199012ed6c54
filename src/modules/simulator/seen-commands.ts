import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** Executed commands remembered at most (the oldest go first; their `exp` has long passed). */
const SEEN_MAX = 1000

/**
 * The cmd_ids a device executed, with their expiry, kept on disk when it has a path (a reboot
 * must not make a captured command playable again): a replay inside its validity is caught here,
 * one after it by its `exp`. Bounded: entries past their expiry are dropped, at most SEEN_MAX kept.
 */
export class SeenCommands {
  private readonly seen = new Map<string, number>()

  constructor(private readonly path?: string) {
    if (!path) return
    try {
      const saved = JSON.parse(readFileSync(path, 'utf8')) as [string, number][]
      for (const [id, exp] of saved)
        if (typeof id === 'string' && Number.isFinite(exp)) this.seen.set(id, exp)
    } catch {
      // None yet (or unreadable): start empty; expiry still bounds a replay.
    }
  }

  has(cmdId: string): boolean {
    return this.seen.has(cmdId)
  }

  /** Remembers an executed command until `exp` (+ tolerance), durably before it is acted on. */
  add(cmdId: string, expMs: number, now: number): void {
    for (const [id, exp] of this.seen) if (exp < now) this.seen.delete(id)
    this.seen.set(cmdId, expMs)
    while (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.keys().next().value as string)
    if (!this.path) return
    mkdirSync(dirname(this.path), { recursive: true })
    const tmp = `${this.path}.tmp`
    writeFileSync(tmp, JSON.stringify([...this.seen]))
    renameSync(tmp, this.path)
  }
}
