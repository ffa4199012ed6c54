/** The connection of a refused client; only its 'close' matters here. */
interface Closable {
  once(event: 'close', listener: () => void): unknown
  off(event: 'close', listener: () => void): unknown
}

/**
 * Holds refused CONNECTs for `delayMs` before their CONNACK is sent, so a client that waits for
 * its answer (any MQTT client does) makes at most one attempt per delay and connection. At most
 * `maxHeld` are held at once — each holds a socket — beyond that they are refused at once.
 */
export class RefusalDelay {
  private heldNow = 0

  constructor(
    private readonly delayMs: number,
    private readonly maxHeld: number,
  ) {}

  /** Runs `refuse` after the delay; at once when off or full; early when the client hangs up. */
  hold(conn: Closable, refuse: () => void): void {
    if (this.delayMs === 0 || this.heldNow >= this.maxHeld) {
      refuse()
      return
    }
    this.heldNow++
    const release = () => {
      clearTimeout(timer)
      conn.off('close', release)
      this.heldNow--
      refuse()
    }
    const timer = setTimeout(release, this.delayMs)
    // The socket keeps the process alive while it is open; a held refusal alone must not.
    timer.unref()
    conn.once('close', release)
  }

  /** Refusals waiting for their delay now (bounded by `maxHeld`). */
  get held(): number {
    return this.heldNow
  }
}
