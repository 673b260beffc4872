"""core/jsonutil: compact text mirrors read back as the value, whatever orjson accepts or refuses."""

from __future__ import annotations

import json
import math
from typing import Any

import pydantic_core
from hypothesis import given
from hypothesis import strategies as st

from clipia_mcp.core.jsonutil import dumps_compact

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@given(_json)
def test_the_text_is_the_value_compact(value: Any) -> None:
    text = dumps_compact(value)
    assert json.loads(text) == value
    assert text == pydantic_core.to_json(value).decode()  # byte for byte what the mirrors were before orjson


def test_what_orjson_refuses_still_becomes_json() -> None:
    # An integer past 64 bits and a non-string key: orjson raises, pydantic_core writes them.
    assert dumps_compact({"big": 2**70, 1: "x"}) == '{"big":1180591620717411303424,"1":"x"}'
    # NaN and infinities are null on both paths (the SDK writes structured content so; NaN is not JSON).
    assert dumps_compact({"a": math.nan, "b": [math.inf]}) == '{"a":null,"b":[null]}'
    assert dumps_compact({"a": math.nan, "big": 2**70}) == '{"a":null,"big":1180591620717411303424}'
    assert dumps_compact({"t": "é\u2028<>&\x00"}) == '{"t":"é\u2028<>&\\u0000"}'
