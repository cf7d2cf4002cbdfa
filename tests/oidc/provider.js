// A real OpenID Provider (panva/oidc-provider) for the OIDC tests (tests/oidc/conftest.py starts
// it on a free port). One confidential client, the people of a JSON file that the test may
// rewrite between sign-ins (their groups), and a plain login form in place of the development
// interactions, which a test fills in with an HTTP client or Playwright.
//
// Two fields of the form exist only to make the provider misbehave the way a real one can:
// `acr` is the assurance level the login reports (password or two factors), and `age` reports
// the login as that many seconds old, like a provider that ignores prompt=login and max_age and
// hands back an old session.
//
// Environment: PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS (comma-separated), USERS_FILE.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const ACR_VALUES = ['urn:gatehouse:acr:password', 'urn:gatehouse:acr:mfa'];

function people() {
  return JSON.parse(readFileSync(process.env.USERS_FILE, 'utf8'));
}

function findPerson(predicate) {
  return people().find(predicate);
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: process.env.REDIRECT_URIS.split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  acrValues: ACR_VALUES,
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    acr: null,
    auth_time: null,
    // Like most providers, state the assurance of every sign-in, asked for or not.
    openid: ['sub', 'acr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: false } },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  async findAccount(ctx, sub) {
    const person = findPerson((candidate) => candidate.sub === sub);
    if (!person) {
      return undefined;
    }
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: person.email,
          email_verified: true,
          name: `${person.given_name} ${person.family_name}`,
          given_name: person.given_name,
          family_name: person.family_name,
          preferred_username: person.username,
          groups: person.groups,
        };
      },
    };
  },
});

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginForm(res, uid, params, error = '') {
  const options = ACR_VALUES.map((value) => `<option value="${value}">${value}</option>`).join('');
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html><head><title>Test provider sign-in</title></head><body>
<h1>Test provider sign-in</h1>
<p>For ${escape(params.client_id)}${params.acr_values ? `, asking for ${escape(params.acr_values)}` : ''}</p>
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Username <input name="username" id="username" autocomplete="off"></label>
<label>Password <input name="password" id="password" type="password"></label>
<label>Assurance <select name="acr" id="acr">${options}</select></label>
<label>Report the login as this many seconds old <input name="age" id="age" value="0"></label>
<button type="submit" id="submit">Sign in</button>
</form></body></html>`);
}

async function grantConsent(details) {
  const { prompt: { details: missing }, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) {
    grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  }
  if (missing.missingOIDCClaims) {
    grant.addOIDCClaims(missing.missingOIDCClaims);
  }
  return grant.save();
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  if (prompt.name === 'consent') {
    const grantId = await grantConsent(details);
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  if (req.method === 'GET') {
    loginForm(res, uid, params);
    return;
  }
  const form = await readForm(req);
  const person = findPerson((candidate) => candidate.username === form.get('username'));
  if (!person || person.password !== form.get('password')) {
    res.statusCode = 200;
    loginForm(res, uid, params, 'Wrong username or password.');
    return;
  }
  const age = Number(form.get('age') || 0);
  const acr = ACR_VALUES.includes(form.get('acr')) ? form.get('acr') : ACR_VALUES[0];
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: person.sub, ts: Math.floor(Date.now() / 1000) - age, acr, remember: true } },
    { mergeWithLastSubmission: false },
  );
}

const handle = provider.callback();
createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      res.statusCode = 400;
      res.setHeader('Content-Type', 'text/plain');
      res.end(`interaction failed: ${error.message}`);
    });
    return;
  }
  handle(req, res);
}).listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on ${issuer}\n`);
});
