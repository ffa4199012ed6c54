/**
 * The lifetime of a view: its timers and requests end when the user leaves it. `every` polls
 * without overlap (the next run is scheduled when one ends), pauses while the tab is hidden, and
 * backs off when the server rate-limits or cannot be reached.
 */
export function createScope() {
  const controller = new AbortController()
  const cleanups = []
  const alive = () => !controller.signal.aborted

  function every(delay, fn) {
    let timer
    let running = false
    let again = false
    let backoff = 1
    const nextDelay = () => (typeof delay === 'function' ? delay() : delay) * backoff
    const schedule = () => {
      clearTimeout(timer)
      if (alive()) timer = setTimeout(run, nextDelay())
    }
    async function run() {
      if (!alive() || running) return
      if (document.hidden) return schedule()
      running = true
      try {
        await fn()
        backoff = 1
      } catch (error) {
        if (error?.name === 'AbortError') return
        backoff = error?.status === 429 || error?.status === 0 ? Math.min(backoff * 2, 8) : 1
      } finally {
        running = false
        if (again && alive()) {
          again = false
          timer = setTimeout(run, 0)
        } else schedule()
      }
    }
    const onVisible = () => {
      if (!document.hidden) run()
    }
    document.addEventListener('visibilitychange', onVisible)
    cleanups.push(() => {
      clearTimeout(timer)
      document.removeEventListener('visibilitychange', onVisible)
    })
    run()
    return {
      /** Runs now (e.g. right after the user changed something), then on the usual rhythm. */
      now() {
        if (running) again = true
        else {
          clearTimeout(timer)
          run()
        }
      },
    }
  }

  return {
    signal: controller.signal,
    alive,
    every,
    onDispose: (fn) => cleanups.push(fn),
    dispose() {
      controller.abort()
      for (const fn of cleanups.splice(0)) fn()
    },
  }
}
