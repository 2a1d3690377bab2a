// Operations: Schwab token + re-auth, services pause/resume, universe, kill switch, CSV export.
// The gateway's alone: without it (Supabase mode) the panel says so.
import { useEffect, useState } from 'preact/hooks';
import { shownSession } from '../stores/chart';
import { addToUniverse, available, completeAuth, exportUrl, kill, opsError, refresh, removeFromUniverse, run, setKillSwitch, setPaused, startAuth, token, universe } from '../stores/ops';
import { status } from '../stores/session';
import { cls } from './format';

const WEEK_S = 7 * 86400;

function dur(s: number | null | undefined): string {
  if (s == null) return '—';
  const neg = s < 0;
  s = Math.abs(Math.round(s));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${neg ? '-' : ''}${d ? `${d}d ` : ''}${h}h ${m}m`;
}

export function Ops() {
  return available() ? <OpsPanel /> : <NoOps />;
}

function NoOps() {
  return (
    <section class="panel ops" data-testid="ops">
      <h2>Operations</h2>
      <p class="muted" data-testid="ops-unavailable">
        Operations need the gateway: the Schwab token, services, universe, kill switch and CSV export are served by the gateway on the VM (<code>streamdesk</code> CLI there), not by Supabase.
      </p>
    </section>
  );
}

function OpsPanel() {
  const [authUrl, setAuthUrl] = useState('');
  const [redirect, setRedirect] = useState('');
  const [authMsg, setAuthMsg] = useState('');
  const [sym, setSym] = useState('');
  const [kind, setKind] = useState<'equity' | 'option'>('equity');
  const [reason, setReason] = useState('');
  useEffect(() => {
    void refresh();
    const iv = setInterval(() => void refresh(), 10_000);
    return () => clearInterval(iv);
  }, []);
  const tk = token.value;
  const u = universe.value;
  const k = kill.value;
  const left = tk?.refresh_expires_in_s ?? (tk?.age_s != null ? WEEK_S - tk.age_s : null);
  const sess = shownSession();
  return (
    <section class="panel ops" data-testid="ops">
      <h2>Operations</h2>
      {opsError.value && (
        <p class="err" data-testid="ops-error">
          {opsError.value}
        </p>
      )}
      <div class="ops-grid">
        <div class="card" data-testid="ops-token">
          <h3>Schwab token</h3>
          {tk && !tk.exists ? (
            <p class="bad">no token</p>
          ) : (
            <p>
              age <strong>{dur(tk?.age_s)}</strong> · left{' '}
              <strong class={cls(left != null && left < 86400 && 'bad')} data-testid="ops-token-left">
                {dur(left)}
              </strong>{' '}
              of 7d · access {dur(tk?.access_expires_in_s)}
            </p>
          )}
          <button
            data-testid="ops-auth-start"
            onClick={() =>
              run(async () => {
                const r = await startAuth();
                setAuthUrl(r.authorize_url);
                setAuthMsg('');
                window.open(r.authorize_url, '_blank', 'noopener');
              })
            }
          >
            Re-authenticate…
          </button>
          {authUrl && (
            <div class="auth">
              <p>
                1. Log in at{' '}
                <a href={authUrl} target="_blank" rel="noopener" data-testid="ops-auth-url">
                  Schwab
                </a>
                . 2. Paste the URL you were redirected to:
              </p>
              <input data-testid="ops-auth-redirect" value={redirect} onInput={(e) => setRedirect((e.target as HTMLInputElement).value)} placeholder="https://127.0.0.1/?code=…" />
              <button
                data-testid="ops-auth-complete"
                disabled={!redirect}
                onClick={() =>
                  run(async () => {
                    await completeAuth(redirect.trim());
                    setAuthMsg('Token renewed.');
                    setAuthUrl('');
                    setRedirect('');
                  })
                }
              >
                Complete
              </button>
            </div>
          )}
          {authMsg && <p class="ok">{authMsg}</p>}
        </div>

        <div class="card" data-testid="ops-services">
          <h3>Services</h3>
          <table class="grid">
            <tbody>
              {(status.value?.services ?? []).map((s) => (
                <tr data-testid={`svc-${s.name}`}>
                  <td>{s.name}</td>
                  <td class={s.alive ? (s.paused ? 'warn' : 'up') : 'down'} title={(s as { reason?: string | null }).reason ?? ''}>
                    {s.alive ? (s.paused ? 'paused' : ((s as { status?: string | null }).status ?? 'alive')) : 'down'}
                  </td>
                  <td class="num">{s.age_s == null ? '—' : `${s.age_s.toFixed(1)}s`}</td>
                  <td>
                    {s.paused != null && (
                      <button
                        class="small"
                        data-testid={`svc-${s.paused ? 'resume' : 'pause'}-${s.name}`}
                        onClick={() => run(() => setPaused(s.name, !s.paused))}
                      >
                        {s.paused ? 'Resume' : 'Pause'}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>

        <div class="card" data-testid="ops-universe">
          <h3>Universe</h3>
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              const s = sym.trim().toUpperCase();
              if (!s) return;
              void run(async () => {
                await addToUniverse(kind, s);
                setSym('');
              });
            }}
          >
            <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as 'equity' | 'option')} data-testid="ops-universe-kind">
              <option value="equity">equity</option>
              <option value="option">option underlying</option>
            </select>
            <input data-testid="ops-universe-input" value={sym} onInput={(e) => setSym((e.target as HTMLInputElement).value)} placeholder="TICKER" spellcheck={false} />
            <button data-testid="ops-universe-add" type="submit">
              Add
            </button>
          </form>
          {(['equity', 'option'] as const).map((kd) => (
            <p class="chips">
              <span class="muted">{kd === 'equity' ? 'equities' : 'options'}:</span>
              {((kd === 'equity' ? u?.equities : u?.option_underlyings) ?? []).map((s) => (
                <span class="chip" data-testid={`ops-universe-${kd}-${s}`}>
                  {s}
                  <button
                    class="x"
                    aria-label={`remove ${s}`}
                    data-testid={`ops-universe-remove-${kd}-${s}`}
                    onClick={() =>
                      run(() => removeFromUniverse(kd, s))
                    }
                  >
                    ×
                  </button>
                </span>
              ))}
            </p>
          ))}
        </div>

        <div class="card" data-testid="ops-kill">
          <h3>Kill switch</h3>
          <p>
            <strong class={k?.engaged ? 'bad' : 'up'} data-testid="ops-kill-state">
              {k ? (k.engaged ? 'ENGAGED' : 'off') : '—'}
            </strong>{' '}
            {k?.reason && <span class="muted">{k.reason}</span>}
          </p>
          <input value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} placeholder="reason" />
          <button
            data-testid="ops-kill-toggle"
            class={k?.engaged ? '' : 'danger'}
            onClick={() =>
              run(async () => {
                const engage = !k?.engaged;
                if (engage || confirm('Release the kill switch and allow orders again?')) {
                  await setKillSwitch(engage, reason || undefined);
                }
              })
            }
          >
            {k?.engaged ? 'Release' : 'Engage'}
          </button>
        </div>

        <div class="card" data-testid="ops-export">
          <h3>CSV export {sess ?? ''}</h3>
          {(['equity', 'indicators', 'options'] as const).map((t) => (
            <a class="btn" href={exportUrl(t, sess)} download data-testid={`ops-export-${t}`}>
              {t}.csv
            </a>
          ))}
        </div>
      </div>
    </section>
  );
}
