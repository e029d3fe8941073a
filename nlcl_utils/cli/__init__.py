"""The ``nlcl`` command: ``nlcl figures ...`` (regenerate notebooks and figures), ``nlcl tokens ...``
(train receptive-field networks on the hierarchical token task), ``nlcl verify`` (did the results
reproduce here), ``nlcl readme`` (the README's verdict counts and docs/results.md's tables from
claims.json), ``nlcl sweep`` and ``nlcl site`` (build the static reading version)."""

from __future__ import annotations

import sys

COMMANDS = {
    "figures": "regenerate every notebook, its figures and figures/MANIFEST.json",
    "tokens": "train two-layer networks on the hierarchical token task, print chi+/chi- per seed",
    "verify": "did it reproduce here? every claim against the committed one: verdict, value, tolerance",
    "readme": "rewrite the README's verdict counts and docs/results.md's tables from figures/*/claims.json",
    "site": "build the reading version: a static website of the executed notebooks (build/site)",
    "sweep": "run a grid of token-task settings x seeds (cached; local cores or Slurm), export a CSV",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: nlcl {{{','.join(COMMANDS)}}} [options]\n")
        for name, text in COMMANDS.items():
            print(f"  {name:<8} {text}")
        print("\n'nlcl COMMAND --help' lists a command's options.")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        return _dispatch(command, rest)
    except KeyboardInterrupt:  # Ctrl-C before a command took over its signals (e.g. while importing)
        print(f"nlcl {command}: interrupted", file=sys.stderr)
        return 130


def _dispatch(command: str, rest: list[str]) -> int:
    if command == "figures":
        from nlcl_utils.pipeline.regenerate import main as run
    elif command == "tokens":
        from nlcl_utils.cli.tokens import main as run
    elif command == "verify":
        from nlcl_utils.cli.verify import main as run
    elif command == "readme":
        from nlcl_utils.pipeline.readme import main as run
    elif command == "site":
        from nlcl_utils.pipeline.site import main as run
    elif command == "sweep":
        from nlcl_utils.cli.sweep import main as run
    else:
        print(f"nlcl: unknown command {command!r}; allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return run(rest)
