#!/usr/bin/env python3
"""The public interface of a Swift module, one declaration per line, sorted, from the symbol
graph that `swift package generate-documentation` (or `dump-symbol-graph`) extracts:

  python3 api/public-interface.py .build/*/extracted-symbols/*/Cohort/Cohort.symbols.json

CI compares it with api/Cohort.txt, so that the library's API changes only on purpose: a
change to it updates that file in the same commit (`... > api/Cohort.txt`).
"""
import json
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        graph = json.load(f)
    lines = set()
    for symbol in graph["symbols"]:
        if symbol.get("accessLevel") not in ("public", "open"):
            continue
        path = ".".join(symbol["pathComponents"])
        declaration = "".join(fragment["spelling"] for fragment in symbol.get("declarationFragments", []))
        lines.add(f"{path}: {' '.join(declaration.split())}")
    print("\n".join(sorted(lines)))


if __name__ == "__main__":
    main()
