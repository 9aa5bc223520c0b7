"""Build the analyzer corpus: real PyTorch code from installable projects, outside git.

``pip download --no-deps`` fetches each project's wheel (or sdist) into a cache, and the
``.py`` files are unpacked under ``<cache>/src/<project>/``. Nothing is installed or run.
Point the corpus test and ``bench/corpus_stats.py`` at it::

    python bench/build_corpus.py ~/.cache/normsuite-corpus
    NORMSUITE_CORPUS=~/.cache/normsuite-corpus pytest tests/test_corpus.py
    python bench/corpus_stats.py ~/.cache/normsuite-corpus

GitHub repositories (training scripts, notebooks, configs) can be added by hand under
``<cache>/repos/<owner+name>/``; the test and the stats read both folders.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

PROJECTS = (
    "timm",
    "torchvision",
    "transformers",
    "diffusers",
    "speechbrain",
    "lightning-bolts",
    "mmpretrain",
    "mmdet",
    "pytorch-tabular",
    "segmentation-models-pytorch",
)
KEEP = (".py", ".ipynb", ".yaml", ".yml")


def download(project: str, dl: Path) -> Path | None:
    before = set(dl.iterdir())
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dl), project]
    if subprocess.run(cmd, check=False).returncode != 0:
        print(f"{project}: pip download failed, skipped", file=sys.stderr)
        return None
    new = sorted(set(dl.iterdir()) - before)
    return new[0] if new else None


def unpack(archive: Path, dest: Path) -> int:
    """Copy the source files of a wheel / sdist into ``dest``; returns how many."""
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(KEEP) and ".." not in name:
                    zf.extract(name, dest)
                    count += 1
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.isfile() and m.name.endswith(KEEP)]
            members = [m for m in members if ".." not in m.name and not m.name.startswith("/")]
            tf.extractall(dest, members=members)
            count = len(members)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "cache", type=Path, help="folder outside git, e.g. ~/.cache/normsuite-corpus"
    )
    parser.add_argument("projects", nargs="*", default=list(PROJECTS))
    args = parser.parse_args()
    dl = args.cache / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    for project in args.projects:
        archive = download(project, dl)
        if archive is None:
            continue
        name = project.replace("-", "_")
        n = unpack(archive, args.cache / "src" / name)
        print(f"{project}: {archive.name}, {n} files -> src/{name}")


if __name__ == "__main__":
    main()
