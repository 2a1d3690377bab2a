import { describe, expect, it } from 'vitest';
import { session, sessions, shownSession, stepSession, isLive } from '../src/stores/chart';
import { takeFragmentToken } from '../src/stores/session';

describe('history navigation', () => {
  it('steps through sessions; the latest one is live', () => {
    sessions.value = ['2026-03-09', '2026-03-10', '2026-03-11'];
    session.value = null;
    expect(shownSession()).toBe('2026-03-11');
    expect(isLive()).toBe(true);
    stepSession(-1);
    expect(session.value).toBe('2026-03-10');
    expect(isLive()).toBe(false);
    stepSession(-1);
    stepSession(-1); // clamps at the first
    expect(session.value).toBe('2026-03-09');
    stepSession(1);
    stepSession(1);
    expect(session.value).toBeNull(); // back to live
  });
  it('a picked date between sessions steps to its neighbours', () => {
    sessions.value = ['2026-03-06', '2026-03-09', '2026-03-10'];
    session.value = '2026-03-07'; // a Saturday: no data
    stepSession(-1);
    expect(session.value).toBe('2026-03-06');
    session.value = '2026-03-07';
    stepSession(1);
    expect(session.value).toBe('2026-03-09');
  });
});

describe('login fragment', () => {
  it('takes the token and clears the fragment', () => {
    const calls: string[] = [];
    const loc = { hash: '#login=abc%2Fdef', pathname: '/', search: '?x=1' } as Location;
    const hist = { replaceState: (_s: unknown, _t: string, url: string) => calls.push(url) } as unknown as History;
    expect(takeFragmentToken(loc, hist)).toBe('abc/def');
    expect(calls).toEqual(['/?x=1']);
    expect(takeFragmentToken({ hash: '#other', pathname: '/', search: '' } as Location, hist)).toBeNull();
  });
});
