/**
 * Runs an async task every `everyMs`, the next run starting only after the previous one ended;
 * a failure is reported and the task simply runs again next time. `stop` waits for a run in progress.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | null = null
  private stopped = false

  constructor(
    private readonly task: () => Promise<unknown>,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(everyMs: number): void {
    const tick = () => {
      this.running = this.task()
        .then(() => undefined)
        .catch(this.onError)
        .finally(() => {
          this.running = null
          if (!this.stopped) this.timer = setTimeout(tick, everyMs)
        })
    }
    this.timer = setTimeout(tick, everyMs)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }
}
