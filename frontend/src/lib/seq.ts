// Order of committed messages from a feed that may repeat or reorder them (Supabase Realtime
// broadcasts: a REST broadcast retried by the writer arrives twice; two in flight may swap).
// `seq` counts the publisher's commits and restarts at 1 with the process, so a smaller seq
// with a newer `committed_at` is a restarted publisher, not a late message.

export type SeqVerdict = 'apply' | 'restart' | 'duplicate' | 'late';

export class SeqGuard {
  lastSeq: number | null = null;
  lastCommittedAt = -Infinity;
  dropped = 0;

  check(seq: number, committedAt: number): SeqVerdict {
    // Without a usable seq there is nothing to judge by.
    if (!Number.isFinite(seq)) return 'apply';
    const at = Number.isFinite(committedAt) ? committedAt : -Infinity;
    let v: SeqVerdict;
    if (this.lastSeq == null || seq > this.lastSeq) v = 'apply';
    else if (at > this.lastCommittedAt) v = 'restart';
    else v = seq === this.lastSeq ? 'duplicate' : 'late';
    if (v === 'apply' || v === 'restart') {
      this.lastSeq = seq;
      this.lastCommittedAt = Math.max(this.lastCommittedAt, at);
    } else this.dropped++;
    return v;
  }
}
