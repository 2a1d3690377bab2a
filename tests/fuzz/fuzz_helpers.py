"""Shared Hypothesis settings and strategies of the fuzz tests (plain module, no fixtures).

Every test states its own ``max_examples`` (the budget of the whole directory is ~2.5 min on
two cores); all of them are derandomized and keep no example database, so a CI run is
deterministic and writes nothing to the tree.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fuzz_settings(max_examples: int, **kw: Any) -> settings:
    """Deterministic settings with ``max_examples``; no deadline (I/O and cold imports)."""
    kw.setdefault("suppress_health_check", [HealthCheck.too_slow, HealthCheck.data_too_large])
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None, **kw)


#: Any JSON value (what a hostile or broken peer can send).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=20,
)

#: Numbers of every awkward kind, and some non-numbers.
wild_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1, 2**63 - 1, 2**63, 2**64, -(2**63), 1e300, -1e300, 1e-300]),
    st.booleans(),
    st.text(max_size=6),
    st.none(),
)


def collect(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` deterministic examples of ``strategy`` (for feeding real services in a batch).

    Integration tests submit all cases first and check them together (a service round trip
    per shrink step would not fit the budget); on failure the assertion names the case.
    """
    from hypothesis import given

    out: list[Any] = []

    @fuzz_settings(n, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def gather(value: Any) -> None:
        out.append(value)

    gather()
    return out
