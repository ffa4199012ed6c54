/**
 * At most `perWindow` log lines per `windowMs`; the rest are counted and reported in one line when
 * the window ends — a flood of refusals must not turn into a flood of synchronous log writes.
 */
export class LogBudget {
  private used = 0
  private suppressed = 0
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly summary: (suppressed: number) => void,
  ) {}

  /** True when this line may be written now. */
  take(): boolean {
    if (!this.timer) {
      this.timer = setTimeout(() => this.endWindow(), this.windowMs)
      this.timer.unref()
    }
    if (this.used < this.perWindow) {
      this.used++
      return true
    }
    this.suppressed++
    return false
  }

  private endWindow(): void {
    this.timer = undefined
    this.used = 0
    if (this.suppressed > 0) this.summary(this.suppressed)
    this.suppressed = 0
  }
}
