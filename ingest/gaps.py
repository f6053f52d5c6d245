"""Frame-counter gap detection.

Per device the tracker knows the last frame counter, its reading time and the session (``device_state``). The
uplinks of a batch are taken in reading-time order per device; an uplink whose counter is more than one beyond
the previous one in the same session leaves a gap ``(previous + 1 .. counter - 1)``. Not gaps:

* a join (or a ChirpStack ``UPLINK_F_CNT_RESET`` log) between two uplinks, or a changed session: the counter
  starts again;
* a lower counter at a later time: the device reset its counter;
* an uplink no later than the last one already seen ("late"): it does not move the state; instead it fills the
  recorded gap it falls into (:data:`TRIM_GAPS_SQL` in the writer), and :func:`late_holes` looks for the holes
  beside it among the stored uplinks (batches committed out of order by concurrent writers, a backfill).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GapResult", "PriorState", "find_gaps", "late_holes"]


@dataclass
class PriorState:
    """Known state of the batch's devices (arrays aligned with ``dev_eui``); ``last_time`` NaT when unknown."""

    dev_eui: np.ndarray  # S16
    last_f_cnt: np.ndarray  # int64, -1 when unknown
    last_time: np.ndarray  # datetime64[us]
    session: list[str | None]


@dataclass
class GapResult:
    gap_time: np.ndarray  # reading time of the uplink after the gap
    gap_dev: np.ndarray  # S16
    gap_from: np.ndarray
    gap_to: np.ndarray
    late: np.ndarray  # row positions (of the inputs) that arrived late
    state_dev: np.ndarray  # S16, the new state of every device in the batch
    state_f_cnt: np.ndarray  # -1 = unknown (after a join)
    state_time: np.ndarray
    state_session: list[str | None]
    state_join: np.ndarray  # datetime64[us], NaT when no join in this batch


def find_gaps(
    dev_eui: np.ndarray,
    f_cnt: np.ndarray,
    time: np.ndarray,
    session: list[str | None],
    prior: PriorState,
    resets: list[tuple[bytes, np.datetime64]],
) -> GapResult:
    """Gaps and new device state for uplinks (``dev_eui``, ``f_cnt``, ``time``, ``session``) given the prior
    state and the joins/resets ``(dev_eui, time)`` seen in the same batch."""
    nat = np.datetime64("NaT", "us")
    time = time.astype("datetime64[us]")
    reset_euis = np.array([d for d, _ in resets], dtype="S16")
    devs, inverse = np.unique(np.concatenate([dev_eui.astype("S16"), reset_euis]), return_inverse=True)
    code = inverse.reshape(-1)[: len(dev_eui)].astype(np.int64)
    pos = {bytes(d): i for i, d in enumerate(devs.tolist())} if resets else {}
    k = len(devs)
    last_f = np.full(k, -1, dtype=np.int64)
    last_t = np.full(k, nat)
    last_sc = np.full(k, -1, dtype=np.int64)  # session codes, -1 = unknown
    codes: dict[str, int] = {}
    if len(prior.dev_eui):
        j = np.searchsorted(devs, prior.dev_eui.astype("S16"))
        found = (j < k) & (devs[np.minimum(j, k - 1)] == prior.dev_eui)
        last_f[j[found]] = prior.last_f_cnt[found]
        last_t[j[found]] = prior.last_time[found]
        prior_sc = np.array(
            [-1 if x is None else codes.setdefault(x, len(codes)) for x in prior.session], dtype=np.int64
        )
        last_sc[j[found]] = prior_sc[found]
    row_sc = np.array([-1 if x is None else codes.setdefault(x, len(codes)) for x in session], dtype=np.int64)
    base_t = last_t[code]
    late = ~np.isnat(base_t) & (time <= base_t)
    live = np.flatnonzero(~late)
    order = live[np.lexsort((f_cnt[live], time[live], code[live]))]
    c, f, t, sc = code[order], f_cnt[order], time[order], row_sc[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = c[1:] != c[:-1]
    prev_f = np.empty_like(f)
    prev_f[1:] = f[:-1]
    prev_f[first] = last_f[c[first]]
    prev_sc = np.empty_like(sc)
    prev_sc[1:] = sc[:-1]
    prev_sc[first] = last_sc[c[first]]
    prev_t = np.empty_like(t)
    prev_t[1:] = t[:-1]
    prev_t[first] = last_t[c[first]]
    broken = (sc >= 0) & (prev_sc >= 0) & (sc != prev_sc)
    join_t = np.full(k, nat)
    for d, when in resets:
        dj = pos[bytes(d)]
        jt = np.array(when, dtype="datetime64[us]")
        join_t[dj] = jt if np.isnat(join_t[dj]) else max(join_t[dj], jt)
        in_dev = c == dj
        # the first uplink of the device after the join starts a new count; a join no later than the uplink before
        # it (a redelivered or held-back join message, or one a batch committed earlier had already passed)
        # starts nothing: a hole behind it is still a gap
        after = np.flatnonzero(in_dev & (t >= jt) & (np.isnat(prev_t) | (prev_t < jt)))
        if len(after):
            broken[after[0]] = True
    gap = (prev_f >= 0) & ~broken & (f > prev_f + 1)
    g = np.flatnonzero(gap)
    # new state: the last live uplink per device, unless a join came after it
    last_row = np.flatnonzero(np.append(c[1:] != c[:-1], True)) if len(c) else np.zeros(0, dtype=np.int64)
    new_f, new_t, new_sc = last_f.copy(), last_t.copy(), last_sc.copy()
    new_f[c[last_row]] = f[last_row]
    new_t[c[last_row]] = t[last_row]
    new_sc[c[last_row]] = sc[last_row]
    joined_after = ~np.isnat(join_t) & (np.isnat(new_t) | (join_t > new_t))
    new_f[joined_after] = -1
    new_sc[joined_after] = -1
    names = list(codes)
    new_s: list[str | None] = [None if x < 0 else names[x] for x in new_sc.tolist()]
    return GapResult(
        gap_time=t[g],
        gap_dev=devs[c[g]],
        gap_from=prev_f[g] + 1,
        gap_to=f[g] - 1,
        late=np.flatnonzero(late),
        state_dev=devs,
        state_f_cnt=new_f,
        state_time=np.where(joined_after, join_t, new_t),
        state_session=new_s,
        state_join=join_t,
    )


def late_holes(
    stored: dict[str, list[tuple[int, int]]],
    late: dict[str, set[int]],
    resets: dict[str, list[int]],
    recorded: dict[str, list[tuple[int, int]]],
) -> list[tuple[str, int, int, int]]:
    """Holes next to late uplinks: per device, ``stored`` holds its stored uplinks ``(f_cnt, time)`` in time order
    from the last one before its earliest late uplink to the first one after its latest (times in microseconds); a
    counter more than one beyond the one before it, where either of the two is late, leaves a hole unless a join
    (``resets``) lies between them. What ``recorded`` gaps or stored counters already cover is not a hole. Returns
    ``(dev_eui, from, to, time of the uplink after the hole)``."""
    holes: list[tuple[str, int, int, int]] = []
    for dev, rows in stored.items():
        mine = late.get(dev, set())
        have = {f for f, _ in rows}
        covered = recorded.get(dev, [])
        joins = resets.get(dev, [])
        for (f0, t0), (f1, t1) in zip(rows, rows[1:], strict=False):
            if f1 <= f0 + 1 or not (f0 in mine or f1 in mine) or any(t0 < j <= t1 for j in joins):
                continue
            taken = covered + [(f, f) for f in have if f0 < f < f1]
            holes += [(dev, lo, hi, t1) for lo, hi in _subtract(f0 + 1, f1 - 1, taken)]
    return holes


def _subtract(lo: int, hi: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``lo .. hi`` that no range of ``taken`` covers."""
    parts: list[tuple[int, int]] = []
    for a, b in sorted(taken):
        if b < lo:
            continue
        if a > hi:
            break
        if a > lo:
            parts.append((lo, a - 1))
        lo = max(lo, b + 1)
    if lo <= hi:
        parts.append((lo, hi))
    return parts
