// Small DOM helpers shared by the pages: element building, tables, the confirmation dialog,
// the status line, polling and formatting. No framework.

/// An element: `attrs` sets properties for on* handlers, `class`, `text`, and attributes for the
/// rest (false/null/undefined skipped); children are nodes, strings or (nested) arrays of them.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) {
      continue;
    }
    if (k.startsWith('on')) {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'text') {
      el.textContent = v;
    } else if (k === 'value') {
      el.value = v;
    } else {
      el.setAttribute(k, v === true ? '' : v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (Array.isArray(c)) {
      append(el, c);
    } else if (c !== null && c !== undefined && c !== false) {
      el.append(c instanceof Node ? c : String(c));
    }
  }
}

/// A table of `rows`; `cols`: [{label, cell: row => node|string, num}]. `empty`: text when none.
export function table(cols, rows, { caption, empty = 'Nothing to show.', rowAttrs } = {}) {
  return h('table', {},
    caption ? h('caption', { text: caption }) : null,
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null, text: c.label })))),
    h('tbody', {}, rows.length === 0
      ? h('tr', {}, h('td', { colspan: cols.length, class: 'empty', text: empty }))
      : rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {}, cols.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(r)))))));
}

/// A labelled input: <label>text <input ...attrs></label>.
export function field(text, attrs) {
  return h('label', { class: 'field' }, h('span', { text }), h(attrs.tag ?? 'input', { ...attrs, tag: null }));
}

/// Replaces the children of `el` with `children`.
export function render(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/// The status line: `message` (an Error or text); kind "error" or "ok".
export function say(message, kind = 'ok') {
  const s = document.getElementById('status');
  s.className = kind;
  s.textContent = message instanceof Error ? String(message) : message;
}

/// Asks `text` in the modal dialog; resolves true when confirmed.
export function confirmDialog(text, okLabel = 'Confirm') {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
    document.getElementById('confirm-ok').focus();
  });
}

/// Runs `f` now and then every `ms` after each run ends, until the returned stop() is called.
/// An error goes to `onError` (default: the status line) and polling goes on.
export function poll(f, ms, onError = (e) => say(e, 'error')) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    try {
      await f();
    } catch (e) {
      if (!stopped) {
        onError(e);
      }
    }
    if (!stopped) {
      timer = setTimeout(run, ms);
    }
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#7f7f7f', '#bcbd22', '#17becf'];

export function ms(v) {
  if (v === null || v === undefined) {
    return '–';
  }
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
}

export function money(cents, currency) {
  if (cents === null || cents === undefined) {
    return '–';
  }
  return `${(cents / 100).toFixed(2)} ${currency ?? ''}`.trim();
}

export function when(iso) {
  if (!iso) {
    return '–';
  }
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function num(v, digits = 0) {
  return v === null || v === undefined ? '–' : Number(v).toFixed(digits);
}

/// Cursor paging of a listing: `show(cursor)` loads and draws one page (undefined: the first).
/// first() shows the first page, again() the current one, buttons(next_cursor) the controls.
export function pager(show) {
  let cursor;
  const p = {
    first: () => {
      cursor = undefined;
      return show(undefined);
    },
    again: () => show(cursor),
    buttons: (next) => h('div', { class: 'row' },
      cursor !== undefined ? h('button', { type: 'button', text: 'First page', onclick: p.first }) : null,
      next ? h('button', { type: 'button', text: 'Next page', onclick: () => { cursor = next; show(next); } }) : null),
  };
  return p;
}
