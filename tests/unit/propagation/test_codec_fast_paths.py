"""The codec's shortcuts write exactly what the general path writes: text that needs no
percent-encoding, and bool/int/float tag values."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posthog_otel.propagation._baggage_codec import VALUE_SAFE, encode_tag_key, encode_tag_value

_KEY_SAFE = "!#$&'*-.^_`|~"
_SAMPLES = st.one_of(
    st.text(),
    st.text(alphabet="abcXYZ019_.-~!#$&'()*/:<=>?@[]^`{|}% \\,;\"é\x00"),
)


@given(_SAMPLES)
def test_values_are_percent_encoded_as_quote_does(text: str) -> None:
    expected = quote(text, safe=VALUE_SAFE, encoding="utf-8", errors="replace")
    written = encode_tag_value(text)
    if text[:1] and text[0] in '-0123456789"[{tfn \t\r\n':  # JSON-looking text is quoted first
        return
    assert written == expected


@given(_SAMPLES)
def test_keys_are_percent_encoded_as_quote_does(text: str) -> None:
    assert encode_tag_key(text) == quote(text, safe=_KEY_SAFE, encoding="utf-8", errors="replace")


@given(st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_scalar_tag_values_are_written_as_json_dumps_writes_them(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert encode_tag_value(value) == quote(text, safe=VALUE_SAFE)


def test_an_int_over_the_digit_limit_still_takes_the_general_path() -> None:
    # over Python's int-to-text digit limit json.dumps raises, and encode() leaves the tag out
    with pytest.raises(ValueError):
        encode_tag_value(10**5000)
    assert encode_tag_value(10**3999) == "1" + "0" * 3999
