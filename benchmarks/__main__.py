"""`python -m benchmarks [--quick] [--sections compare,cold,scale,load,integrations] [--out FILE]`.

A full run (every section, not --quick) writes `benchmarks/results.md` and the plots beside
it; a partial or quick run only prints, unless `--out` says where to write, so a smoke test
never overwrites the measured results. Sections import what they need when they run, so
`--sections scale` never loads the model.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks.common import Section, load_average
from benchmarks.report import environment, format_markdown, format_table

SECTIONS = ("compare", "cold", "scale", "load", "integrations")
DEFAULT_OUT = Path(__file__).resolve().parent / "results.md"


def _sections(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"sections must be a comma list of {', '.join(SECTIONS)}, got {value!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="shrink everything (a smoke test of a minute or two)")
    parser.add_argument("--sections", type=_sections, default=list(SECTIONS),
                        help=f"comma list of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results Markdown file (default: benchmarks/results.md for a full "
                             "run; nothing written for a partial or quick run)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timing rounds over the test questions in 'compare' (default 2)")
    return parser


def _run_one(name: str, args: argparse.Namespace, index_dir: Path, floor: float | None,
             plot_dir: Path | None) -> Section:
    if name == "compare":
        from benchmarks import compare

        return compare.run(args.quick, args.rounds)
    if name == "cold":
        from benchmarks import cold

        return cold.run(index_dir, args.quick)
    if name == "scale":
        from benchmarks import scale

        return scale.run(args.quick, floor, plot_dir)
    if name == "integrations":
        from benchmarks import integrations

        return integrations.run(index_dir, args.quick)
    from benchmarks import load

    return load.run(index_dir, args.quick)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download, whoever runs this
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    full = set(args.sections) == set(SECTIONS) and not args.quick
    out: Path | None = args.out or (DEFAULT_OUT if full else None)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    env = environment()
    print(f"qa benchmarks: sections {', '.join(args.sections)}"
          f"{' (quick)' if args.quick else ''}; load average {env[next(reversed(env))]}",
          file=sys.stderr)

    started = time.perf_counter()
    sections: list[Section] = []
    floor: float | None = None
    with tempfile.TemporaryDirectory(prefix="qa-bench-index-") as tmp:
        index_dir = Path(tmp) / "index"  # built by `cold` (timed) or `load`, shared by both
        for name in SECTIONS:
            if name not in args.sections:
                continue
            print(f"... {name}", file=sys.stderr, flush=True)
            section_started = time.perf_counter()
            try:
                section = _run_one(name, args, index_dir, floor, out.parent if out else None)
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the rest
                traceback.print_exc()
                section = Section(name)
                section.add("error", f"{type(exc).__name__}", str(exc)[:200])
            section.seconds = time.perf_counter() - section_started
            floor = section.values.get("embed_p50", floor)
            sections.append(section)
    total = time.perf_counter() - started
    env["load average at end (1/5/15 min)"] = load_average()

    print(format_table(sections))
    print(f"\ntotal {total:.0f} s; load average at end {load_average()}")
    if out is not None:
        command = "python -m benchmarks" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
        out.write_text(format_markdown(sections, env, total, command), encoding="utf-8")
        print(f"wrote {out}")
    else:
        print("(partial or quick run: nothing written; pass --out FILE to keep the results)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
