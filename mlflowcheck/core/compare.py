"""Two fingerprints compared (--compare, --restart): per kind of object, how many were compared,
equal, missing, altered and extra, with the first few differences spelled out.

The earlier manifest is indexed by key (kind and ids, or names: core.manifest.key_of) with each
record's digest and offset, the later one read a line at a time; a record is read again from
its offset only to spell out a difference. The explanations of a pattern of losses are
explain/compare.py's."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlflowcheck.core.manifest import KINDS, comparable, digest, key_of, record_at, records

#: Differences spelled out per kind; the rest are counted.
EXAMPLES = 5


@dataclass
class KindCounts:
    compared: int = 0  # in the earlier fingerprint
    equal: int = 0
    missing: int = 0
    altered: int = 0
    extra: int = 0  # only in the later one


@dataclass
class Comparison:
    match_by: str
    kinds: dict[str, KindCounts] = field(default_factory=lambda: {k: KindCounts() for k in KINDS})
    examples: dict[str, list[str]] = field(default_factory=dict)  # kind -> the first differences
    missing_records: dict[str, list[dict]] = field(default_factory=dict)  # kind -> the first ones, whole
    extra_records: dict[str, list[dict]] = field(default_factory=dict)
    altered_fields: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> field -> count

    @property
    def lost_or_altered(self) -> int:
        return sum(c.missing + c.altered for c in self.kinds.values())

    def as_dict(self) -> dict:
        return {
            "match_by": self.match_by,
            "kinds": {k: vars(c) for k, c in self.kinds.items() if c.compared or c.extra},
            "examples": self.examples,
        }

    def example(self, kind: str, text: str) -> None:
        found = self.examples.setdefault(kind, [])
        if len(found) < EXAMPLES:
            found.append(text)


def compare_manifests(before: Path, after: Path, match_by: str = "id") -> Comparison:
    result = Comparison(match_by)
    index: dict[str, tuple[str, int]] = {}
    for offset, record, key in keyed(before, match_by):
        index[key] = (digest(record, match_by), offset)
        result.kinds[record["kind"]].compared += 1
    for _, record, key in keyed(after, match_by):
        kind = record["kind"]
        counts = result.kinds[kind]
        found = index.pop(key, None)
        if found is None:
            counts.extra += 1
            keep(result.extra_records, kind, record)
            continue
        if found[0] == digest(record, match_by):
            counts.equal += 1
            continue
        counts.altered += 1
        old = record_at(before, found[1])
        changed = changed_fields(comparable(old, match_by), comparable(record, match_by))
        for name in changed:
            result.altered_fields.setdefault(kind, {}).setdefault(name, 0)
            result.altered_fields[kind][name] += 1
        result.example(kind, describe_change(old, record, changed))
    for _, (_, offset) in index.items():
        old = record_at(before, offset)
        result.kinds[old["kind"]].missing += 1
        keep(result.missing_records, old["kind"], old)
        result.example(old["kind"], f"{label(old)}: missing")
    return result


def keyed(path: Path, match_by: str):
    """Each record with its key; objects alike in their names (two traces of one name and time)
    are told apart by their place in the manifest: key, key#2, ..."""
    seen: dict[str, int] = {}
    for offset, record in records(path):
        key = key_of(record, match_by)
        seen[key] = seen.get(key, 0) + 1
        yield offset, record, key if seen[key] == 1 else f"{key}#{seen[key]}"


def keep(store: dict[str, list[dict]], kind: str, record: dict) -> None:
    found = store.setdefault(kind, [])
    if len(found) < 100:  # enough to see a pattern (explain.compare), bounded for huge servers
        found.append(record)


def changed_fields(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def label(record: dict) -> str:
    """An object as the report names it: kind and a short id or name."""
    kind = record["kind"]
    if kind == "metric":
        return f"run {short(record['owner'])} metric {record['key']}"
    if kind == "artifact":  # its owner: "run:<id>" or "model:<id>"
        what, _, ident = str(record["owner"]).partition(":")
        return f"{'run' if what == 'run' else 'logged model'} {short(ident)} file {record['path']}"
    if kind == "model_version":
        return f"model version {record['name']}/{record['version']}"
    if kind in ("registered_model", "prompt"):
        return f"{kind.replace('_', ' ')} {record['name']}"
    name = record.get("name")
    return f"{kind.replace('_', ' ')} {short(record['id'])}" + (f" ({name})" if name else "")


def short(identifier: str) -> str:
    identifier = str(identifier)
    return identifier if len(identifier) <= 12 else identifier[:8] + "…"


def describe_change(old: dict, new: dict, changed: list[str]) -> str:
    if old["kind"] == "metric" and "points" in changed:
        return f"{label(old)}: {points_difference(old['points'], new['points'])}"
    parts = []
    for name in changed[:3]:
        before, after = old.get(name), new.get(name)
        if isinstance(before, dict) and isinstance(after, dict):
            parts.append(f"{name} {dict_difference(before, after)}")
        else:
            parts.append(f"{name} {brief(before)} before, {brief(after)} after")
    return f"{label(old)}: " + "; ".join(parts)


@dataclass
class HistoryDiff:
    """A metric history against what it should hold, point by point, keyed by (step, timestamp)."""

    lost: list[tuple] = field(default_factory=list)  # (step, timestamp, value) not there
    duplicated: list[tuple] = field(default_factory=list)  # a point there once more than it should be
    altered: list[tuple] = field(default_factory=list)  # (step, timestamp, value before, value now)
    new: list[tuple] = field(default_factory=list)  # a point at a (step, timestamp) never there before


def history_difference(before: list, after: list, complete: bool = True) -> HistoryDiff:
    """The one comparison of metric histories: a manifest's before and after (--compare,
    --restart), and the load probe's acknowledged points against the server's (loadstats).
    Points are (step, timestamp, value); NaN equals NaN. Not ``complete`` (what ``before`` lists
    is only what a sender reported before it died): points at other keys are not counted."""
    want = Counter((p[0], p[1], comparable_value(p[2])) for p in before)
    have = Counter((p[0], p[1], comparable_value(p[2])) for p in after)
    keys = {(s, t): v for s, t, v in want}
    if not complete:
        have = Counter({p: n for p, n in have.items() if (p[0], p[1]) in keys})
    diff = HistoryDiff()
    for point, count in sorted(have.items(), key=lambda item: item[0][:2]):
        if point in want:
            diff.duplicated += [point] * max(0, count - want[point])
        elif (point[0], point[1]) in keys:
            diff.altered += [(point[0], point[1], keys[(point[0], point[1])], point[2])] * count
        else:
            diff.new += [point] * count
    altered_keys = {(s, t) for s, t, _, _ in diff.altered}
    for point, count in sorted(want.items(), key=lambda item: item[0][:2]):
        if (point[0], point[1]) not in altered_keys:
            diff.lost += [point] * max(0, count - have.get(point, 0))
    return diff


def comparable_value(value):
    return "NaN" if isinstance(value, float) and value != value else value  # NaN is stored and read back as NaN


def points_difference(before: list, after: list) -> str:
    """How a metric's history changed: the counts and the first step missing, altered or extra."""
    diff = history_difference(before, after)
    text = f"{len(before)} points before, {len(after)} after"
    if diff.lost:
        more = f" (and {len(diff.lost) - 1} more)" if len(diff.lost) > 1 else ""
        return f"{text}, step {diff.lost[0][0]} missing{more}"
    if diff.altered:
        step, _, was, now = diff.altered[0]
        return f"{text}, step {step} was {was!r}, now {now!r}"
    if diff.new:
        return f"{text}, step {diff.new[0][0]} new"
    if diff.duplicated:
        return f"{text}, step {diff.duplicated[0][0]} stored twice"
    return f"{text}, in another order"


def same_value(a, b) -> bool:
    return a == b or (a != a and b != b)  # NaN is stored and read back as NaN


def dict_difference(before: dict, after: dict) -> str:
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    altered = sorted(k for k in before if k in after and before[k] != after[k])
    parts = []
    if gone:
        parts.append(f"{', '.join(gone[:3])} missing")
    if altered:
        k = altered[0]
        parts.append(f"{k} was {brief(before[k])}, now {brief(after[k])}")
    if new:
        parts.append(f"{', '.join(new[:3])} new")
    return "(" + "; ".join(parts) + ")"


def brief(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
