// The backend-for-frontend page: no token ever reaches this script. Every call to the backend carries the
// X-CSRF header, which a foreign site cannot send without a CORS preflight the backend never answers.
'use strict';
const csrf = { 'X-CSRF': '1' };
const $ = (id) => document.getElementById(id);
let calls = 0;

function showSignedIn(user) {
  $('status').textContent = 'Signed in as ' + (user.name || user.preferred_username || user.sub);
  $('status').dataset.state = 'signed-in';
  $('login').hidden = true;
  $('call-api').hidden = false;
  $('logout').hidden = false;
}

function showSignedOut() {
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

async function loadUser() {
  const response = await fetch('/bff/user', { headers: csrf });
  const body = await response.text();
  if (response.ok) showSignedIn(JSON.parse(body));
  else showSignedOut();
}

async function callApi() {
  const config = await (await fetch('/app-config.json')).json();
  const response = await fetch(config.proxiedApi, { headers: csrf });
  const text = await response.text();
  if (response.status === 401) {
    // The session ended (signed out elsewhere, revoked, expired): offer to sign in again.
    showSignedOut();
    showResult('signed-out', 'signed out');
    return;
  }
  if (!response.ok) {
    showResult('error', 'HTTP ' + response.status + ': ' + text);
    return;
  }
  showResult('ok', JSON.stringify(JSON.parse(text), null, 2));
}

async function signOut() {
  await (await fetch('/bff/logout', { method: 'POST', headers: csrf })).text();
  showSignedOut();
  showResult('signed-out', 'You signed out.');
}

$('call-api').addEventListener('click', () => callApi().catch((e) => showResult('error', String(e))));
$('logout').addEventListener('click', () => signOut().catch((e) => showResult('error', String(e))));
loadUser().catch(() => showSignedOut());
