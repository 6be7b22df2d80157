import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** A test OpenID provider process (test/support/oidc-idp.mjs, oidc-provider) on a random loopback port. */
export interface TestIdp {
  issuer: string;
  /** A CI job's identity token (GitHub Actions / GitLab CI claims), signed by the provider's JWKS key. */
  ciToken: (claims: Record<string, unknown>, opts?: { audience?: string; expiresIn?: number; iss?: string }) => Promise<string>;
  /** The test user approves a pending device login (what they would do in the browser). */
  approve: (userCode: string, account: string, claims?: Record<string, unknown>) => Promise<void>;
  /** Polls of the stella-cli client's device codes: slow_down answers sent, and polls that came before the interval. */
  pollStats: () => Promise<{ slowDowns: number; early: number; polls: number }>;
  /** A full device-flow login done by the test itself: the IdP's access token for this user. */
  deviceLogin: (account: string, claims: Record<string, unknown>, scope?: string) => Promise<string>;
  stop: () => Promise<void>;
}

async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function postForm(url: string, form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function startTestIdp(): Promise<TestIdp> {
  const child: ChildProcess = spawn(process.execPath, [resolve(import.meta.dirname, 'oidc-idp.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const issuer = await new Promise<string>((res, rej) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (l) => res((JSON.parse(l) as { issuer: string }).issuer));
    child.once('exit', (code) => rej(new Error(`test IdP exited with ${code}: ${stderr}`)));
  });
  const approve = async (userCode: string, account: string, claims: Record<string, unknown> = {}) => {
    await postJson(`${issuer}/test/device/approve`, { user_code: userCode, account, claims });
  };
  return {
    issuer,
    approve,
    ciToken: async (claims, opts = {}) =>
      (await postJson(`${issuer}/test/ci-token`, { claims, audience: opts.audience ?? 'stella', expiresIn: opts.expiresIn ?? 300, iss: opts.iss }))
        .token as string,
    deviceLogin: async (account, claims, scope = 'openid stella.read') => {
      const d = (await postForm(`${issuer}/device/auth`, { client_id: 'test-helper', scope })).body;
      await approve(String(d.user_code), account, claims);
      for (;;) {
        const r = await postForm(`${issuer}/token`, {
          client_id: 'test-helper',
          grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
          device_code: String(d.device_code),
        });
        if (r.status === 200) return r.body.access_token as string;
        if (r.body.error !== 'slow_down' && r.body.error !== 'authorization_pending') throw new Error(JSON.stringify(r.body));
      }
    },
    pollStats: async () => (await (await fetch(`${issuer}/test/device/polls`)).json()) as { slowDowns: number; early: number; polls: number },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
