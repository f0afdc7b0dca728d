"""The workspace file tools: behaviour, and confinement against every planted escape.

Each attack asserts the ToolError *and* that nothing outside the workspace changed (a
sentinel directory is snapshotted before and after).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.tools.errors import ToolError
from shipyard.tools.files import Workspace


def snapshot(root: Path) -> dict[str, tuple[str, bytes]]:
    """Every entry under ``root``: kind and content (or link target)."""
    found: dict[str, tuple[str, bytes]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path).encode())
        elif path.is_dir():
            found[rel] = ("dir", b"")
        else:
            found[rel] = ("file", path.read_bytes())
    return found


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    (out / "sub").mkdir(parents=True)
    (out / "secret.txt").write_text("TOP SECRET\n")
    (out / "sub" / "inner.txt").write_text("inner\n")
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (ws / "src" / "pkg" / "mod.py").write_text("def f():\n    return 1\n\ndef g():\n    return 2\n")
    (ws / "README.md").write_text("hello world\nsecond line\n")
    (ws / "node_modules" / "dep").mkdir(parents=True)
    (ws / "node_modules" / "dep" / "index.js").write_text("hello from dep\n")
    return ws


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace(root, max_file_bytes=4096, max_entries=50, max_matches=5, max_lines=100)


def refused(outside: Path, root: Path, action: Callable[[], object], *expected: str) -> str:
    """Run ``action``, require a ToolError mentioning ``expected``, and no change outside
    the workspace nor in its .git."""
    before, git_before = snapshot(outside), snapshot(root / ".git")
    with pytest.raises(ToolError) as info:
        action()
    assert snapshot(outside) == before
    assert snapshot(root / ".git") == git_before
    for word in expected:
        assert word in str(info.value)
    return str(info.value)


# ----- behaviour ---------------------------------------------------------------------------


def test_list_files_is_relative_sorted_hides_git_and_does_not_expand_dependencies(ws):
    assert ws.list_files().splitlines() == [
        "README.md",
        "node_modules/ (not expanded)",
        "src/",
        "src/pkg/",
        "src/pkg/mod.py",
    ]
    assert ws.list_files("src").splitlines() == ["src/pkg/", "src/pkg/mod.py"]
    assert ws.list_files("node_modules") == "node_modules/dep/\nnode_modules/dep/index.js"
    assert ws.list_files("README.md") == "README.md"


def test_list_files_caps_entries(root):
    for i in range(30):
        (root / f"f{i:02}.txt").write_text("x")
    out = Workspace(root, max_entries=10).list_files().splitlines()
    assert len(out) == 11
    assert out[-1].startswith("... truncated after 10 entries")


def test_read_file_numbers_lines_and_reads_ranges(ws):
    assert ws.read_file("README.md") == "     1\thello world\n     2\tsecond line"
    out = ws.read_file("src/pkg/mod.py", start_line=4, end_line=5)
    assert out.splitlines()[:2] == ["     4\tdef g():", "     5\t    return 2"]
    assert "showing lines 4-5 of 5" in out


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [(0, None, "bad line range"), (5, 2, "bad line range"), (99, None, "past the end")],
)
def test_read_file_bad_ranges_are_tool_errors(ws, start, end, message):
    with pytest.raises(ToolError, match=message):
        ws.read_file("README.md", start_line=start, end_line=end)


def test_read_file_reports_binary_and_caps_size(ws, root):
    (root / "img.bin").write_bytes(b"\x89PNG\0\0\x01")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    assert ws.read_file("img.bin") == "img.bin: binary file, 7 bytes (not shown)"
    assert ws.read_file("latin1.txt") == "latin1.txt: binary file, 4 bytes (not shown)"
    (root / "big.txt").write_text("".join(f"line {i}\n" for i in range(1000)))
    with pytest.raises(ToolError, match="over the 4096-byte read cap"):
        ws.read_file("big.txt")
    out = ws.read_file("big.txt", start_line=500, end_line=501)
    assert out.splitlines()[:2] == ["   500\tline 499", "   501\tline 500"]


def test_missing_file_and_directory_errors(ws):
    with pytest.raises(ToolError, match="no such file"):
        ws.read_file("nope.txt")
    with pytest.raises(ToolError, match="no such directory"):
        ws.read_file("nope/x.txt")
    with pytest.raises(ToolError, match="is a directory"):
        ws.read_file("src")
    with pytest.raises(ToolError, match="workspace root"):
        ws.write_file(".", "x")


def test_search_finds_lines_skips_dependencies_binaries_and_caps(ws, root):
    (root / "bin.dat").write_bytes(b"hello\0world")
    assert ws.search(r"hel+o") == "README.md:1: hello world"
    assert ws.search("hello", "node_modules") == "node_modules/dep/index.js:1: hello from dep"
    assert ws.search("return", "src/pkg/mod.py").splitlines() == [
        "src/pkg/mod.py:2:     return 1",
        "src/pkg/mod.py:5:     return 2",
    ]
    assert ws.search("zzz") == "no matches for 'zzz' under ."
    (root / "many.txt").write_text("x\n" * 20)
    out = ws.search("x", "many.txt").splitlines()
    assert len(out) == 6
    assert out[-1].startswith("... stopped at 5 matches")


def test_search_invalid_regex_is_a_tool_error(ws):
    with pytest.raises(ToolError, match="invalid regular expression"):
        ws.search("(unclosed")


def test_write_file_creates_parents_and_overwrites(ws, root):
    assert ws.write_file("new/dir/a.txt", "héllo\n") == "wrote 7 bytes to new/dir/a.txt"
    assert (root / "new" / "dir" / "a.txt").read_text() == "héllo\n"
    os.chmod(root / "README.md", 0o755)
    assert ws.write_file("./README.md", "short") == "wrote 5 bytes to README.md"
    assert (root / "README.md").read_text() == "short"
    assert (root / "README.md").stat().st_mode & 0o777 == 0o755  # written in place
    assert ws.write_file(f"{root}/abs.txt", "ok") == "wrote 2 bytes to abs.txt"


def test_write_file_over_cap_loses_nothing(ws, root):
    with pytest.raises(ToolError, match="over the 4096-byte write cap"):
        ws.write_file("README.md", "x" * 5000)
    assert (root / "README.md").read_text() == "hello world\nsecond line\n"


def test_edit_file_replaces_exactly_one_occurrence(ws, root):
    assert ws.edit_file("src/pkg/mod.py", "return 2", "return 3").startswith("edited")
    assert (root / "src/pkg/mod.py").read_text().endswith("return 3\n")
    with pytest.raises(ToolError, match="matched 2 times"):
        ws.edit_file("src/pkg/mod.py", "return", "yield")
    with pytest.raises(ToolError, match="was not found"):
        ws.edit_file("src/pkg/mod.py", "return 9", "x")
    with pytest.raises(ToolError, match="must not be empty"):
        ws.edit_file("src/pkg/mod.py", "", "x")
    assert (root / "src/pkg/mod.py").read_text() == (
        "def f():\n    return 1\n\ndef g():\n    return 3\n"
    )


def test_edit_file_matches_crlf_files(ws, root):
    (root / "win.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    ws.edit_file("win.txt", "a\nb", "A\nB")
    assert (root / "win.txt").read_bytes() == b"A\r\nB\r\nc\r\n"


# ----- attacks -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../outside/secret.txt", "src/../../outside/secret.txt", ".."])
def test_dotdot_is_refused_for_every_tool(ws, root, outside, path):
    refused(outside, root, lambda: ws.read_file(path), "'..' is not allowed")
    refused(outside, root, lambda: ws.write_file(path, "pwned"), "'..' is not allowed")
    refused(outside, root, lambda: ws.edit_file(path, "TOP", "PWN"), "'..' is not allowed")
    refused(outside, root, lambda: ws.list_files(path), "'..' is not allowed")
    refused(outside, root, lambda: ws.search("SECRET", path), "'..' is not allowed")


def test_absolute_paths_outside_are_refused(ws, root, outside):
    target = str(outside / "secret.txt")
    refused(outside, root, lambda: ws.read_file(target), "outside the workspace")
    refused(outside, root, lambda: ws.write_file(target, "pwned"), "outside the workspace")
    refused(outside, root, lambda: ws.write_file(str(outside / "new"), "x"), "outside")
    refused(outside, root, lambda: ws.list_files("/etc"), "outside the workspace")
    # a sibling whose name merely starts with the root's name is outside too
    refused(outside, root, lambda: ws.read_file(f"{root}-evil/x"), "outside the workspace")


def test_planted_file_symlink_is_not_followed(ws, root, outside):
    (root / "link.txt").symlink_to(outside / "secret.txt")
    for action in (
        lambda: ws.read_file("link.txt"),
        lambda: ws.write_file("link.txt", "pwned"),
        lambda: ws.edit_file("link.txt", "TOP", "PWN"),
    ):
        refused(outside, root, action, "link.txt", "symlink")
    assert ws.search("SECRET") == "no matches for 'SECRET' under ."
    assert "link.txt -> " in ws.list_files()


def test_planted_symlinked_parent_directory_is_not_followed(ws, root, outside):
    (root / "linkdir").symlink_to(outside)
    refused(outside, root, lambda: ws.read_file("linkdir/secret.txt"), "linkdir", "symlink")
    refused(outside, root, lambda: ws.write_file("linkdir/new.txt", "x"), "symlink")
    refused(outside, root, lambda: ws.write_file("linkdir/sub/new.txt", "x"), "symlink")
    refused(outside, root, lambda: ws.edit_file("linkdir/secret.txt", "TOP", "PWN"), "symlink")
    refused(outside, root, lambda: ws.list_files("linkdir"), "symlink")
    refused(outside, root, lambda: ws.search("SECRET", "linkdir"), "symlink")
    assert ws.search("TOP SECRET") == "no matches for 'TOP SECRET' under ."
    assert "inner" not in ws.list_files()


def test_symlink_to_a_directory_deeper_inside_is_refused_as_parent(ws, root, outside):
    (root / "src" / "up").symlink_to("../..")
    refused(outside, root, lambda: ws.read_file("src/up/outside/secret.txt"), "symlink")


def test_hardlinked_file_is_refused(ws, root, outside):
    os.link(outside / "secret.txt", root / "alias.txt")
    refused(outside, root, lambda: ws.write_file("alias.txt", "pwned"), "2 hard links")
    refused(outside, root, lambda: ws.edit_file("alias.txt", "TOP", "PWN"), "hard links")
    refused(outside, root, lambda: ws.read_file("alias.txt"), "hard links")
    assert ws.search("TOP SECRET") == "no matches for 'TOP SECRET' under ."


@pytest.mark.parametrize(
    "path", [".git/hooks/pre-commit", ".git/config", ".git/HEAD", "src/.git/x", ".GIT/hooks/x"]
)
def test_git_internals_are_off_limits(ws, root, outside, path):
    refused(outside, root, lambda: ws.write_file(path, "#!/bin/sh\ncurl evil\n"), ".git")
    refused(outside, root, lambda: ws.read_file(path), ".git")
    refused(outside, root, lambda: ws.edit_file(path, "ref", "x"), ".git")
    assert not (root / ".git" / "hooks" / "pre-commit").exists()


def test_worktree_git_file_is_off_limits(tmp_path, outside):
    root = tmp_path / "wt"
    root.mkdir()
    (root / ".git").write_text("gitdir: /somewhere/.git/worktrees/wt\n")
    ws = Workspace(root)
    refused(outside, root, lambda: ws.write_file(".git", "gitdir: /tmp/evil"), ".git")
    assert (root / ".git").read_text() == "gitdir: /somewhere/.git/worktrees/wt\n"
    assert ws.list_files() == "(empty directory)"


def test_fifo_is_refused_without_blocking(ws, root, outside):
    os.mkfifo(root / "pipe")
    refused(outside, root, lambda: ws.read_file("pipe"), "not a regular file")
    refused(outside, root, lambda: ws.write_file("pipe", "x"), "not a regular file")


class SwappingWorkspace(Workspace):
    """Swaps directory ``victim`` for a symlink to ``outside`` right before it is opened —
    after the path was checked and while the walk is under way (a deterministic TOCTOU)."""

    def __init__(self, root: Path, victim: str, outside: Path) -> None:
        super().__init__(root)
        self.victim, self.outside, self.swapped = victim, outside, False

    def _open_component(self, dir_fd: int, name: str, shown: str) -> int:
        if name == self.victim and not self.swapped:
            os.rename(name, name + ".orig", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.symlink(self.outside, name, dir_fd=dir_fd)
            self.swapped = True
        return super()._open_component(dir_fd, name, shown)


def test_parent_swapped_for_symlink_between_check_and_use_is_refused(root, outside):
    (root / "src" / "secret.txt").write_text("inside\n")
    ws = SwappingWorkspace(root, "src", outside)
    refused(outside, root, lambda: ws.write_file("src/secret.txt", "pwned"), "symlink")
    assert ws.swapped
    ws.swapped = False
    (root / "src").unlink()
    (root / "src.orig").rename(root / "src")
    refused(outside, root, lambda: ws.read_file("src/secret.txt"), "symlink")
    assert ws.swapped


FLIPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b = (os.path.join(sys.argv[1], n).encode() for n in ("dir", "dir.link"))
swaps = 0
while not os.path.exists(os.path.join(sys.argv[1], "..", "stop")):
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        sys.exit("renameat2 failed: " + os.strerror(ctypes.get_errno()))
    swaps += 1
print(swaps)
"""


def test_racing_symlink_swap_never_writes_outside(root, outside):
    """Another process atomically exchanges ``dir`` (a real directory) with a symlink out
    (renameat2 RENAME_EXCHANGE) while writes run: a true race, no GIL in between."""
    (root / "dir").mkdir()
    (root / "dir.link").symlink_to(outside / "sub")
    before = snapshot(outside)
    ws = Workspace(root)
    flipper = subprocess.Popen(
        [sys.executable, "-c", FLIPPER, str(root)], stdout=subprocess.PIPE, text=True
    )
    refusals: list[str] = []
    try:
        for i in range(3000):
            try:
                ws.write_file("dir/inner.txt", f"pwned {i}")
            except ToolError as err:
                refusals.append(str(err))
    finally:
        (root.parent / "stop").touch()
        swaps = int(flipper.communicate(timeout=30)[0])
    assert snapshot(outside) == before
    # the race was really exercised: the link was swapped in often and writes were refused
    assert swaps > 100
    assert any("symlink" in m or "not a directory" in m for m in refusals), set(refusals)
