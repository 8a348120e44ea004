"""`ocr-operator run`: the operator against the current KUBECONFIG (or in-cluster config);
`ocr-operator crd`: print the CRD generated from the model."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import socket
import sys

import kopf

from ocr_operator.advisor.handlers import register_advisor
from ocr_operator.crd import render_yaml
from ocr_operator.endpoints import parse_address
from ocr_operator.handlers import register
from ocr_operator.logs import LogFormat, configure_logging
from ocr_operator.process import Election, RunOptions, run_process
from ocr_operator.settings import OperatorSettings
from ocr_operator.telemetry import OperatorMetrics


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocr-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="namespace to watch (repeatable; glob patterns allowed)",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace (the default without --namespace)",
    )
    run.add_argument(
        "--standalone",
        action="store_true",
        help="no kopf peering (with or without --leader-elect, which replaces it)",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="run kopf only while holding the leader Lease (several replicas, one active)",
    )
    run.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE"),
        help="namespace of the leader Lease (default: $POD_NAMESPACE, else the only --namespace)",
    )
    run.add_argument("--lease-name", default="ocr-operator", help="name of the leader Lease")
    run.add_argument(
        "--http",
        default=None,
        metavar="HOST:PORT",
        help="serve /healthz and /metrics here, in every replica (e.g. 0.0.0.0:8080)",
    )
    run.add_argument(
        "--liveness",
        default=None,
        help="kopf's liveness endpoint, e.g. http://0.0.0.0:8081/healthz",
    )
    run.add_argument(
        "--log-format", type=LogFormat, choices=list(LogFormat), default=LogFormat.JSON
    )
    run.add_argument("--verbose", action="store_true", help="debug logging")
    commands.add_parser("crd", help="print the CustomResourceDefinition")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "crd":
        sys.stdout.write(render_yaml())
        return
    configure_logging(logging.DEBUG if args.verbose else logging.INFO, args.log_format)
    settings = OperatorSettings()
    options = _options(parser, args, settings)
    metrics = OperatorMetrics()
    registry = kopf.OperatorRegistry()
    register(registry, settings, metrics)
    register_advisor(registry, settings)
    sys.exit(asyncio.run(run_process(options, registry, metrics)))


def _options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, settings: OperatorSettings
) -> RunOptions:
    try:
        http = parse_address(args.http) if args.http else None
    except ValueError as error:
        parser.error(f"--http: {error}")
    election = None
    if args.leader_elect:
        namespace = args.lease_namespace
        if namespace is None and len(args.namespace) == 1:
            namespace = args.namespace[0]
        if not namespace:
            parser.error("--leader-elect needs --lease-namespace (or $POD_NAMESPACE)")
        identity = settings.identity or f"{socket.gethostname()}-{secrets.token_hex(4)}"
        election = Election(namespace, args.lease_name, identity, settings.lease_timings())
    return RunOptions(
        namespaces=tuple(args.namespace),
        standalone=args.standalone,
        liveness=args.liveness,
        http=http,
        election=election,
    )


if __name__ == "__main__":
    main()
