const MAX_SEQ = 2 ** 32 - 1

/** The `seq` of PROTOCOL.md: 0 at power-on, +1 per message of any type, wraps after 2^32 − 1. */
export class SequenceCounter {
  private value: number

  constructor(start = 0) {
    this.value = start
  }

  /** Returns the seq of the next message and advances. */
  next(): number {
    const current = this.value
    this.value = current === MAX_SEQ ? 0 : current + 1
    return current
  }

  /** A reboot: the next message carries 0 again. */
  reset(): void {
    this.value = 0
  }
}
