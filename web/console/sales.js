// Sales: every sale (GET /admin/v1/sales) with its waiting room's figures from
// GET /admin/v1/sales/{id} (stats: waiting, admitted, admission rate, sold, sell-through,
// warm, lottery seed), polled every second; a sale made or changed (PUT /admin/v1/sales/{id})
// and removed (DELETE, with a confirmation).

import { api, get } from './api.js';
import { confirmDialog, h, num, render, say, table, when, poll } from './ui.js';

/// At most this many sales get their stats read per refresh (one GET each).
const MAX_DETAILED = 50;

/// sold ÷ (sold + held + available): the share of the sale's units sold; null when unknown.
export function sellThrough(stats) {
  if (!stats) {
    return null;
  }
  const total = (stats.sold ?? 0) + (stats.held ?? 0) + (stats.available ?? 0);
  return total > 0 ? (stats.sold ?? 0) / total : null;
}

const percent = (x) => (x === null ? '–' : `${(100 * x).toFixed(1)} %`);

/// The configured admission rate: "auto" or N/s; "–" without a queue.
function rateSetting(s) {
  if (!s.queue?.enabled) {
    return 'no queue';
  }
  return s.queue.admission_rate === 'auto' ? 'auto' : `${num(s.queue.admission_rate, 1)}/s`;
}

/// An ISO time as the value of a datetime-local input (the browser's time zone).
function localInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    return '';
  }
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function mount(main) {
  const list = h('div', { id: 'sales' });
  const editor = h('div', { id: 'sale-editor' });

  const remove = async (s) => {
    if (!(await confirmDialog(`Delete the sale ${s.sale_id} (${s.name})? Its SKUs are no longer governed by it.`, 'Delete'))) {
      return;
    }
    try {
      await api('DELETE', `/admin/v1/sales/${encodeURIComponent(s.sale_id)}`);
      say(`Deleted ${s.sale_id}.`);
      refresh();
    } catch (e) {
      say(e, 'error');
    }
  };

  const edit = (s) => {
    const f = {
      id: h('input', { id: 'sale-id', name: 'sale_id', value: s?.sale_id ?? '', required: true, readonly: s ? true : null, pattern: '[A-Za-z0-9._\\-]{1,64}' }),
      name: h('input', { id: 'sale-name', name: 'name', value: s?.name ?? '', required: true }),
      skus: h('input', { id: 'sale-skus', name: 'skus', value: (s?.skus ?? []).join(', '), required: true }),
      starts: h('input', { id: 'sale-starts', name: 'starts_at', type: 'datetime-local', step: '1', value: s ? localInput(s.starts_at) : '', required: true }),
      ends: h('input', { id: 'sale-ends', name: 'ends_at', type: 'datetime-local', step: '1', value: s ? localInput(s.ends_at) : '', required: true }),
      limit: h('input', { id: 'sale-limit', name: 'per_customer_limit', type: 'number', min: '0', step: '1', value: String(s?.per_customer_limit ?? 0) }),
      queue: h('input', { id: 'sale-queue', name: 'queue_enabled', type: 'checkbox' }),
      rate: h('input', { id: 'sale-rate', name: 'admission_rate', value: s?.queue ? String(s.queue.admission_rate ?? 'auto') : 'auto' }),
      ttl: h('input', { id: 'sale-ttl', name: 'pass_ttl', value: String(s?.queue?.pass_ttl ?? 300) }),
    };
    f.queue.checked = s ? !!s.queue?.enabled : true;
    const submit = async (ev) => {
      ev.preventDefault();
      const starts = new Date(f.starts.value);
      const ends = new Date(f.ends.value);
      if (Number.isNaN(starts.getTime()) || Number.isNaN(ends.getTime())) {
        say('Start and end must be dates and times.', 'error');
        return;
      }
      const rate = f.rate.value.trim();
      const ttl = f.ttl.value.trim();
      const body = {
        name: f.name.value.trim(),
        skus: f.skus.value.split(/[\s,]+/).filter(Boolean),
        starts_at: starts.toISOString(),
        ends_at: ends.toISOString(),
        per_customer_limit: Number(f.limit.value || 0),
        queue: {
          enabled: f.queue.checked,
          admission_rate: rate === '' || rate === 'auto' ? 'auto' : Number(rate),
          pass_ttl: /^\d+(\.\d+)?$/.test(ttl) ? Number(ttl) : ttl, // seconds, or "90s", "5m"
        },
      };
      const id = f.id.value.trim();
      try {
        await api('PUT', `/admin/v1/sales/${encodeURIComponent(id)}`, { body });
        say(`Saved sale ${id}.`);
        editor.replaceChildren();
        refresh();
      } catch (e) {
        say(e.status === 409 || e.status === 400 ? `Refused (${e.status} ${e.code}): ${e.message}` : e, 'error');
      }
    };
    render(editor, h('form', { class: 'edit', onsubmit: submit },
      h('h2', { text: s ? `Edit sale ${s.sale_id}` : 'New sale' }),
      h('label', { for: 'sale-id', text: 'Sale id' }), f.id,
      h('label', { for: 'sale-name', text: 'Name' }), f.name,
      h('label', { for: 'sale-skus', text: 'SKUs (comma separated)' }), f.skus,
      h('label', { for: 'sale-starts', text: 'Starts (your time zone)' }), f.starts,
      h('label', { for: 'sale-ends', text: 'Ends (your time zone)' }), f.ends,
      h('label', { for: 'sale-limit', text: 'Per-customer limit (0: none)' }), f.limit,
      h('label', { for: 'sale-queue', text: 'Waiting room' }), f.queue,
      h('label', { for: 'sale-rate', text: 'Admissions per second ("auto": by stock and latency)' }), f.rate,
      h('label', { for: 'sale-ttl', text: 'Pass lifetime (seconds, or 90s, 5m)' }), f.ttl,
      h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Save sale' }),
        h('button', { type: 'button', text: 'Cancel', onclick: () => editor.replaceChildren() }))));
    editor.querySelector('input:not([readonly])')?.focus();
  };

  const draw = (rows) => {
    render(list, table([
      { label: 'Sale', cell: (r) => h('span', {}, h('strong', { text: r.sale_id }), h('br'), r.name) },
      { label: 'State', cell: (r) => h('span', { class: `badge sale-${r.state}`, text: r.state }) },
      { label: 'Starts', cell: (r) => when(r.starts_at) },
      { label: 'Ends', cell: (r) => when(r.ends_at) },
      { label: 'SKUs', cell: (r) => (r.skus ?? []).join(', ') },
      { label: 'Waiting', cell: (r) => (r.stats ? String(r.stats.waiting) : '–'), num: true },
      { label: 'Admission rate', cell: (r) => `${r.stats ? `${num(r.stats.admit_rate, 1)}/s` : '–'} (${rateSetting(r)})`, num: true },
      { label: 'Admitted', cell: (r) => (r.stats ? String(r.stats.admitted) : '–'), num: true },
      { label: 'Sold', cell: (r) => (r.stats ? String(r.stats.sold) : '–'), num: true },
      { label: 'Sell-through', cell: (r) => percent(sellThrough(r.stats)), num: true },
      { label: 'Warm', cell: (r) => (r.stats ? (r.stats.warm ? 'yes' : 'no') : '–') },
      { label: 'Lottery seed', cell: (r) => h('code', { text: r.stats?.lottery_seed ?? '–' }) },
      { label: 'Sold out at', cell: (r) => when(r.stats?.sold_out_at) },
      {
        label: 'Actions',
        cell: (r) => h('span', { class: 'row' },
          h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit sale ${r.sale_id}`, onclick: () => edit(r) }),
          h('button', { type: 'button', text: 'Delete', 'aria-label': `Delete sale ${r.sale_id}`, onclick: () => remove(r) })),
      },
    ], rows, {
      caption: 'Waiting, admitted and sold from the queue\'s owner; sell-through = sold ÷ (sold + held + available).',
      empty: 'No sales.',
      rowAttrs: (r) => ({ 'data-sale': r.sale_id, 'data-state': r.state, 'data-phase': r.stats?.phase ?? '' }),
    }));
  };

  const refresh = async () => {
    const all = (await get('/admin/v1/sales')).items ?? [];
    // Stats from one GET per sale (bounded); the list's own are kept past the bound.
    const rows = await Promise.all(all.map(async (s, i) => {
      if (i >= MAX_DETAILED) {
        return s;
      }
      try {
        return await get(`/admin/v1/sales/${encodeURIComponent(s.sale_id)}`);
      } catch (e) {
        return e.status === 404 ? null : { ...s, stats: null }; // deleted meanwhile
      }
    }));
    draw(rows.filter(Boolean));
  };

  render(main, h('h1', { text: 'Sales' }),
    h('p', { text: 'Scheduled drops and their waiting rooms, live. A sale\'s stats come from the node that owns its queue.' }),
    h('div', { class: 'row' }, h('button', { type: 'button', text: 'New sale', onclick: () => edit(null) })),
    list, editor);
  return poll(refresh, 1000);
}
