import { h } from './dom.js'
import { number } from './format.js'

/** uPlot's browser build, loaded by index.html from /vendor/uplot/ (served from node_modules). */
const uPlot = globalThis.uPlot
const HEIGHT = 220

const cssVar = (name, fallback) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback

/** Time axis and value axis in the page's colours (light or dark). */
function axes() {
  const text = cssVar('--muted', '#666')
  const grid = { stroke: cssVar('--grid', 'rgba(128,128,128,0.2)') }
  return [
    { stroke: text, grid, ticks: grid },
    { stroke: text, grid, ticks: grid, size: 64, values: tickValues },
  ]
}

/** Axis labels with as many decimals as the tick step needs, and thousands separators. */
const tickValues = (_u, values, _axis, _space, step) => {
  const digits = step > 0 && step < 1 ? Math.min(4, Math.ceil(-Math.log10(step))) : 0
  return values.map((v) => number(v, digits))
}

/** Series data for uPlot; a null between points further apart than 2.5 steps breaks the line. */
function seriesOf(points, stepMs, scale) {
  const xs = []
  const ys = []
  let last
  for (const p of points) {
    const t = Date.parse(p.time)
    if (last !== undefined && stepMs && t - last > stepMs * 2.5) {
      xs.push((last + stepMs) / 1000)
      ys.push(null)
    }
    xs.push(t / 1000)
    ys.push(p.value * scale)
    last = t
  }
  return [xs, ys]
}

function frame(container, metric, label) {
  container.classList.add('chart')
  container.dataset.metric = metric
  container.dataset.points = '0'
  container.setAttribute('role', 'img')
  container.setAttribute('aria-label', `${label}: no data yet`)
  const emptyNote = h('p', { class: 'chart-empty', 'aria-hidden': 'true' }, 'No data in this period')
  container.append(emptyNote)
  return emptyNote
}

function mount(container, opts, data) {
  if (!uPlot) {
    container.append(h('p', { class: 'empty' }, 'Charts are unavailable: /vendor/uplot/ did not load.'))
    return null
  }
  const plot = new uPlot(
    { ...opts, width: Math.max(200, container.clientWidth), height: HEIGHT },
    data,
    container,
  )
  const resize = new ResizeObserver(() =>
    plot.setSize({ width: Math.max(200, container.clientWidth), height: HEIGHT }),
  )
  resize.observe(container)
  const destroy = () => {
    resize.disconnect()
    plot.destroy()
  }
  return { plot, destroy }
}

/**
 * A time-series line chart. `update(points, stepMs)` takes API points `{time, value}`; the number
 * drawn is kept in `data-points` and the latest value in the aria-label.
 */
export function lineChart(container, { metric, label, unit, color, scale = 1, digits = 1 }) {
  const emptyNote = frame(container, metric, label)
  let xRange = null
  const fmt = (v) => (v === null || v === undefined ? '—' : `${number(v, digits)} ${unit}`)
  const chart = mount(
    container,
    {
      scales: { x: { time: true, range: (_u, min, max) => xRange ?? [min, max] } },
      series: [
        {},
        {
          label: `${label} (${unit})`,
          stroke: color,
          width: 1.5,
          fill: `${color}22`,
          value: (_u, v) => fmt(v),
        },
      ],
      axes: axes(),
      cursor: { drag: { x: false, y: false } },
    },
    [[], []],
  )
  return {
    /** `range`: [start, stop] in ms, so the axis shows the whole period even while data is still sparse. */
    update(points, stepMs, range) {
      xRange = range ? [range[0] / 1000, range[1] / 1000] : null
      const data = seriesOf(points, stepMs, scale)
      chart?.plot.setData(data)
      container.dataset.points = String(points.length)
      emptyNote.hidden = points.length > 0
      const lastPoint = points.at(-1)
      container.setAttribute(
        'aria-label',
        lastPoint
          ? `${label}: ${points.length} points, latest ${fmt(lastPoint.value * scale)} at ${new Date(lastPoint.time).toLocaleTimeString()}`
          : `${label}: no data in this period`,
      )
    },
    destroy: () => chart?.destroy(),
  }
}

/**
 * The energy load profile as bars: traction (import) above the axis, regenerated (export) below.
 * `update(rows, range)` takes the rows of /energy and the [start, stop] of the period in ms.
 */
export function energyChart(container, { tractionColor, regenColor }) {
  const emptyNote = frame(container, 'energy', 'Energy load profile')
  let xRange = [0, 1]
  const bars = uPlot?.paths.bars({ size: [0.9, 64], align: 1 })
  const kwh = (_u, v) => (v === null || v === undefined ? '—' : `${number(Math.abs(v), 3)} kWh`)
  const chart = mount(
    container,
    {
      scales: { x: { time: true, range: () => xRange } },
      series: [
        {},
        {
          label: 'Traction',
          fill: tractionColor,
          stroke: tractionColor,
          paths: bars,
          points: { show: false },
          value: kwh,
        },
        {
          label: 'Regenerated',
          fill: regenColor,
          stroke: regenColor,
          paths: bars,
          points: { show: false },
          value: kwh,
        },
      ],
      axes: axes(),
      cursor: { drag: { x: false, y: false } },
    },
    [[], [], []],
  )
  return {
    /** `rows` of /energy, [start, stop] of the period and the interval length, all in ms. */
    update(rows, [start, stop], stepMs) {
      xRange = [start / 1000, stop / 1000]
      // One slot per interval of the period (empty where no data), so each bar is one interval wide.
      const byStart = new Map(rows.map((r) => [Date.parse(r.start), r]))
      const xs = []
      const imports = []
      const exports = []
      for (let t = start; t < stop; t += stepMs) {
        const r = byStart.get(t)
        xs.push(t / 1000)
        imports.push(r ? r.import_kwh : null)
        exports.push(r ? -r.export_kwh : null)
      }
      chart?.plot.setData([xs, imports, exports])
      container.dataset.points = String(rows.length)
      emptyNote.hidden = rows.length > 0
      const imp = rows.reduce((s, r) => s + r.import_kwh, 0)
      const exp = rows.reduce((s, r) => s + r.export_kwh, 0)
      container.setAttribute(
        'aria-label',
        `Energy load profile: ${rows.length} intervals, traction ${number(imp, 3)} kWh, regenerated ${number(exp, 3)} kWh`,
      )
    },
    destroy: () => chart?.destroy(),
  }
}
