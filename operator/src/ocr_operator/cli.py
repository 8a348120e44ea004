"""`ocr-operator run`: the operator against the current KUBECONFIG (or in-cluster config);
`ocr-operator crd`: print the CRD generated from the model."""

from __future__ import annotations

import argparse
import logging
import sys

import kopf

from ocr_operator.advisor.handlers import register_advisor
from ocr_operator.crd import render_yaml
from ocr_operator.handlers import register
from ocr_operator.settings import OperatorSettings


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
        help="no peering: this process is the only active operator",
    )
    run.add_argument(
        "--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument("--verbose", action="store_true", help="debug logging")
    commands.add_parser("crd", help="print the CustomResourceDefinition")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "crd":
        sys.stdout.write(render_yaml())
        return
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    registry = kopf.OperatorRegistry()
    settings = OperatorSettings()
    register(registry, settings)
    register_advisor(registry, settings)
    kopf.run(
        registry=registry,
        standalone=args.standalone,
        namespaces=args.namespace,
        clusterwide=not args.namespace,
        liveness_endpoint=args.liveness,
    )


if __name__ == "__main__":
    main()
