"""The artifact store: references round-trip, names cannot escape the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.store import ArtifactStore


def test_put_returns_a_reference_that_reads_back(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    ref = store.put("run-1", "logs/pytest.txt", "1 failed\n")
    binary = store.put("run-1", "patch.diff", b"\x00\xff")

    assert ref == "artifact://run-1/logs/pytest.txt"
    assert store.read(ref) == b"1 failed\n"
    assert store.read(binary) == b"\x00\xff"
    assert store.path(ref) == (tmp_path / "artifacts/run-1/logs/pytest.txt").resolve()
    store.put("run-1", "logs/pytest.txt", "replaced")
    assert store.read(ref) == b"replaced"
    assert sorted(p.name for p in (tmp_path / "artifacts/run-1/logs").iterdir()) == ["pytest.txt"]


@pytest.mark.parametrize(
    ("run_id", "name"),
    [
        ("run-1", "../escape.txt"),
        ("run-1", "logs/../../escape.txt"),
        ("run-1", "/etc/passwd"),
        ("run-1", ""),
        ("run-1", "a//b"),
        ("run-1", "bad\x00name"),
        ("run-1", "..\\escape"),
        ("..", "x.txt"),
        ("a/b", "x.txt"),
        ("", "x.txt"),
    ],
)
def test_names_that_escape_the_store_are_refused(tmp_path: Path, run_id: str, name: str) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    with pytest.raises(ValueError, match=r"invalid|relative path|escapes"):
        store.put(run_id, name, "x")
    assert not (tmp_path / "escape.txt").exists()
    assert list(tmp_path.rglob("*.txt")) == []


def test_a_symlink_planted_in_the_store_does_not_lead_outside(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    (tmp_path / "artifacts/run-1").mkdir(parents=True)
    (tmp_path / "artifacts/run-1/out").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="escapes the artifact store"):
        store.put("run-1", "out/evil.txt", "x")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("ref", ["file:///etc/passwd", "artifact://run-1", "artifact://../x/y"])
def test_malformed_references_are_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(ValueError, match="artifact"):
        ArtifactStore(tmp_path).path(ref)


def test_reading_a_missing_artifact_names_the_reference(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"artifact://run-1/none\.txt does not exist"):
        ArtifactStore(tmp_path).read("artifact://run-1/none.txt")
