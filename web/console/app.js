// The console's shell: hash routes (#/signin, #/cluster, #/hot, #/orders[/id], #/catalog,
// #/sales, #/payments, #/webhooks, #/charts), the sign-in page, and each page's lifecycle (mount returns a stop
// function, called when the route changes).

import { api, onUnauthorized, token } from './api.js';
import { h, render, say } from './ui.js';
import * as cluster from './cluster.js';
import * as hot from './hot.js';
import * as orders from './orders.js';
import * as catalog from './catalog.js';
import * as sales from './sales.js';
import * as payments from './payments.js';
import * as webhooks from './webhooks.js';
import * as charts from './charts.js';

const pages = { cluster, hot, orders, catalog, sales, payments, webhooks, charts };
const main = document.getElementById('main');
let stop = () => {};
let signinMessage = '';

onUnauthorized(() => {
  signinMessage = 'The admin token was refused (401). Sign in again.';
  location.hash = '#/signin';
});

function signinPage() {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true });
  const msg = h('p', { id: 'signin-error', class: 'error', role: 'alert', text: signinMessage });
  const form = h('form', {
    class: 'signin',
    onsubmit: async (ev) => {
      ev.preventDefault();
      token.set(input.value.trim());
      signinMessage = '';
      try {
        await api('GET', '/admin/v1/cluster');
        location.hash = '#/cluster';
      } catch (e) {
        token.clear();
        msg.textContent = e.status === 401 ? 'The admin token was refused (401).' : `Cannot sign in: ${e}`;
        input.focus();
      }
    },
  },
  h('h1', { text: 'Sign in' }),
  h('p', { text: 'The admin token (admin.token) of the cluster. It is kept in this tab only (sessionStorage).' }),
  h('label', { for: 'token', text: 'Admin token' }), input,
  h('button', { type: 'submit', text: 'Sign in' }), msg);
  render(main, form);
  input.focus();
  return () => {};
}

function route() {
  stop();
  say('');
  const [name = '', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const signedIn = token.get() !== null;
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('signout').hidden = !signedIn;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#/${name}`) {
      a.setAttribute('aria-current', 'page');
    } else {
      a.removeAttribute('aria-current');
    }
  }
  if (!signedIn || name === 'signin') {
    if (signedIn) {
      location.hash = '#/cluster';
      return;
    }
    if (name !== 'signin') {
      history.replaceState(null, '', '#/signin');
    }
    stop = signinPage();
    return;
  }
  const page = pages[name];
  if (!page) {
    location.hash = '#/cluster';
    return;
  }
  main.replaceChildren();
  stop = page.mount(main, rest.map(decodeURIComponent));
  main.focus({ preventScroll: true });
}

document.getElementById('signout').addEventListener('click', () => {
  token.clear();
  signinMessage = 'Signed out.';
  location.hash = '#/signin';
});
window.addEventListener('hashchange', route);
route();
