"""Known MLflow advisories matched against a server's version (explain.advisories)."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from mlflowcheck.explain.advisories import ADVISORIES, Advisory, affecting, upgrade_to


def ids(version: str) -> set[str]:
    return {a.id for a in affecting(version)}


def test_a_release_at_or_after_every_fix_is_affected_by_none():
    newest_fix = max(Version(a.fixed) for a in ADVISORIES)
    assert affecting(str(newest_fix)) == []
    assert affecting("3.17.2") == []


def test_a_release_is_affected_by_each_advisory_fixed_after_it():
    assert ids("3.9.5") == {
        "CVE-2026-33865", "CVE-2026-2651", "CVE-2026-3198", "CVE-2026-4035", "CVE-2026-2652", "CVE-2026-2614",
        "CVE-2026-2734", "CVE-2026-2611",
    }  # fmt: skip


def test_a_range_with_a_lower_bound_leaves_the_releases_before_it_alone():
    # CVE-2026-2611 affects >=3.9.0,<3.10.0 only (the MLflow Assistant came with 3.9).
    assert "CVE-2026-2611" in ids("3.9.0")
    assert "CVE-2026-2611" not in ids("3.8.1")
    assert "CVE-2026-2611" not in ids("3.10.0")


def test_two_ranges_joined_by_or_are_each_matched():
    # CVE-2025-11201: <2.22.4 || >=3.0.0rc0,<3.0.0.
    assert "CVE-2025-11201" in ids("2.22.3")
    assert "CVE-2025-11201" not in ids("2.22.4")
    assert "CVE-2025-11201" not in ids("3.0.0")
    advisory = Advisory("CVE-X", "GHSA-X", ">=1.0,<2.0||>=3.0,<3.2", "3.2", "test")
    assert [advisory.affects(v) for v in ("0.9", "1.0", "1.5rc1", "2.0", "3.1.9", "3.2")] == [
        False, True, True, False, True, False,
    ]  # fmt: skip


def test_a_release_candidate_of_an_earlier_release_is_matched():
    # "<3.11.0rc1": 3.11.0rc0 is before the fix, rc1 is the fix.
    assert "CVE-2026-2651" in ids("3.11.0rc0")
    assert "CVE-2026-2651" not in ids("3.11.0rc1")
    assert "CVE-2026-2614" in ids("3.9.0rc1"), "<3.10.0: an earlier release's candidate"


def test_a_release_candidate_of_the_fixed_release_is_affected_as_the_advisory_states():
    assert "CVE-2025-11201" in ids("3.0.0rc1")
    assert "CVE-2026-4035" in ids("3.11.0rc1")
    assert "CVE-2026-2614" in ids("3.10.0rc0")


def test_the_seeds_server_version_is_affected_and_must_upgrade_to_the_newest_fix():
    found = affecting("3.1.4")
    assert len(found) == 10
    assert upgrade_to(found) == "3.11.1"


def test_a_version_that_does_not_parse_matches_nothing():
    assert affecting("not-a-version") == []
    assert affecting("") == []


def test_the_upgrade_is_the_highest_of_the_fixes_compared_as_versions_not_text():
    found = [Advisory("a", "x", "<3.9.0", "3.9.0", ""), Advisory("b", "y", "<3.10.0", "3.10.0", "")]
    assert upgrade_to(found) == "3.10.0"


@pytest.mark.parametrize("advisory", ADVISORIES, ids=lambda a: a.id)
def test_every_rows_fixed_release_is_outside_its_affected_range(advisory):
    # A row whose fix is still "affected" would tell users to upgrade to a vulnerable release.
    assert not advisory.affects(advisory.fixed)
    for spec in advisory.affected.split("||"):
        SpecifierSet(spec)  # parses


def test_the_upgrade_is_never_to_a_release_older_than_the_oldest_supported_server():
    found = [Advisory("a", "x", "<2.16.0", "2.16.0", "")]
    assert upgrade_to(found) == "3.1.4"
