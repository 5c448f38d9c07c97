from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_jdt.data import assign_folds, fold_sizes, select_fold


def test_fold_sizes_follow_the_paper_rule() -> None:
    # DML reference code: n // k cases per fold, the last fold takes the remainder
    assert fold_sizes(131, 5) == [26, 26, 26, 26, 131 - 4 * 26]
    assert fold_sizes(210, 5) == [42] * 5
    assert fold_sizes(12, 5) == [2, 2, 2, 2, 4]
    assert fold_sizes(3, 1) == [3]


def test_paper_split_of_lits_cases() -> None:
    # JDTLosses LiTS fold 1: validation cases are 26..51 (fold_size * fold .. fold_size * (fold + 1))
    folds = assign_folds(131, 5)
    assert [i for i, f in enumerate(folds) if f == 1] == list(range(26, 52))
    assert [i for i, f in enumerate(folds) if f == 4] == list(range(104, 131))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 120), k=st.integers(1, 10), seed=st.one_of(st.none(), st.integers(0, 2**31)))
def test_folds_are_disjoint_covering_and_sized(n: int, k: int, seed: int | None) -> None:
    if k > n:
        with pytest.raises(ValueError, match="folds must be <= the number of cases"):
            assign_folds(n, k, seed)
        return
    folds = assign_folds(n, k, seed)
    assert len(folds) == n and set(folds) == set(range(k))
    assert [folds.count(f) for f in range(k)] == fold_sizes(n, k)
    if seed is None:  # contiguous blocks: fold index never decreases along the case order
        assert folds == sorted(folds)


def test_shuffled_split_is_reproducible_and_differs_from_contiguous() -> None:
    a, b, c = assign_folds(40, 4, 7), assign_folds(40, 4, 7), assign_folds(40, 4, 8)
    assert a == b
    assert a != c
    assert a != assign_folds(40, 4)


def test_select_fold() -> None:
    data = [{"image": str(i), "fold": f} for i, f in enumerate(assign_folds(10, 3))]
    for fold in range(3):
        train, val = select_fold(data, fold)
        assert all(d["fold"] == fold for d in val) and all(d["fold"] != fold for d in train)
        assert sorted(d["image"] for d in train + val) == sorted(d["image"] for d in data)
    train, _ = select_fold(data, 0)
    train[0]["image"] = "changed"
    assert data[3]["image"] == "3"  # copies, the input is untouched


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: fold_sizes(10, 0), ValueError, "folds must be an integer >= 1, got 0"),
        (lambda: fold_sizes(10, 2.5), TypeError, "folds must be an integer"),
        (lambda: assign_folds(10, 2, -1), ValueError, "shuffle_seed must be an integer >= 0, got -1"),
        (lambda: select_fold([{"image": "a", "fold": 0}], 3), ValueError, r"fold must be one of \[0\], got 3"),
        (lambda: select_fold([{"image": "a"}], 0), ValueError, "must carry a 'fold' key"),
    ],
)
def test_fold_errors(call, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
