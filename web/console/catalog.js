// Catalog: the products page by page (GET /admin/v1/products), one product edited
// (PUT /admin/v1/products/{sku}), and NDJSON import (POST /admin/v1/products:import) with the
// errors of each refused line.

import { api, get, withQuery } from './api.js';
import { h, money, pager, render, say, table } from './ui.js';

const editable = [
  ['name', 'Name', 'text'], ['description', 'Description', 'text'], ['category', 'Category', 'text'],
  ['price_cents', 'Price (cents)', 'number'], ['currency', 'Currency', 'text'],
  ['per_customer_limit', 'Per-customer limit (0: none)', 'number'],
];

export function mount(main) {
  const q = h('input', { id: 'cat-q', name: 'q', autocomplete: 'off' });
  const category = h('input', { id: 'cat-category', name: 'category', autocomplete: 'off' });
  const list = h('div', { id: 'products' });
  const editor = h('div', { id: 'editor' });
  const ndjson = h('textarea', { id: 'ndjson', name: 'ndjson', rows: '6', spellcheck: 'false' });
  const file = h('input', { id: 'ndjson-file', type: 'file', accept: '.ndjson,.jsonl,.json,application/x-ndjson' });
  const importResult = h('div', { id: 'import-result' });

  const edit = (p) => {
    const inputs = {};
    const sku = h('input', { id: 'edit-sku', name: 'sku', value: p?.sku ?? '', required: true, readonly: p ? true : null });
    render(editor, h('form', {
      class: 'edit',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = {};
        for (const [k, , type] of editable) {
          body[k] = type === 'number' ? Number(inputs[k].value) : inputs[k].value;
        }
        try {
          const { data } = await api('PUT', `/admin/v1/products/${encodeURIComponent(sku.value.trim())}`, { body });
          say(`Saved ${data.sku}.`);
          pages.again();
        } catch (e) {
          say(e, 'error');
        }
      },
    }, h('h2', { text: p ? `Edit ${p.sku}` : 'New product' }),
    h('label', { for: 'edit-sku', text: 'SKU' }), sku,
    editable.map(([k, label, type]) => {
      inputs[k] = h('input', { id: `edit-${k}`, name: k, type, value: p ? String(p[k] ?? '') : (k === 'per_customer_limit' ? '0' : ''), required: k !== 'description' });
      return [h('label', { for: `edit-${k}`, text: label }), inputs[k]];
    }),
    h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Save' }),
      h('button', { type: 'button', text: 'Cancel', onclick: () => editor.replaceChildren() }))));
    editor.querySelector('input:not([readonly])')?.focus();
  };

  const load = async (cursor) => {
    try {
      const r = await get(withQuery('/admin/v1/products', { q: q.value.trim(), category: category.value.trim(), limit: 20, cursor }));
      render(list, table([
        { label: 'SKU', cell: (p) => p.sku },
        { label: 'Name', cell: (p) => p.name },
        { label: 'Category', cell: (p) => p.category },
        { label: 'Price', cell: (p) => money(p.price_cents, p.currency), num: true },
        { label: 'Available', cell: (p) => String(p.available), num: true },
        { label: 'Limit', cell: (p) => String(p.per_customer_limit), num: true },
        { label: '', cell: (p) => h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${p.sku}`, onclick: () => edit(p) }) },
      ], r.items ?? [], { empty: 'No products.', rowAttrs: (p) => ({ 'data-sku': p.sku }) }),
      pages.buttons(r.next_cursor));
    } catch (e) {
      render(list, h('p', { class: 'error', text: `Listing failed: ${e}` }));
    }
  };

  const doImport = async (ev) => {
    ev.preventDefault();
    const text = file.files[0] ? await file.files[0].text() : ndjson.value;
    try {
      const { data } = await api('POST', '/admin/v1/products:import', { body: text, type: 'application/x-ndjson' });
      render(importResult, h('p', { text: `Imported ${data.imported}, failed ${data.failed}.` }),
        table([
          { label: 'Line', cell: (e) => String(e.line), num: true },
          { label: 'Code', cell: (e) => e.code },
          { label: 'Message', cell: (e) => e.message },
        ], data.errors ?? [], { empty: 'Every line was imported.' }));
      pages.first();
    } catch (e) {
      render(importResult, h('p', { class: 'error', text: `Import refused: ${e}` }));
    }
  };

  const pages = pager(load);
  render(main, h('h1', { text: 'Catalog' }),
    h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); pages.first(); } },
      h('label', { for: 'cat-q', text: 'Search' }), q,
      h('label', { for: 'cat-category', text: 'Category' }), category,
      h('button', { type: 'submit', text: 'Search' }),
      h('button', { type: 'button', text: 'New product', onclick: () => edit(null) })),
    list, editor,
    h('h2', { text: 'Import (NDJSON)' }),
    h('form', { class: 'import', onsubmit: doImport },
      h('p', { text: 'One product a line: {"sku", "name", "description", "category", "price_cents", "currency", "per_customer_limit", "stock"}. A chosen file wins over the text.' }),
      h('label', { for: 'ndjson', text: 'Lines' }), ndjson,
      h('label', { for: 'ndjson-file', text: 'or a file' }), file,
      h('button', { type: 'submit', text: 'Import' })),
    importResult);
  pages.first();
  return () => {};
}
