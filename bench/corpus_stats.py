"""How the analyzer does on the corpus (see bench/build_corpus.py): files, internal errors,
models found, how many got a batch size and from where (same file, another file of the
project, a config, unknown). Works on any normsuite version (it reads only the JSON-level
results), so the "before" column comes from the same script run by the old install.

Run: ``python bench/corpus_stats.py <corpus> [--sample 20]``
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter
from pathlib import Path

from normsuite.analysis.runner import analyze_paths


def where(source: str) -> str:
    """The kind of place a batch came from, from ``BatchInfo.source``."""
    head = source.split(";")[0]
    if head.startswith("unknown"):  # also "unknown: <why>" (a batch set at run time...)
        return "unknown"
    if head.startswith("file:"):
        return "same file"
    if head.startswith("config:"):
        return "config"
    if head in ("cli", "default"):
        return head
    if re.match(r"^[^ ]+\.py:\d+", head):
        return "another file"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--sample", type=int, default=0, help="print N random models")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folders = sorted(p for p in (args.corpus / "src").iterdir() if p.is_dir())
    folders += sorted(p for p in (args.corpus / "repos").iterdir() if p.is_dir())
    start = time.perf_counter()
    results = analyze_paths([str(f) for f in folders])
    elapsed = time.perf_counter() - start
    models = [(r.path, m) for r in results for m in r.models]
    sources = Counter(where(m.batch_size.source) for _, m in models)
    internal = [r for r in results if r.error and r.error.startswith("internal")]
    findings = Counter(f.code for r in results for f in r.findings)
    print(f"files {len(results)}  internal errors {len(internal)}  time {elapsed:.0f} s")
    print(f"models {len(models)}  with a batch {len(models) - sources['unknown']}")
    for kind, n in sources.most_common():
        print(f"  batch from {kind}: {n}")
    print("findings " + ", ".join(f"{c} {n}" for c, n in sorted(findings.items())))
    for r in internal[:10]:
        print(f"  INTERNAL {r.path}: {r.error}")
    if args.sample:
        rng = random.Random(args.seed)
        with_batch = [pm for pm in models if pm[1].batch_size.per_device is not None]
        for path, m in rng.sample(with_batch, min(args.sample, len(with_batch))):
            b = m.batch_size
            print(
                f"SAMPLE {path}:{m.line} {m.name} batch {b.per_device} x {b.devices} ({b.source})"
            )


if __name__ == "__main__":
    main()
