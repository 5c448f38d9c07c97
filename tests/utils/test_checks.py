from __future__ import annotations

import pytest
import torch

from monai_jdt.utils import (
    ShapeError,
    check_bool,
    check_in_range,
    check_non_negative,
    check_option,
    check_positive_int,
    check_weights_mapping,
)


def test_in_range_message_names_argument_constraint_and_value() -> None:
    with pytest.raises(ValueError, match=r"^epsilon must be in \[0, 1\), got 1.2$"):
        check_in_range("epsilon", 1.2, 0, 1, high_inclusive=False)
    with pytest.raises(ValueError, match=r"must be in \(0, inf\), got 0"):
        check_in_range("sigma", 0, 0, None, low_inclusive=False)
    assert check_in_range("epsilon", 0, 0, 1, high_inclusive=False) == 0.0


def test_real_checks_types_and_finiteness() -> None:
    with pytest.raises(TypeError, match="alpha must be a real number, got str"):
        check_non_negative("alpha", "1")
    with pytest.raises(ValueError, match="alpha must be finite, got nan"):
        check_non_negative("alpha", float("nan"))
    with pytest.raises(ValueError, match="alpha must be >= 0, got -0.5"):
        check_non_negative("alpha", -0.5)
    assert check_non_negative("alpha", torch.tensor(2.0)) == 2.0


def test_positive_int_and_bool() -> None:
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1, got 0"):
        check_positive_int("n_bins", 0)
    with pytest.raises(TypeError, match="n_bins must be an integer, got float 1.5"):
        check_positive_int("n_bins", 1.5)
    assert check_positive_int("n_bins", 15.0) == 15
    with pytest.raises(TypeError, match="batch must be a bool, got int 1"):
        check_bool("batch", 1)


def test_option_uses_look_up_option_and_names_argument() -> None:
    assert check_option("reduction", "sum", ("mean", "sum", "none")) == "sum"
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        check_option("reduction", "avg", ("mean", "sum", "none"))
    with pytest.raises(TypeError, match="reduction must be one of"):
        check_option("reduction", None, ("mean",))


def test_weights_mapping() -> None:
    assert check_weights_mapping("levels", {"batch": 0.5, "image": 0.5}, ("batch", "image", "class")) == {
        "batch": 0.5,
        "image": 0.5,
    }
    with pytest.raises(ValueError, match=r"levels keys must be in \['batch', 'image', 'class'\], got 'pixel'"):
        check_weights_mapping("levels", {"pixel": 1.0}, ("batch", "image", "class"))
    with pytest.raises(ValueError, match=r"levels\['image'\] must be >= 0, got -1"):
        check_weights_mapping("levels", {"image": -1}, ("batch", "image", "class"))
    with pytest.raises(ValueError, match="at least one positive weight"):
        check_weights_mapping("levels", {"image": 0}, ("batch", "image", "class"))


def test_shape_error_is_value_and_assertion_error() -> None:
    assert issubclass(ShapeError, ValueError) and issubclass(ShapeError, AssertionError)
