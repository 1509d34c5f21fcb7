// The token-mediating page (draft-ietf-oauth-browser-based-apps §6.2): the backend hands it short-lived access
// tokens for the scopes it asks for; the token lives only in this variable, never in storage or a cookie.
'use strict';
const csrf = { 'X-CSRF': '1' };
const $ = (id) => document.getElementById(id);
let token = null;
let tokens = 0;
let calls = 0;
let config = null;

async function loadConfig() {
  if (!config) config = await (await fetch('/app-config.json')).json();
  return config;
}

function showSignedIn(user) {
  $('status').textContent = 'Signed in as ' + (user.name || user.preferred_username || user.sub);
  $('status').dataset.state = 'signed-in';
  $('login').hidden = true;
  $('call-api').hidden = false;
  $('logout').hidden = false;
}

function showSignedOut() {
  token = null;
  $('status').textContent = 'Signed out';
  $('status').dataset.state = 'signed-out';
  $('login').hidden = false;
  $('call-api').hidden = true;
  $('logout').hidden = true;
}

function showResult(state, text) {
  $('result').textContent = text;
  $('result').dataset.state = state;
  $('result').dataset.count = String(++calls);
}

async function getToken() {
  const c = await loadConfig();
  const url = '/bff/token?resource=' + encodeURIComponent(c.resource) + '&scope=' + encodeURIComponent(c.scope);
  const response = await fetch(url, { headers: csrf });
  const body = await response.text();
  if (response.status === 401) {
    showSignedOut();
    return null;
  }
  if (!response.ok) throw new Error('token: HTTP ' + response.status);
  const t = JSON.parse(body);
  token = { value: t.access_token, expiresAt: Date.now() + t.expires_in * 1000 };
  $('token-info').textContent = 'Access token #' + (++tokens) + ' for "' + t.scope + '", expires in ' + t.expires_in + ' s';
  $('token-info').dataset.count = String(tokens);
  return token;
}

async function callApi() {
  const c = await loadConfig();
  if (!token || Date.now() >= token.expiresAt - 500) {
    if (!(await getToken())) return showResult('signed-out', 'signed out');
  }
  let response = await fetch(c.directApi, { headers: { Authorization: 'Bearer ' + token.value } });
  if (response.status === 401) {
    await response.text();
    // Expired or revoked: ask the backend once for a new one.
    if (!(await getToken())) return showResult('signed-out', 'signed out');
    response = await fetch(c.directApi, { headers: { Authorization: 'Bearer ' + token.value } });
  }
  const text = await response.text();
  if (!response.ok) return showResult('error', 'HTTP ' + response.status + ': ' + text);
  showResult('ok', JSON.stringify(JSON.parse(text), null, 2));
}

async function loadUser() {
  const response = await fetch('/bff/user', { headers: csrf });
  const body = await response.text();
  if (response.ok) showSignedIn(JSON.parse(body));
  else showSignedOut();
}

async function signOut() {
  await (await fetch('/bff/logout', { method: 'POST', headers: csrf })).text();
  showSignedOut();
  showResult('signed-out', 'You signed out.');
}

$('call-api').addEventListener('click', () => callApi().catch((e) => showResult('error', String(e))));
$('logout').addEventListener('click', () => signOut().catch((e) => showResult('error', String(e))));
loadUser().catch(() => showSignedOut());
