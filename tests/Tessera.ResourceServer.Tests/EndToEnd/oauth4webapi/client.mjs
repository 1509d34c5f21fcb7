// An independent OAuth client: oauth4webapi (a certified client library) gets a DPoP-bound access token from Tessera
// with the client_credentials grant and calls the sample API (Tessera.ResourceServer) with DPoP proofs it makes itself.
// Driven by DpopInteropTests; prints one JSON object with what happened (never a token), which the test asserts.
//
//   TESSERA_ISSUER=http://127.0.0.1:5080 CLIENT_ID=… CLIENT_SECRET=… API_URL=http://127.0.0.1:5090 \
//   NONCE_API_URL=http://127.0.0.1:5091 node client.mjs
import { webcrypto } from 'node:crypto'

// Node.js 18 (Debian 12's) keeps some of WebCrypto out of the global scope, where oauth4webapi looks for it.
globalThis.crypto ??= webcrypto
if (typeof globalThis.CryptoKey === 'undefined') {
  const { publicKey } = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
  globalThis.CryptoKey = publicKey.constructor
}
const oauth = await import('oauth4webapi')

const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}
const issuer = new URL(env('TESSERA_ISSUER'))
const apiUrl = env('API_URL')
const nonceApiUrl = env('NONCE_API_URL')
// Everything runs on loopback over plain HTTP.
const insecure = { [oauth.allowInsecureRequests]: true }

const result = {}

// What a refused protected-resource request looked like, as oauth4webapi parsed the WWW-Authenticate header.
async function call(token, url, options) {
  try {
    const response = await oauth.protectedResourceRequest(token, 'GET', new URL(url), new Headers(), null, { ...insecure, ...options })
    return { status: response.status, body: await response.json() }
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      return {
        status: err.status,
        nonceError: oauth.isDPoPNonceError(err),
        challenges: err.cause.map((c) => ({ scheme: c.scheme, error: c.parameters.error ?? null, algs: c.parameters.algs ?? null })),
      }
    }
    throw err
  }
}

const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }))
result.dpopAlgsAdvertised = as.dpop_signing_alg_values_supported ?? null
const client = { client_id: env('CLIENT_ID') }
const clientAuth = oauth.ClientSecretBasic(env('CLIENT_SECRET'))

// RFC 9449 §5: the token request carries a proof; the token comes back bound to the key (token_type DPoP).
const keyPair = await oauth.generateKeyPair('ES256')
const DPoP = oauth.DPoP(client, keyPair)
result.thumbprint = await DPoP.calculateThumbprint()
const tokenResponse = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, new URLSearchParams({ scope: 'api.read', resource: apiUrl }), { DPoP, ...insecure })
const tokens = await oauth.processClientCredentialsResponse(as, client, tokenResponse)
result.tokenType = tokens.token_type
const token = tokens.access_token

// §7.1: Authorization: DPoP <token> with a fresh proof (htm, htu, iat, jti, ath) on every call.
result.first = await call(token, `${apiUrl}/api/hello`, { DPoP })
result.second = await call(token, `${apiUrl}/api/hello`, { DPoP })

// §11.1: the very same request again, proof and all, is a replay.
let captured
const capture = async (url, init) => {
  captured = init
  return fetch(url, init)
}
result.beforeReplay = await call(token, `${apiUrl}/api/hello`, { DPoP, [oauth.customFetch]: capture })
const replay = await fetch(`${apiUrl}/api/hello`, { method: 'GET', headers: captured.headers, redirect: 'manual' })
result.replay = { status: replay.status, wwwAuthenticate: replay.headers.get('www-authenticate') }

// §7.2: the bound token sent with the Bearer scheme (no DPoP option) is refused.
result.asBearer = await call(token, `${apiUrl}/api/hello`, {})

// §7.1: proofs by a key the token is not bound to are refused (invalid_token: the binding fails).
const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
result.otherKey = await call(token, `${apiUrl}/api/hello`, { DPoP: thief })

// §4.3 (8): a proof made for another method.
const wrongMethod = oauth.DPoP(client, keyPair, { [oauth.modifyAssertion]: (_header, payload) => { payload.htm = 'POST' } })
result.wrongMethod = await call(token, `${apiUrl}/api/hello`, { DPoP: wrongMethod })

// §9: an API that requires server nonces answers use_dpop_nonce with a DPoP-Nonce; oauth4webapi keeps the nonce and
// the retry gets in.
result.nonceFirst = await call(token, `${nonceApiUrl}/api/hello`, { DPoP })
result.nonceRetry = await call(token, `${nonceApiUrl}/api/hello`, { DPoP })

process.stdout.write(JSON.stringify(result) + '\n')
