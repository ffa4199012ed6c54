/** Dirty intervals of one device computed together from the samples in [from, to). */
export interface DirtyRun {
  devicePk: number
  starts: number[]
  from: number
  to: number
  maxGapMs: number
}

/** Runs are joined when that reads at most this many intervals of samples no dirty interval needs. */
const JOIN_WITHIN_INTERVALS = 2

/**
 * A device's dirty interval starts as runs of nearby intervals. A run reads one max gap before its
 * first interval (a sample there may hold into it) and one after its last (the sample closing the
 * last segment), so each interval comes out as if all samples had been read; two dirty intervals a
 * month apart are two short reads, not a month of samples.
 */
export function dirtyRuns(
  devicePk: number,
  starts: number[],
  intervalMs: number,
  maxGapMs: number,
): DirtyRun[] {
  const runs: DirtyRun[] = []
  for (const start of [...new Set(starts)].sort((a, b) => a - b)) {
    const last = runs[runs.length - 1]
    const to = start + intervalMs + maxGapMs
    if (last && start - maxGapMs <= last.to + JOIN_WITHIN_INTERVALS * intervalMs) {
      last.starts.push(start)
      last.to = to
    } else {
      runs.push({ devicePk, starts: [start], from: start - maxGapMs, to, maxGapMs })
    }
  }
  return runs
}
