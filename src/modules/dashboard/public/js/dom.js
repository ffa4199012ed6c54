/**
 * Creates an element. `attrs`: `class`, `dataset`, `on<event>` handlers, DOM properties given as
 * non-strings (value, checked, disabled) and everything else as attributes. Children are nodes or
 * text (never parsed as HTML, so data from the API cannot inject markup).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (key === 'class') el.className = value
    else if (key === 'dataset') Object.assign(el.dataset, value)
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value)
    else if (typeof value !== 'string' && key in el) el[key] = value
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false))
  return el
}

/** A section with a heading whose id labels it. */
export function panel(id, title, ...children) {
  return h(
    'section',
    { class: 'panel', 'aria-labelledby': `${id}-h`, id },
    h('h2', { id: `${id}-h` }, title),
    ...children,
  )
}

/** A label and its control, linked by `for`. */
export function field(id, label, control, hint) {
  control.id = id
  const hintEl = hint ? h('small', { id: `${id}-hint`, class: 'hint' }, hint) : null
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id)
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl)
}

/** A `<select>` from `[value, text]` pairs. */
export function select(options, value) {
  return h(
    'select',
    {},
    options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)),
  )
}

/**
 * A status line. Live (default): screen readers announce each change. Not live (for "updated at"
 * lines refreshed every few seconds): only errors are announced, through `role=alert`.
 */
export function statusLine({ live = true } = {}) {
  const el = h('p', { class: 'status-line', role: live ? 'status' : null })
  return {
    el,
    ok(text) {
      el.className = 'status-line ok'
      if (!live) el.removeAttribute('role')
      el.textContent = text
    },
    error(text) {
      if (el.textContent === text && el.classList.contains('error')) return
      el.className = 'status-line error'
      if (!live) el.setAttribute('role', 'alert')
      el.textContent = text
    },
    clear() {
      el.className = 'status-line'
      el.textContent = ''
    },
  }
}

/** Tells screen readers about a change that happened without the user asking (aria-live region). */
export function announce(text) {
  const region = document.getElementById('announcer')
  if (!region) return
  region.textContent = ''
  setTimeout(() => {
    region.textContent = text
  }, 50)
}

/** A table with a caption for screen readers; `rows` are arrays of cells (nodes or text). */
export function table(caption, headers, rows, rowAttrs = () => ({})) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((row, i) =>
          h(
            'tr',
            rowAttrs(i),
            row.map((cell) => h('td', {}, cell)),
          ),
        ),
      ),
    ),
  )
}

/** A submit handler that stays on the page. */
export const onSubmit = (fn) => (event) => {
  event.preventDefault()
  fn()
}

/** An empty-state message. */
export const empty = (text, ...more) => h('p', { class: 'empty' }, text, ...more)
