"""The model read back, file by file (probes.models): the digests of a tree, and what differs."""

from __future__ import annotations

import hashlib

from mlflowcheck.probes.models import digest_differences, tree_digests


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_digest_differences_name_every_file_with_both_hashes():
    saved = {"MLmodel": "a" * 64, "model.pkl": "b" * 64, "conda.yaml": "c" * 64}
    got = {"MLmodel": "a" * 64, "model.pkl": "d" * 64, "extra.py": "e" * 64}
    assert digest_differences(got, saved) == [
        f"conda.yaml: missing (saved sha256 {'c' * 64})",
        f"extra.py: not saved by the suite (sha256 {'e' * 64})",
        f"model.pkl: sha256 {'d' * 64}, saved {'b' * 64}",
    ]
    assert digest_differences(saved, saved) == []


def test_nothing_downloaded_is_every_saved_file_missing():
    assert digest_differences({}, {"b": "2", "a": "1"}) == [
        "a: missing (saved sha256 1)",
        "b: missing (saved sha256 2)",
    ]


def test_the_digests_of_a_tree_are_every_file_by_its_relative_posix_path(tmp_path):
    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "MLmodel").write_bytes(b"flavors: {}\n")
    (tmp_path / "model" / "sub" / "weights.bin").write_bytes(b"\x00\x01")
    (tmp_path / "model" / "empty").mkdir()  # a folder is not a file
    assert tree_digests(tmp_path / "model") == {
        "MLmodel": sha(b"flavors: {}\n"),
        "sub/weights.bin": sha(b"\x00\x01"),
    }


def test_a_changed_byte_shows_as_that_file_differing(tmp_path):
    (tmp_path / "a").write_bytes(b"same")
    (tmp_path / "b").write_bytes(b"before")
    saved = tree_digests(tmp_path)
    (tmp_path / "b").write_bytes(b"beforf")
    assert digest_differences(tree_digests(tmp_path), saved) == [f"b: sha256 {sha(b'beforf')}, saved {sha(b'before')}"]


def test_an_empty_tree_has_no_digests(tmp_path):
    assert tree_digests(tmp_path) == {}
