"""``nlcl verify``: did the results reproduce on this machine? Every claim of every notebook
against the committed one (see :mod:`nlcl_utils.pipeline.reproduce` for the two levels)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nlcl_utils.pipeline import regenerate
from nlcl_utils.pipeline.reproduce import (
    NBVAL_CONFIG,
    REPO_ROOT,
    Row,
    claims_at_commit,
    compare,
    executed_claims,
    level,
    load_claims,
    table,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlcl verify",
        description="Did the results reproduce on this machine? Compares every claim of every notebook with the "
        "committed one: verdict, value and tolerance.",
        epilog="Without --run or --executed it compares figures/ (as `make figures` left it) with the last commit's. "
        "exit status: 0 reproduced; 1 some claim did not; 2 bad request",
    )
    parser.add_argument("--run", action="store_true", help="re-execute the notebooks into build/verify/ first")
    parser.add_argument("--executed", type=Path, help="a folder with NN_name/claims.json from a run to compare")
    parser.add_argument("--committed", type=Path, help="a folder to compare against (default: figures/)")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this notebook (NN or NN_name)")
    parser.add_argument("--strict", action="store_true", help="demand bit-identical claims (same machine)")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    parser.add_argument(
        "--nbval-config",
        action="store_true",
        help="print the nbval sanitize file for this machine (strict where the committed outputs were made "
        "here, numbers masked elsewhere) and exit",
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = args.root.resolve()
    if args.nbval_config:
        try:
            chosen = level(manifest_path=root / "figures" / "MANIFEST.json")
        except ValueError as exc:
            print(f"nlcl verify: {exc}", file=sys.stderr)
            return 2
        why = "made on this machine" if chosen == "strict" else "made on another machine (or forced)"
        print(f"nlcl verify: the committed outputs were {why}: nbval at level '{chosen}'", file=sys.stderr)
        print(NBVAL_CONFIG[chosen])
        return 0
    try:
        names = regenerate.select(regenerate.discover(root / "notebooks"), args.only)
    except regenerate.RegenerateError as exc:
        print(f"nlcl verify: {exc}", file=sys.stderr)
        return 2
    if args.run and args.executed:
        print("nlcl verify: give --run or --executed, not both", file=sys.stderr)
        return 2
    if args.run:
        only = [a for n in names for a in ("--only", n)]
        code = regenerate.main(["--into", "verify", *only, "--root", str(root)])
        if code:
            print(f"nlcl verify: re-execution failed (nlcl figures exit {code})", file=sys.stderr)
            return 1
        args.executed = root / "build" / "verify"
    rows: list[Row] = []
    for name in names:
        if args.executed:
            new = load_claims(executed_claims(args.executed, name))
            old = load_claims(executed_claims(args.committed or root / "figures", name))
        else:
            new = load_claims((args.committed or root / "figures") / name / "claims.json")
            old = claims_at_commit(root, "HEAD", name)
        rows += compare(old, new, args.strict)
    width = max(len(r.name) for r in rows) if rows else 10
    width = min(width, 70)
    print(f"{'':2}{'claim':<{width}}  {'committed':>22}  {'now':>22}  {'tolerance':<26}  verdict then -> now")
    for r in rows:
        mark = "ok" if r.ok else "!!"
        name = (r.name[: width - 1] + "…") if len(r.name) > width else r.name
        line = f"{mark} {name:<{width}}  {r.committed:>22}  {r.new:>22}  {r.tolerance:<26}  {r.verdict_then} -> "
        print(line + r.verdict_now + (f"   <- {r.problem}" if r.problem else ""))
    bad = [r for r in rows if not r.ok]
    if args.markdown:
        args.markdown.write_text(table(rows))
    how = "bit for bit" if args.strict else "within tolerance, same verdicts"
    print(f"\nreproduced {how}: {len(rows) - len(bad)} of {len(rows)} claims and findings; "
          f"{len(bad)} did not")  # fmt: skip
    return 1 if bad else 0
