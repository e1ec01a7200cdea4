"""The fingerprint's file and its comparison (core.manifest, core.compare, explain.compare):
keys by id and by name, the written file whole or refused, each kind of difference counted and
spelled out, and the cause a pattern of differences names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlflowcheck.core.compare import compare_manifests, points_difference
from mlflowcheck.core.errors import CheckFailed
from mlflowcheck.core.manifest import ManifestWriter, digest, key_of, read_header, records
from mlflowcheck.explain.compare import verdict

RUN = {
    "kind": "run", "id": "r1", "owner_name": "exp/train/abc/1", "experiment_id": "1", "name": "train",
    "status": "FINISHED", "start_time": 1000, "end_time": 2000, "lifecycle": "active",
    "artifact_uri": "mlflow-artifacts:/1/r1/artifacts", "params": {"lr": "0.1"}, "tags": {"mlflow.user": "me"},
    "inputs": [],
}  # fmt: skip
LOSS = {"kind": "metric", "owner": "r1", "owner_name": "exp/train/abc/1", "key": "loss",
        "points": [[0, 1000, 0.9], [1, 1001, 0.5], [2, 1002, 0.25]]}  # fmt: skip
FILE = {"kind": "artifact", "owner": "run:r1", "owner_name": "exp/train/abc/1", "root": "mlflow-artifacts:/1/r1/a",
        "path": "report.txt", "size": 10, "sha256": "ab" * 32}  # fmt: skip


def write(path: Path, *objects: dict, header: dict | None = None) -> Path:
    writer = ManifestWriter(path, header or {"created": "2026-12-03T10:00:00Z", "created_ms": 5000})
    for record in objects:
        writer.add(record)
    writer.close({"seconds": 0.1, "requests": 3})
    return path


def test_a_run_is_keyed_by_its_id_or_by_its_names_and_a_copy_differs_only_in_what_a_copy_changes():
    copy = {**RUN, "id": "r9", "experiment_id": "7", "artifact_uri": "mlflow-artifacts:/7/r9/artifacts",
            "start_time": 5000, "end_time": 6000, "tags": {"mlflow.user": "importer"}}  # fmt: skip
    assert key_of(RUN, "id") == '["run", "r1"]'
    assert key_of(RUN, "name") == key_of(copy, "name") == '["run", "exp/train/abc/1"]'
    assert digest(RUN, "name") == digest(copy, "name")
    assert digest(RUN, "id") != digest(copy, "id")
    assert digest(RUN, "name") != digest({**copy, "params": {"lr": "0.2"}}, "name")


def test_a_manifest_is_renamed_into_place_only_when_whole_and_its_counts_are_in_the_trailer(tmp_path):
    path = tmp_path / "f.jsonl"
    writer = ManifestWriter(path, {"created": "now"})
    writer.add(RUN)
    assert not path.exists()  # until close: a cut-short fingerprint leaves no whole-looking file
    writer.abandon()
    assert list(tmp_path.iterdir()) == []
    write(path, RUN, LOSS)
    header = read_header(path)
    assert (header["schema"], header["end"]["counts"]) == (1, {"run": 1, "metric": 1})
    assert [r["kind"] for _, r in records(path)] == ["run", "metric"]


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (['{"kind": "run"}', '{"kind": "end"}'], "its first line is not a manifest header"),
        (['{"kind": "manifest", "schema": 2}', '{"kind": "end"}'], "it has schema 2, and this suite reads schema 1"),
        (['{"kind": "manifest", "schema": 1}', '{"kind": "run"}'], "it ends before its trailer"),
        (["not json", "{}"], "its first or last line is not JSON"),
    ],
)
def test_a_file_that_is_not_a_whole_manifest_is_refused_with_the_reason(tmp_path, lines, why):
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CheckFailed) as info:
        read_header(path)
    assert info.value.message.startswith(f"{path} is not a fingerprint this suite can compare: {why}")


@pytest.mark.parametrize(
    ("after", "said"),
    [
        ([[0, 1000, 0.9], [2, 1002, 0.25]], "3 points before, 2 after, step 1 missing"),
        ([[0, 1000, 0.9], [1, 1001, 0.75], [2, 1002, 0.25]], "3 points before, 3 after, step 1 was 0.5, now 0.75"),
        ([*LOSS["points"], [3, 1003, 0.1]], "3 points before, 4 after, step 3 new"),
    ],
)
def test_a_changed_metric_history_is_spelled_out_by_its_first_difference(after, said):
    assert points_difference(LOSS["points"], after) == said


def test_nan_read_back_as_nan_is_no_difference():
    nan = float("nan")
    assert points_difference([[0, 1, nan]], [[0, 1, nan], [1, 2, 0.0]]) == "1 points before, 2 after, step 1 new"


def test_missing_altered_and_new_objects_are_counted_per_kind_with_the_first_differences(tmp_path):
    before = write(tmp_path / "a.jsonl", RUN, LOSS, FILE)
    changed = {**LOSS, "points": LOSS["points"][:2]}
    newer = {**RUN, "id": "r2", "owner_name": "exp/train/abc/2", "start_time": 9000}
    after = write(tmp_path / "b.jsonl", RUN, changed, newer, header={"created": "later"})
    result = compare_manifests(before, after)
    assert {k: vars(c) for k, c in result.kinds.items() if c.compared or c.extra} == {
        "run": {"compared": 1, "equal": 1, "missing": 0, "altered": 0, "extra": 1},
        "metric": {"compared": 1, "equal": 0, "missing": 0, "altered": 1, "extra": 0},
        "artifact": {"compared": 1, "equal": 0, "missing": 1, "altered": 0, "extra": 0},
    }
    assert result.examples == {
        "metric": ["run r1 metric loss: 3 points before, 2 after, step 2 missing"],
        "artifact": ["run r1 file report.txt: missing"],
    }
    ok, text, tip = verdict(result, read_header(before), read_header(after))
    assert not ok
    assert text.startswith("Since the fingerprint of 2026-12-03T10:00:00Z: 1 objects missing, 1 altered, 1 new")
    assert "1 objects were created after the first fingerprint: something still writes to this server." in text
    assert tip.startswith("stop every writer before an upgrade")


def test_files_gone_while_the_metadata_is_equal_are_one_line_naming_the_artifact_store(tmp_path):
    files = [{**FILE, "path": f"f{i}.txt"} for i in range(40)]
    before = write(tmp_path / "a.jsonl", RUN, LOSS, *files)
    after = write(tmp_path / "b.jsonl", RUN, LOSS)
    ok, text, tip = verdict(compare_manifests(before, after), read_header(before), read_header(after))
    assert not ok
    assert (
        "The metadata is all there (1 runs and 1 metric histories equal), but all artifact files are gone or "
        "unreadable: the database was restored or migrated without its artifact store (the missing files' URIs "
        "begin mlflow-artifacts:/1/r1/a)."
    ) in text
    assert text.count(": missing") == 5  # the first few; the counts say the rest
    assert "… and 35 more (the counts above)" in text
    assert tip.startswith("restore the artifact store from the same backup as the database")


def test_a_server_that_holds_none_of_it_is_named_another_or_an_empty_store(tmp_path):
    before = write(tmp_path / "a.jsonl", RUN, LOSS, header={"server": {"store": "FileStore"}})
    after = write(tmp_path / "b.jsonl", header={"server": {"store": "SqlStore"}})
    ok, text, tip = verdict(compare_manifests(before, after), read_header(before), read_header(after))
    assert "The server holds none of the 2 objects fingerprinted: this is another, or an empty, store" in text
    assert "The server's store changed from FileStore to SqlStore." in text
    assert tip.startswith("start the server on the database the data is in (--backend-store-uri)")


def test_an_unchanged_server_is_a_pass_that_counts_every_object(tmp_path):
    before = write(tmp_path / "a.jsonl", RUN, LOSS, FILE)
    ok, text, tip = verdict(compare_manifests(before, before), read_header(before), read_header(before))
    assert ok
    assert tip is None
    assert text.splitlines()[0] == "3 objects equal, nothing lost or altered (matched by id)"
    assert json.dumps(compare_manifests(before, before).as_dict()["kinds"]["run"]) == (
        '{"compared": 1, "equal": 1, "missing": 0, "altered": 0, "extra": 0}'
    )


def test_objects_alike_in_their_names_are_each_compared_none_lost_from_the_count(tmp_path):
    trace = {"kind": "trace", "id": "t1", "owner_name": "exp", "name": "predict", "request_time": 7, "spans": 1}
    before = write(tmp_path / "a.jsonl", trace, {**trace, "id": "t2"})
    after = write(tmp_path / "b.jsonl", {**trace, "id": "t9"})
    counts = compare_manifests(before, after, "name").kinds["trace"]
    assert vars(counts) == {"compared": 2, "equal": 1, "missing": 1, "altered": 0, "extra": 0}


def test_one_history_comparison_serves_compare_and_the_load_probe():
    from mlflowcheck.core.compare import history_difference
    from mlflowcheck.core.loadstats import compare_points

    before = [(0, 100, 1.0), (1, 101, float("nan")), (2, 102, 0.5)]
    after = [(0, 100, 1.0), (1, 101, float("nan")), (2, 102, 0.25), (2, 102, 0.25), (3, 103, 9.0)]
    diff = history_difference(before, after)
    assert (diff.lost, diff.duplicated, diff.new) == ([], [], [(3, 103, 9.0)])
    assert diff.altered == [(2, 102, 0.5, 0.25), (2, 102, 0.5, 0.25)]
    # The load probe's points are (step, value, timestamp): the same verdict through loadstats.
    loss = compare_points("acc", [(s, v, t) for s, t, v in before], [(s, v, t) for s, t, v in after])
    assert (loss.lost, loss.duplicated, loss.altered) == (0, 1, 2)
    # A sender that died: what it never reported is not counted, what it reported must be there.
    partial = history_difference(before[:1], [(0, 100, 1.0), (5, 105, 2.0)], complete=False)
    assert (partial.lost, partial.new, partial.altered) == ([], [], [])
    assert history_difference(before[:1], [], complete=False).lost == [(0, 100, 1.0)]
