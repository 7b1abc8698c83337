"""What the benchmarks that time each side in its own process share: running a script's own
`--measure` mode in a fresh interpreter and the command line that dispatches to it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable


def in_subprocess(script: str, *arguments: Any) -> dict:
    """`script --measure ARGUMENTS` in a fresh interpreter: the dict its last output line holds."""
    done = subprocess.run([sys.executable, script, "--measure", json.dumps(list(arguments))],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def measured_main(parser: argparse.ArgumentParser, measure: Callable[..., dict],
                  table: Callable[[argparse.Namespace], str], results: Path) -> None:
    """`--measure` runs one side and prints its numbers; otherwise the table is printed and saved."""
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*json.loads(args.measure))))
        return
    text = table(args)
    print("\n" + text)
    results.parent.mkdir(exist_ok=True)
    results.write_text(text)
