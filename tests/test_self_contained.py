"""The repository stands alone: no file of it refers to a folder beside it.

The developers' machines (and CI) have a folder named shared next to the clone, holding the
golden vectors the tests were first written against; a user who clones the repository does
not. Everything the tests and benchmarks read lives in the repository (tests/data/cbc/), and
this test keeps it so: a path into that folder, or to a folder of test vectors that the
repository does not have, in any tracked file fails here, on the developer's machine, instead
of in a user's fresh clone. No file is exempt. (`.ci/run` also runs the whole suite from a
clone that has no such folder beside it.)
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALLOWED: set[str] = set()
SHARED = "sha" + "red"          # spelled apart so that this file does not match its own rules
VECTORS = "test" + "vectors"

#: A reference to a place outside the repository, each with what it means.
RULES = [
    (re.compile(r"\.\.[/\\]+(?:\.\.[/\\]+)*" + SHARED + r"\b"), "../" + SHARED),
    (re.compile(r"/work/" + SHARED + r"\b"), "the developers' /work/" + SHARED),
    (re.compile(r"\bparents?\b(?:\[\d+\])?\s*/\s*[\"']" + SHARED + r"[\"'/]"), "a Path into ../" + SHARED),
    (re.compile(r"(?<![\w.])" + VECTORS + r"\b"), "a " + VECTORS + " folder (the repository has none)"),
]
SKIP_DIRS = {".git", ".venv", ".venv-lowest", "__pycache__", ".pytest_cache", "build", "dist", ".bench",
             "demo-output", "closure-output", ".cache", ".agents"}


def tracked_files() -> list[Path]:
    """The files git tracks; the tree (minus build and venv folders) where git is unavailable,
    e.g. an unpacked source archive."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
        return [REPO / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, names in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
            files += [Path(root) / n for n in names]
        return files


def outside_references(text: str) -> list[tuple[int, str]]:
    """(line number, what it refers to) of every reference to a place outside the repository."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, meaning in RULES:
            if pattern.search(line):
                found.append((number, meaning))
    return found


def test_no_tracked_file_refers_outside_the_repository():
    has_vectors_folder = any(VECTORS in path.relative_to(REPO).parts for path in tracked_files())
    assert not has_vectors_folder  # else the rule on that name would need to know which one is meant
    problems = []
    for path in tracked_files():
        relative = path.relative_to(REPO).as_posix()
        if relative in ALLOWED or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (the .npz vectors, images)
            continue
        for number, meaning in outside_references(data.decode("utf-8", errors="replace")):
            problems.append(f"{relative}:{number}: refers to {meaning}")
    assert not problems, ("files of the repository refer to places a user's clone does not have "
                          "(copy what they need into the repository, e.g. tests/data/):\n" + "\n".join(problems))


@pytest.mark.parametrize("line", [
    "VECTORS = Path('../" + SHARED + "/" + VECTORS + "/cbc')",
    "cp ../../" + SHARED + "/recipes/slurm.conf .",
    "np.load('/work/" + SHARED + "/spec/x')",
    "REPO.parent / '" + SHARED + "' / 'x'",
    "root = Path(__file__).parents[2] / \"" + SHARED + "\"",
    "data = HERE / '" + VECTORS + "' / 'hits.npz'",
])
def test_a_reference_outside_is_caught(line):
    assert outside_references(line), line


@pytest.mark.parametrize("line", [
    "TESTVECTORS = Path(__file__).resolve().parent / 'data' / 'cbc'",
    "charge shared with a neighbouring strip",
    "shared_fraction: float = 0.05",
    "One SQLite connection shared by the driver's threads",
])
def test_words_that_are_not_paths_pass(line):
    assert not outside_references(line), line
