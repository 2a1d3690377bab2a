import { useState } from 'preact/hooks';
import { login, loginError } from '../stores/session';

export function Login() {
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
        {loginError.value && (
          <p class="err" data-testid="login-error">
            {loginError.value}
          </p>
        )}
      </form>
    </main>
  );
}
