// node oidc-provider 9.x peer for the Tessera benchmark (bench/README.md, "Peers").
// Default (in-memory) adapter, ES256 JWT access tokens through resourceIndicators, refresh-token rotation on,
// 5-minute access tokens, one confidential client. The interaction handler signs the test user in and grants the
// requested scopes without a page: there is no password check at all.
//
//   node server.js --port 5103 [--client-id bench --client-secret S]
import http from 'node:http';
import crypto from 'node:crypto';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const port = Number(arg('port', '5103'));
const clientId = arg('client-id', 'bench');
const clientSecret = arg('client-secret', 'bench-secret-0123456789abcdef0123456789abcdef');
const redirectUri = arg('redirect-uri', 'https://app.example.com/callback');
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'https://api.bench.example';
const USER = 'bench-user';

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const signingJwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: crypto.randomUUID() };

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access'], // 'api' is the resource server's scope (getResourceServerInfo)
  routes: {
    authorization: '/connect/authorize',
    token: '/connect/token',
    introspection: '/connect/introspect',
    jwks: '/.well-known/jwks.json',
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 300,
    ClientCredentials: 300,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
    IdToken: 300,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: RESOURCE,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

// The "interaction": log the test user in and grant what was asked, in one step, without a page.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { params } = details;
  if (process.env.OP_DEBUG) console.log(JSON.stringify(details.prompt), JSON.stringify(details.result ?? null));
  let grant;
  if (details.grantId) grant = await provider.Grant.find(details.grantId);
  if (!grant) grant = new provider.Grant({ accountId: USER, clientId: params.client_id });
  const scopes = String(params.scope ?? '').split(' ').filter(Boolean);
  const oidc = scopes.filter((s) => s === 'openid' || s === 'offline_access');
  const api = scopes.filter((s) => s === 'api');
  if (oidc.length) grant.addOIDCScope(oidc.join(' '));
  if (api.length) grant.addResourceScope(params.resource ?? RESOURCE, api.join(' '));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId: USER }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction failed', err);
      res.statusCode = 500;
      res.end('interaction failed');
    });
    return;
  }
  if (req.url === '/healthz') {
    res.end('ok');
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => console.log(`oidc-provider peer listening on ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
