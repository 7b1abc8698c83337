"""The `salun` command.

Exit codes: 0 pass, 1 a gate failed (or `verify` found a difference, or `compare` a method that got worse),
2 bad input, 3 inconclusive (with --gate), 4 an internal error (its traceback saved to a file), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from audit import __version__
from audit.core.errors import SalunInputError

EXIT_PASS, EXIT_FAIL, EXIT_INPUT, EXIT_INCONCLUSIVE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
REPORT_FILES = ("results.json", "report.html", "report.pdf", "junit.xml", "report.md")
GATE_EXIT = {"PASS": EXIT_PASS, "FAIL": EXIT_FAIL, "INCONCLUSIVE": EXIT_INCONCLUSIVE}
REPORT_FORMATS = ("html", "pdf", "junit", "markdown", "csv")
COMPARE_FORMATS = ("text", "markdown")

log = logging.getLogger("salun")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2, like every bad input."""

    def error(self, message: str):  # type: ignore[override]
        raise SalunInputError(message)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="salun", description="Audit machine unlearning against retrained models.")
    parser.add_argument("--version", action="version", version=f"salun {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every job as it starts and ends (without it, long runs log a summary)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    audit = commands.add_parser("audit", help="run an audit (the built-in digits example without CONFIG)")
    audit.add_argument("config", nargs="?", help="audit config (TOML)")
    audit.add_argument("--out", default="salun-report", help="output folder (default: salun-report)")
    audit.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides audit.device")
    _add_executor_options(audit)
    audit.add_argument("--gate", action="store_true", help="exit 0 pass, 1 fail, 3 inconclusive")

    validate = commands.add_parser("validate", help="check a config and print it resolved")
    validate.add_argument("config")

    commands.add_parser("list", help="registered methods, attacks, datasets and models")

    check = commands.add_parser("check-plugin", help="run the conformance checks on a registered unlearner")
    check.add_argument("name", help="the unlearner's registered name (see `salun list`)")
    check.add_argument("--generation", action="store_true", help="a generation unlearner of that name")

    init = commands.add_parser("init", help="write the commented example config")
    init.add_argument("path", nargs="?", default="audit.toml")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    report = commands.add_parser("report", help="render reports from a results.json")
    report.add_argument("results")
    report.add_argument("--format", default="html", help=f"comma-separated: {', '.join(REPORT_FORMATS)}")
    report.add_argument("--out", help="output folder (default: next to the results)")

    compare = commands.add_parser("compare", help="what changed between two audits of the same request; "
                                                  "exit 1 if a method got worse")
    compare.add_argument("old", help="the earlier results.json")
    compare.add_argument("new", help="the later results.json")
    compare.add_argument("--format", choices=COMPARE_FORMATS, default="text")
    compare.add_argument("--out", help="write the comparison to this file instead of printing it")
    compare.add_argument("--force", action="store_true",
                         help="compare audits of different requests (data, split or forget set)")

    verify = commands.add_parser("verify", help="rerun an audit from its results.json and compare every number")
    verify.add_argument("results")
    verify.add_argument("--store", help="reuse this store instead of retraining every model in a fresh one")
    _add_executor_options(verify)
    _add_store_commands(commands)
    return parser


def _add_executor_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--executor", help="where the jobs run: local, processes, gpu, ray or an installed executor "
                                            "(overrides audit.executor)")
    command.add_argument("--workers", type=_positive, default=1,
                         help="processes: worker processes; ray: the CPUs of the cluster it starts (default 1)")
    command.add_argument("--ray-address", help="ray: join this cluster instead of starting one (overrides "
                                               "audit.ray_address)")


def _executor_choice(args: argparse.Namespace):
    from audit.engine.options import ExecutorChoice

    return ExecutorChoice(executor=args.executor, workers=args.workers, ray_address=args.ray_address)


def _add_store_commands(commands: argparse._SubParsersAction) -> None:
    store = commands.add_parser("store", help="check a store's artifacts against their digests, or remove unused ones")
    actions = store.add_subparsers(dest="action", required=True, parser_class=_Parser)
    check = actions.add_parser("check", help="report corrupt, stray and quarantined artifacts; exit 1 if any")
    check.add_argument("--repair", action="store_true", help="move the corrupt artifacts to the store's quarantine")
    gc = actions.add_parser("gc", help="remove artifacts no recent audit used, the quarantine and dead staging")
    gc.add_argument("--keep-days", type=_positive, default=30,
                    help="keep what audits of the last N days used (default 30)")
    gc.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    gc.add_argument("--all-unreferenced", action="store_true",
                    help="allow gc on a store without audit records (removes every artifact no record names)")
    for action in (check, gc):
        action.add_argument("dir", nargs="?", help="the store folder (default: audit.store's default)")
        action.add_argument("--store", help="the store folder, as an option")


def _load(config: str | None):
    from audit.config.spec import default_spec, load_spec

    return default_spec() if config is None else load_spec(config)


def _audit(args: argparse.Namespace) -> int:
    from audit.pipeline import run_audit

    spec = _load(args.config)
    command = " ".join(["salun", *(shlex.quote(a) for a in sys.argv[1:])]) if sys.argv[0].endswith("salun") else None
    results = run_audit(spec, args.out, args.device, _executor_choice(args), show_progress=not args.quiet,
                        command=command)
    print(f"verdict: {results['verdict']} ({results['verdict_reason']})")
    print(f"reports: {', '.join(str(Path(args.out) / name) for name in REPORT_FILES if (Path(args.out) / name).exists())}")
    return GATE_EXIT[results["verdict"]] if args.gate else EXIT_PASS


def _validate(args: argparse.Namespace) -> int:
    import json

    spec = _load(args.config)
    print(json.dumps(spec.to_dict(), indent=2))
    print(f"{args.config}: valid (spec digest {spec.digest()[:16]})", file=sys.stderr)
    return EXIT_PASS


def _list(args: argparse.Namespace) -> int:
    from audit.core.registry import ALL, summary_of

    for registry in ALL:
        print(f"{registry.kind}s (entry-point group {registry.group}):")
        width = max([16, *map(len, registry.names())])
        for name, obj in registry:
            origin = registry.origin(name)
            print(f"  {name:<{width}} {origin.distribution} {origin.version:<8} {summary_of(obj)}")
        for name, why in registry.broken().items():
            print(f"  {name:<{width}} FAILED TO LOAD: {why}")
        for name, distribution in registry.not_allowed().items():
            print(f"  {name:<{width}} {distribution} NOT LOADED: not in audit.plugins")
    return EXIT_PASS


def _check_plugin(args: argparse.Namespace) -> int:
    from audit.core.registry import GENERATION_UNLEARNERS, UNLEARNERS
    from unlearners.checks import check_unlearner

    registry = GENERATION_UNLEARNERS if args.generation else UNLEARNERS
    unlearner = registry.get(args.name, path="check-plugin")
    print(f"{args.name}: {registry.origin(args.name).describe()}")
    report = check_unlearner(unlearner)
    print(report)
    return EXIT_PASS if report.ok else EXIT_FAIL


def _init(args: argparse.Namespace) -> int:
    from audit.config.spec import default_spec_text

    path = Path(args.path)
    if path.exists() and not args.force:
        raise SalunInputError(f"{path} exists; pass --force to overwrite it")
    path.write_text(default_spec_text(), encoding="utf-8")
    print(f"wrote {path}; edit it, then run: salun audit {path}")
    return EXIT_PASS


def _report(args: argparse.Namespace) -> int:
    from audit.results.document import load_results
    from reports.write import write_reports

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in REPORT_FORMATS]
    if unknown or not formats:
        raise SalunInputError(f"--format: unknown format(s) {unknown}; available: {', '.join(REPORT_FORMATS)}")
    results = load_results(Path(args.results))
    out = Path(args.out) if args.out else Path(args.results).parent
    for path in write_reports(results, out, tuple(formats), pdf_required=True):
        print(f"wrote {path}")
    return EXIT_PASS


def _compare(args: argparse.Namespace) -> int:
    from audit.core.files import write_text_atomic, writing
    from audit.results.document import load_results
    from reports.compare import compare
    from reports.compare_text import RENDERERS

    old, new = load_results(Path(args.old)), load_results(Path(args.new))
    comparison = compare(old, new, args.old, args.new, force=args.force)
    text = RENDERERS[args.format](comparison)
    if args.out:
        with writing("--out", Path(args.out), "nothing else was written"):
            write_text_atomic(Path(args.out), text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return EXIT_FAIL if comparison.worse else EXIT_PASS


def _verify(args: argparse.Namespace) -> int:
    from audit.verify import format_differences, verify

    outcome = verify(Path(args.results), store=args.store, executor=_executor_choice(args),
                     show_progress=not args.quiet)
    tolerance = outcome["tolerance"]
    if outcome["verified"]:
        exact = tolerance["rtol"] == 0 and tolerance["atol"] == 0
        how = "bit for bit" if exact else f"within rtol {tolerance['rtol']:g}, atol {tolerance['atol']:g}"
        print(f"verified: every number of {args.results} reproduced {how} on {outcome['device']}")
        return EXIT_PASS
    if outcome["damaged"]:
        print(f"corrupt: {len(outcome['damaged'])} artifact(s) of the store {args.store} failed their digests; "
              "the rerun recomputed the ones it uses:")
        for artifact in outcome["damaged"]:
            print(f"  {artifact['key'][:12]} ({artifact['label']}): {artifact['problem']}")
    if outcome["differences"]:
        print(f"differs: {len(outcome['differences'])} number(s) of {args.results} did not reproduce on "
              f"{outcome['device']}:")
        for line in format_differences(outcome["differences"]):
            print(f"  {line}")
    elif outcome["identical"]:
        print(f"the numbers of {args.results} reproduced from recomputed artifacts; run verify again to check the "
              "store as it is now")
    else:
        print("the rerun stopped at an artifact damaged while it ran; run verify again")
    return EXIT_FAIL


def _store_folder(args: argparse.Namespace) -> Path:
    from audit.config.sections import AuditSection

    if args.dir and args.store and Path(args.dir) != Path(args.store):
        raise SalunInputError(f"store {args.action}: two stores given ({args.dir} and --store {args.store}); name one")
    return Path(args.dir or args.store or AuditSection.model_fields["store"].default)


def _store(args: argparse.Namespace) -> int:
    root = _store_folder(args)
    return _store_check(root, args.repair) if args.action == "check" else _store_gc(root, args)


def _store_check(root: Path, repair_damaged: bool) -> int:
    from audit.engine.store_maintenance import check_store, repair

    report = check_store(root)
    print(f"store {root}: {report.intact} intact, {len(report.corrupt)} corrupt, {len(report.legacy)} without "
          f"digests, {len(report.orphans)} orphaned, {len(report.quarantined)} quarantined")
    for heading, findings in (("corrupt", report.corrupt), ("no digests", report.legacy),
                              ("orphaned", report.orphans), ("bad audit record", report.bad_records)):
        for finding in findings:
            print(f"  {heading}: {finding.describe(root)}")
    for path in report.quarantined:
        print(f"  quarantined: {path.relative_to(root)}")
    if repair_damaged and report.damaged:
        print(f"moved {len(repair(report))} damaged artifact(s) to {root / 'quarantine'}; an audit recomputes them")
    elif report.damaged:
        print("an audit recomputes the damaged artifacts it uses; 'salun store check --repair' moves them aside now")
    if report.orphans or report.quarantined:
        print("'salun store gc' removes the orphaned and quarantined ones")
    return EXIT_PASS if report.clean else EXIT_FAIL


def _store_gc(root: Path, args: argparse.Namespace) -> int:
    from audit.engine.store_maintenance import collect, describe_size, plan_gc

    report = plan_gc(root, args.keep_days, args.all_unreferenced)
    if not args.dry_run:
        collect(report, root)
    removed = ", ".join(f"{len(report.removed[kind])} {name} ({describe_size(report.bytes[kind])})"
                        for kind, name in (("artifacts", "artifact(s)"), ("quarantined", "quarantined"),
                                           ("staging", "staging leftover(s)")))
    print(f"store {root}: {'would remove' if args.dry_run else 'removed'} {removed}; kept {report.kept} artifact(s) "
          f"used by {len(report.records)} audit record(s) of the last {args.keep_days} day(s) or written in the last "
          "day")
    return EXIT_PASS


COMMANDS = {"audit": _audit, "validate": _validate, "list": _list, "check-plugin": _check_plugin, "init": _init,
            "report": _report, "compare": _compare, "verify": _verify, "store": _store}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _save_traceback() -> str:
    """The traceback of the exception being handled, in a file whose path the one-line message gives."""
    try:
        descriptor, path = tempfile.mkstemp(prefix="salun-crash-", suffix=".txt")
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(" ".join(["salun", *sys.argv[1:]]) + "\n\n" + traceback.format_exc())
    except OSError as error:
        return f"nowhere: the temporary folder refused it ({error.strerror or error})"
    return path


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a job runner's cancel stops the pool like Ctrl-C
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
        logging.basicConfig(
            level=logging.WARNING if args.quiet else logging.INFO,
            format="salun: %(message)s",
            stream=sys.stderr,
        )
        if args.verbose and not args.quiet:
            log.setLevel(logging.DEBUG)
        return COMMANDS[args.command](args)
    except SalunInputError as error:
        for line in str(error).splitlines() or ["bad input"]:
            print(f"salun: error: {line}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("salun: interrupted; finished jobs are kept in the store and a rerun resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug: one line for the user, the traceback for the report
        where = _save_traceback()
        print(f"salun: internal error: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
              f"(the traceback is in {where}; please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
