"""The `sla-processor` command: worker, ingest, create-topics, dlq, replay, report and demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from processor.compare import as_json, as_text, compare
from processor.replay import read_arrivals, read_events, replay, replay_arrivals, replay_each
from processor.report import render
from processor.sla import engine
from processor.sla.policy import PolicyError
from processor.sla.policy_set import load_policies
from processor.sla.timeline import timeline
from schemas.outputs import encode

_PROGRESS_EVERY = 100_000

# Exit codes: 0 a clean stop; 1 a crash; 2 invalid settings, policy or arguments; 3 a topic
# partitioned otherwise than SLA_TOPIC_PARTITIONS (topics.PartitionMismatch); 4 Kafka cannot
# be reached or refused a request.
EXIT_USAGE = 2
EXIT_KAFKA = 4


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 instant: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a time zone offset: {text!r}")
    return moment.astimezone(UTC)


def _version() -> str:
    from processor.metrics import build_info  # the same values as the sla_build_info metric

    info = build_info()
    return (f"sla-processor {info['version']} (Python {info['python']}, "
            f"faust-streaming {info['faust']}, aiokafka {info['aiokafka']})")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    from processor.settings import described_settings

    parser = argparse.ArgumentParser(prog="sla-processor", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "replay", help="run the engine over a JSONL file on a simulated clock"
    )
    run.add_argument("events", type=Path, help="one CloudEvent per line ('-' for stdin)")
    run.add_argument(
        "--policy",
        type=Path,
        help="policy or policy-set file (TOML or JSON, docs/policies.md); default: the seed's",
    )
    run.add_argument("--until", type=_instant, help="fire timers up to this instant (RFC 3339)")
    run.add_argument("--report", action="store_true", help="print an SLA attainment summary")
    run.add_argument(
        "--timeline",
        metavar="TICKET_ID",
        help="print this ticket's timeline (JSON, as GET /tickets/{id}/timeline answers)",
    )
    run.add_argument(
        "--arrival",
        action="store_true",
        help='lines are in arrival order, each a CloudEvent or {"arrived_at": RFC 3339, '
        '"event": CloudEvent}: deadlines due before a line arrives fire first (late events '
        "are corrected under a policy with retractions); outputs in emission order",
    )
    run.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("POLICY_A", "POLICY_B"),
        help="what-if: replay under two policies or sets and print what differs per ticket, "
        "and the attainment per severity, tier and customer under each (docs/policies.md)",
    )
    run.add_argument(
        "--json", action="store_true", help="with --compare: one JSON document instead of tables"
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress on stderr (default: when stderr is a terminal)",
    )
    settings = (
        "configured by environment variables (default shown; README, Configuration):\n"
        f"{described_settings()}\n\nexit codes: 0 stopped, 1 crashed, 2 invalid setting or "
        "policy, 3 a topic with another partition count, 4 Kafka unreachable or refusing"
    )
    for name, text in (("worker", "run the stream processor (Faust worker)"),
                       ("create-topics", "create the contract's topics if missing"),
                       ("ingest", "accept CloudEvents and help-desk webhooks over HTTP and "
                                  "publish them to the input topics (docs/ingest.md)")):  # fmt: skip
        commands.add_parser(name, help=text, description=text, epilog=settings,
                            formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    dlq = commands.add_parser(
        "dlq", help="list, show and redrive dead letters (configured like the worker)"
    )
    actions = dlq.add_subparsers(dest="action", required=True)
    for action, text in (
        ("list", "one JSON line per dead letter (ids and sizes, never the record), then counts"),
        ("show", "one dead letter: its headers, key and value"),
        ("redrive", "send dead letters back to their origin topic, each once"),
    ):
        sub = actions.add_parser(action, help=text, description=text)
        sub.add_argument("--topic", required=True, help="the dead-letter topic (<input>.dlq)")
        if action == "show":
            sub.add_argument("--partition", type=int, required=True)
            sub.add_argument("--offset", type=int, required=True)
            continue
        sub.add_argument("--reason", help="only dead letters of this reason")
        sub.add_argument("--since", type=_instant, help="only dead letters from this instant on")
        if action == "redrive":
            sub.add_argument("--dry-run", action="store_true", help="say what would be sent")
    _report_parser(commands)
    demo = commands.add_parser("demo", help="a scripted minute of tickets through a real worker")
    demo.add_argument("--seconds", type=float, default=40.0, help="how long to watch the outputs")
    return parser


def _report_parser(commands: Any) -> None:
    text = (
        "replay a JSONL file and write an SLA attainment report (HTML, JSON, CSV; docs/report.md)"
    )
    report = commands.add_parser("report", help=text, description=text)
    report.add_argument("events", type=Path, help="one CloudEvent per line ('-' for stdin)")
    report.add_argument(
        "--policy", type=Path, help="policy file (TOML or JSON); default: the seed's"
    )
    report.add_argument("--until", type=_instant, help="fire timers up to this instant (RFC 3339)")
    report.add_argument("--arrival", action="store_true", help="lines in arrival order (as replay)")
    for kind in ("html", "json", "csv"):
        report.add_argument(f"--{kind}", type=Path, metavar="OUT", help=f"write the {kind.upper()}"
                            " report to OUT ('-' for stdout)")  # fmt: skip


def _report(args: argparse.Namespace) -> int:
    from processor.attainment.command import STDOUT, Request, outputs, run

    request = Request(args.events, args.policy, args.until, args.arrival, args.html, args.json,
                      args.csv)  # fmt: skip
    chosen = [path for path, _ in outputs(request)]
    if not chosen:
        sys.stderr.write("sla-processor report: name at least one of --html, --json, --csv\n")
        return EXIT_USAGE
    if chosen.count(STDOUT) > 1:
        sys.stderr.write("sla-processor report: '-' may stand for one stream only\n")
        return EXIT_USAGE
    return run(request)


def _lines(source: BinaryIO, progress: bool) -> Iterator[bytes]:
    for number, line in enumerate(source, start=1):
        if progress and number % _PROGRESS_EVERY == 0:
            sys.stderr.write(f"\rreplay: {number:,} lines")
        yield line
    if progress:
        sys.stderr.write("\n")


def _replay(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(args)
    if args.json:
        sys.stderr.write("replay: --json goes with --compare\n")
        return 2
    policy = load_policies(args.policy)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    with sys.stdin.buffer if str(args.events) == "-" else args.events.open("rb") as source:
        lines = _lines(source, progress)
        if args.arrival:
            result = replay_arrivals(
                read_arrivals(lines, sys.stderr), policy, args.until, sys.stderr, args.timeline
            )
        else:
            result = replay(
                read_events(lines, sys.stderr), policy, args.until, sys.stderr, args.timeline
            )
    out = sys.stdout.buffer
    if args.timeline is not None:
        if not result.timeline or result.horizon is None:
            sys.stderr.write(f"replay: no ticket {args.timeline!r} in the input\n")
            return 1
        state = result.tickets.get(args.timeline)
        governing = (
            engine.of(state, policy) if state else policy.in_force(policy.default, result.horizon)
        )
        answer = timeline(
            args.timeline, result.timeline, 0, state, governing.policy, result.horizon
        )
        out.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    if args.report:
        out.write(render(result.tickets.values(), result.outputs).encode())
        return 0
    for output, emitted_at in zip(result.outputs, result.emitted_at, strict=True):
        # In replay the clock is simulated: an output is emitted at the instant it falls due
        # (in arrival order, a late event's at the instant it arrives).
        out.write(encode(output, emitted_at) + b"\n")
    return 0


def _compare(args: argparse.Namespace) -> int:
    others = [flag for flag in ("policy", "timeline", "report", "arrival") if getattr(args, flag)]
    if others:
        sys.stderr.write(f"replay: --compare does not go with --{others[0]}\n")
        return 2
    books = [load_policies(path) for path in args.compare]
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    with sys.stdin.buffer if str(args.events) == "-" else args.events.open("rb") as source:
        events = read_events(_lines(source, progress), sys.stderr)
        a, b = replay_each(events, books, args.until, sys.stderr)
    comparison = compare(a, b, (str(args.compare[0]), str(args.compare[1])))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(as_json(comparison), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
    else:
        sys.stdout.write(as_text(comparison))
    return 0


def _dlq(args: argparse.Namespace, settings: Any) -> int:
    from processor import dlq

    out = sys.stdout
    if args.action == "show":
        found = asyncio.run(dlq.read_one(settings, args.topic, args.partition, args.offset))
        out.write(orjson.dumps(dlq.shown(found)).decode() + "\n")
        return 0
    letters = asyncio.run(dlq.read(settings, args.topic, values=args.action == "redrive"))
    chosen = dlq.selected(letters, args.reason, args.since)
    if args.action == "list":
        out.writelines(orjson.dumps(d.summary()).decode() + "\n" for d in chosen)
        out.write(orjson.dumps({"dead_letters": len(chosen), "reasons": dlq.counts(chosen)})
                  .decode() + "\n")  # fmt: skip
        return 0
    plan = dlq.plan(chosen, asyncio.run(dlq.redriven(settings, chosen)))
    sent = plan.send if args.dry_run else asyncio.run(dlq.redrive(settings, plan.send))
    out.writelines(orjson.dumps({**d.summary(), "redriven_to": d.header("sla-origin-topic")})
                   .decode() + "\n" for d in sent)  # fmt: skip
    report = {"dry_run": args.dry_run, "sent": len(sent), "redriven_before": len(plan.done_before),
              "truncated": len(plan.truncated), "without_origin": len(plan.no_origin)}  # fmt: skip
    out.write(orjson.dumps(report).decode() + "\n")
    return 0


def _kafka_named(settings: Any) -> str:
    """The connection as the settings name it (never the password)."""
    named = f"{settings.kafka_bootstrap_servers} (SLA_KAFKA_BOOTSTRAP_SERVERS)"
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT":
        named += f" over {protocol} (SLA_KAFKA_SECURITY_PROTOCOL)"
    if protocol.startswith("SASL_"):
        named += (f" as {settings.kafka_sasl_username} with {settings.kafka_sasl_mechanism} "
                  "(SLA_KAFKA_SASL_USERNAME, _MECHANISM, _PASSWORD)")  # fmt: skip
    return named


def _kafka_command(command: str, args: argparse.Namespace) -> int:
    """`worker`, `create-topics` or `dlq`, configured by the `SLA_*` environment variables."""
    from aiokafka.errors import KafkaError

    from processor.ingest import IngestConfigError
    from processor.settings import ConfigError, from_environment
    from processor.topics import PartitionMismatch, TopicsError

    try:
        settings = from_environment(os.environ)
    except ConfigError as exc:
        sys.stderr.write(f"sla-processor: {exc}\n")
        return EXIT_USAGE
    try:
        if command == "dlq":
            return _dlq(args, settings)
        if command == "create-topics":
            from processor.topics import create_topics

            names = asyncio.run(create_topics(settings))
            sys.stdout.write("".join(f"{name}\n" for name in names))
            return 0
        if command == "ingest":
            from processor.ingest import server

            return server.run(settings)
        from processor import worker

        return worker.run(settings)
    except ConfigError as exc:
        sys.stderr.write(f"sla-processor: {exc}\n")
        return EXIT_USAGE
    except IngestConfigError as exc:
        sys.stderr.write(f"sla-processor: {exc}\n")
        return EXIT_USAGE
    except PartitionMismatch as exc:
        sys.stderr.write(f"sla-processor: {exc}\n")
        return PartitionMismatch.EXIT_CODE
    except LookupError as exc:  # dlq: no such topic
        sys.stderr.write(f"sla-processor: {exc.args[0]}\n")
        return EXIT_USAGE
    except (KafkaError, TopicsError, TimeoutError) as exc:
        # aiokafka logs why each bootstrap server failed (refused, TLS, SASL) just before.
        sys.stderr.write(f"sla-processor: Kafka at {_kafka_named(settings)}: {exc}\n")
        return EXIT_KAFKA


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "report":
            return _report(args)
        # Imported late: Faust is heavy, and replay needs none of it.
        if args.command == "demo":
            from processor import demo

            return demo.run(args.seconds)
        return _kafka_command(args.command, args)
    except PolicyError as exc:
        sys.stderr.write(f"sla-processor: invalid policy: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"sla-processor: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
