// The status line at the bottom, the short-lived toast, and copying with a toast.

import * as api from './api.js';
import { $, errorText } from './dom.js';

export function setStatus(text, kind = '') {
  const s = $('#status-line');
  s.textContent = text;
  s.className = kind;
}

export function statusError(e) {
  setStatus(errorText(e), 'error');
}

let toastTimer = 0;
export function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 2200);
}

export async function copy(text, what) {
  try {
    await api.copyText(text);
    toast(`Copied ${what}`);
  } catch (e) {
    statusError(e);
  }
}
