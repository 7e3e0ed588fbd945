"""common.phone's fast path for "+digits" (``_fast_e164``) against phonenumbers itself:
it may only say "valid, and this is its E.164" where parse + is_valid_number say the same,
and ``normalise`` gives the same answer or the same words with it and without it."""
from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberType

from common import phone

#: Every type a region's metadata may hold an example of.
TYPES = [t for t in vars(PhoneNumberType).values() if isinstance(t, int) and t != PhoneNumberType.UNKNOWN]


def slow(digits: str) -> str | None:
    """What phonenumbers says of "+digits": its E.164 when valid, else None."""
    try:
        num = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164) if phonenumbers.is_valid_number(num) else None


def examples(*, with_prefix: bool = False) -> list[str]:
    """The digits after "+" of every example number phonenumbers has, geographic or not;
    ``with_prefix``: of the geographic ones with their region's national prefix written
    after the country code (+44 0 20…), which parse strips where the rest is possible."""
    out = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        prefix = phonenumbers.ndd_prefix_for_region(region, True) or ""
        for t in TYPES:
            num = phonenumbers.example_number_for_type(region, t)
            if num is not None and (prefix or not with_prefix):
                nsn = phonenumbers.national_significant_number(num)
                out.add(f"{num.country_code}{prefix if with_prefix else ''}{nsn}")
    for cc in () if with_prefix else phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        num = phonenumbers.example_number_for_non_geo_entity(cc)
        if num is not None:
            out.add(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)[1:])
    return sorted(out)


EXAMPLES = examples()
PREFIXED = examples(with_prefix=True)


def agree(digits: str) -> str | None:
    fast = phone._fast_e164(digits)
    assert fast is None or fast == slow(digits), digits
    return fast


def test_every_example_number_takes_the_fast_path_with_the_same_answer() -> None:
    """The fast path answers for every valid example (so it is the path real lists take),
    each the E.164 phonenumbers gives."""
    assert len(EXAMPLES) > 1000 and len(PREFIXED) > 500
    taken = 0
    for digits in EXAMPLES + PREFIXED:
        expected = slow(digits)
        if expected is not None:
            assert phone._fast_e164(digits) == expected, digits
            taken += 1
        else:
            agree(digits)
    assert taken > 1500  # the prefixed ones count: parse strips the prefix from most


def test_example_numbers_one_digit_off_agree() -> None:
    """Each example with a digit dropped, added or changed: near-valid numbers, where a
    wrong length or type rule would show."""
    for digits in EXAMPLES:
        for variant in {digits[:-1], digits + "0", digits + "9", digits[:-1] + str((int(digits[-1]) + 1) % 10),
                        digits[:4] + "0" + digits[5:], digits[:3] + "1" + digits[4:]}:
            if len(variant) >= 3 and variant[0] != "0":
                agree(variant)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(COUNTRY_CODE_TO_REGION_CODE)), st.text("0123456789", min_size=0, max_size=17))
@example(48, "600000123")
@example(39, "0612345678")   # Italy: a leading zero kept
@example(1, "2015550123")    # NANPA: one code, many regions
@example(7, "7012345678")    # Kazakhstan inside +7
@example(44, "7624123456")   # Isle of Man inside +44
@example(800, "12345678")    # non-geographic
@example(48, "00")
@example(39, "000000")
def test_a_country_code_and_random_digits_agree(cc: int, rest: str) -> None:
    digits = f"{cc}{rest}"
    if len(digits) >= 3:
        agree(digits)


@settings(max_examples=3000, deadline=None)
@given(st.from_regex(r"[1-9][0-9]{2,19}", fullmatch=True))
def test_random_digits_agree(digits: str) -> None:
    agree(digits)


def slow_normalise(value: object, region: str | None, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(phone, "_fast_e164", lambda digits: None)
        return phone.normalise(value, region)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.sampled_from(EXAMPLES).map(lambda d: "+" + d),
                      st.from_regex(r"\+[0-9]{0,21}", fullmatch=True),
                      st.sampled_from(EXAMPLES).map(lambda d: " +" + d[:-1] + " ")),
       region=st.sampled_from([None, "PL", "US", "GB", "IT", "pl"]))
@example(text="+48600000123", region=None)
@example(text="+48", region=None)
@example(text="+0048600000123", region="PL")
@example(text="+999123456", region="PL")
def test_normalise_gives_the_same_answer_and_words(text: str, region: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the fast path and without it: the same E.164, or the same error sentence."""
    def outcome(f):  # type: ignore[no-untyped-def]
        try:
            return ("ok", f())
        except phone.NumberError as exc:
            return ("error", str(exc))

    assert outcome(lambda: phone.normalise(text, region)) == outcome(lambda: slow_normalise(text, region, monkeypatch))
