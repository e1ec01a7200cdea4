"""Sizes as the user writes them and as the suite shows them (probes.artifacts)."""

from __future__ import annotations

import pytest

from mlflowcheck.probes.artifacts import human_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1500000", 1_500_000),
        ("512K", 512 * 1024),
        ("4M", 4 * 2**20),
        ("1G", 2**30),
        ("4m", 4 * 2**20),
        ("4MB", 4 * 2**20),
        ("4MiB", 4 * 2**20),
        ("1.5k", 1536),
        (" 2M ", 2 * 2**20),
        ("100B", 100),
    ],
)
def test_a_size_is_bytes_or_a_number_of_kib_mib_or_gib(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "K", "abc", "0", "-1K", "-0", "1T", "nan", "4 M B"])
def test_what_is_not_a_positive_size_is_a_value_error(text):
    # Its words are never shown: cli.size_argument replaces them with the sizes it takes.
    with pytest.raises(ValueError):  # noqa: PT011
        parse_size(text)


@pytest.mark.parametrize("text", ["inf", "1e400"])
def test_an_infinite_size_is_a_value_error(text):
    with pytest.raises(ValueError):  # noqa: PT011
        parse_size(text)


def test_a_size_of_less_than_one_byte_is_a_value_error():
    with pytest.raises(ValueError):  # noqa: PT011
        parse_size("0.5")


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (64 * 1024, "64 KiB"),
        (4 * 2**20, "4 MiB"),
        (int(2.25 * 2**20), "2.2 MiB"),  # one decimal, rounded half to even
        (3 * 2**30, "3 GiB"),
        (2**40, "1024 GiB"),
    ],
)
def test_a_size_is_shown_in_the_largest_binary_unit_with_at_most_one_decimal(size, shown):
    assert human_size(size) == shown


def test_a_shown_size_reads_back_as_the_same_size():
    for size in (512 * 1024, 4 * 2**20, 2**30):
        number, unit = human_size(size).split()
        assert parse_size(number + unit[0]) == size
