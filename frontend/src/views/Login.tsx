import { useState } from 'preact/hooks';
import { BACKEND } from '../backend';
import { login, loginError, magicLinkSentTo, sendMagicLink, signIn } from '../stores/session';

// BACKEND is a compile-time constant: each build keeps only its own form.
export function Login() {
  return BACKEND === 'gateway' ? <TokenLogin /> : <EmailLogin />;
}

function ErrorLine() {
  return loginError.value ? (
    <p class="err" data-testid="login-error">
      {loginError.value}
    </p>
  ) : null;
}

/** The gateway: its token (printed by `make run`). */
function TokenLogin() {
  const [tok, setTok] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <main class="login">
      <form
        data-testid="login"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          await login(tok);
          setBusy(false);
        }}
      >
        <h1>StreamDesk</h1>
        <p class="muted">Paste the gateway token (printed by <code>make run</code>).</p>
        <input data-testid="login-token" type="password" autocomplete="current-password" value={tok} onInput={(e) => setTok((e.target as HTMLInputElement).value)} placeholder="token" />
        <button data-testid="login-submit" class="primary" disabled={!tok || busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <ErrorLine />
      </form>
    </main>
  );
}

/** Supabase Auth: email + password, or a magic link mailed to an existing account. */
function EmailLogin() {
  const [email, setEmail] = useState('');
  const [pw, setPw] = useState('');
  const [busy, setBusy] = useState(false);
  const sent = magicLinkSentTo.value;
  return (
    <main class="login">
      <form
        data-testid="login"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          await signIn(email, pw);
          setBusy(false);
        }}
      >
        <h1>StreamDesk</h1>
        <p class="muted">Sign in with your Supabase account. Only operators can trade.</p>
        <input data-testid="login-email" type="email" autocomplete="username" value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} placeholder="email" required />
        <input data-testid="login-password" type="password" autocomplete="current-password" value={pw} onInput={(e) => setPw((e.target as HTMLInputElement).value)} placeholder="password" />
        <button data-testid="login-submit" class="primary" disabled={!email || !pw || busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <button
          type="button"
          data-testid="login-magic"
          disabled={!email || busy}
          onClick={async () => {
            setBusy(true);
            // back to this very page: Supabase must list it under Auth -> URL configuration
            await sendMagicLink(email, location.origin + location.pathname);
            setBusy(false);
          }}
        >
          Email me a sign-in link
        </button>
        {sent && (
          <p class="ok" data-testid="login-magic-sent">
            Sign-in link sent to {sent}: open it in this browser.
          </p>
        )}
        <ErrorLine />
      </form>
    </main>
  );
}
