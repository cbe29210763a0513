// Which view shows: sign-in, sessions (main), logs or settings.

import { $, $$ } from './dom.js';
import { emit, hasAccount, state } from './state.js';

const VIEWS = ['signin', 'main', 'logs', 'settings'];

export function show(view) {
  state.view = view;
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  for (const tab of $$('.tab')) {
    if (tab.dataset.view === view) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  $('.tabs').hidden = view === 'signin' && !hasAccount();
  emit('view', view);
}
