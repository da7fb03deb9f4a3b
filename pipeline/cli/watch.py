"""`invoices watch`: the hot folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pipeline.cli.common import EPILOG, BadArgs, add_common, format_table, open_store_for, settings_from
from pipeline.cli.monitoring import add_monitoring_flags, monitoring
from pipeline.errors import ExitCode


def cmd_watch(args: argparse.Namespace) -> int:
    from pipeline.watch import WatchOptions, watch

    if not args.folder.is_dir():
        raise BadArgs(f"no such folder: {args.folder}")
    if args.stable_seconds < 0 or args.poll_interval <= 0:
        raise BadArgs("--stable-seconds must be 0 or more and --poll-interval more than 0")
    workers = args.workers or os.cpu_count() or 1
    if args.cluster:
        import logging

        from pipeline.cluster import check_store_for_cluster, parse_cluster

        address, local_workers = parse_cluster(args.cluster)
        workers = local_workers or 1
        if getattr(args, "verbose", 0) < 2:
            logging.getLogger("distributed").setLevel(logging.WARNING)
    settings = settings_from(args, threads_per_worker=max(1, (os.cpu_count() or 1) // workers))
    if args.cluster:
        check_store_for_cluster(settings.store, address)
    options = WatchOptions(
        workers=workers,
        stable_seconds=args.stable_seconds,
        poll_interval=args.poll_interval,
        use_inotify=not args.poll,
        on_success=args.on_success,
        once=args.once,
        shared_claims=bool(args.cluster),
    )
    store = open_store_for(settings)
    # The loop turns at least every poll interval: ten missed turns (30 s at least) is a stuck watcher.
    stale_after = max(30.0, 10 * args.poll_interval)
    cluster = None
    try:
        if args.cluster:
            from pipeline.cluster import ClusterExecutor

            cluster = ClusterExecutor(args.cluster, settings, store)
        with monitoring(args, settings, "watch", args.folder, stale_after) as ops:
            report = watch(
                args.folder,
                settings,
                store,
                options,
                store_factory=lambda: open_store_for(settings, rebuild_missing_index=False),
                observers=ops.observers,
                cluster=cluster,
            )
    finally:
        if cluster is not None:
            cluster.close()
        store.close()
    if args.once and not args.quiet:
        rows = [("done", report.done), ("failed", report.failed), ("recovered", report.recovered)]
        print(format_table(["files", "count"], rows))
    return ExitCode.SOME_FAILED if args.once and report.failed else ExitCode.OK


def register(commands: Any) -> None:
    watch = commands.add_parser(
        "watch",
        help="process every file dropped into a hot folder, once",
        description=(
            "Watch HOTFOLDER (inotify, with polling for network shares). A file is taken once it is\n"
            "completely written, claimed by an atomic rename into HOTFOLDER/.processing/, processed and\n"
            "stored, then moved to HOTFOLDER/done/ (or deleted) or to HOTFOLDER/failed/ with\n"
            "<name>.error.txt giving the reason. Files left behind by a crashed watcher are taken over.\n"
            "Temporary and partial names (.part, .tmp, .crdownload, ~$*, hidden) are ignored, symbolic\n"
            "links refused. SIGTERM or Ctrl-C finishes the documents in flight and stops; a second one\n"
            "stops at once. Formats: PDF, OFD and XML e-invoices, JPEG/PNG/TIFF/BMP/WebP/HEIC images,\n"
            "and ZIP bundles (each document inside stored on its own; the ZIP goes to done/, or to\n"
            "failed/ naming the members that failed). A file of another format goes to failed/ with\n"
            "the reason. See docs/HOTFOLDER.md (states, log format, a systemd unit).\n\n"
            "Several machines on one shared folder (NFS, SMB): give each watcher --cluster (Dask) and\n"
            "the same postgresql:// --index and s3:// --store. Files are then claimed through the index\n"
            "(one row per file, so each is taken once) instead of flock, and a watcher whose heartbeat\n"
            "stops for 60 s is dead: its files are taken over. See docs/SCALE.md."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watch.add_argument("folder", type=Path, metavar="HOTFOLDER")
    watch.add_argument(
        "--workers", type=int, default=None, help="parallel worker processes (default: number of cores)"
    )
    watch.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="process on Dask distributed (tcp://SCHEDULER:8786 or local:N) and claim files through the "
        "shared index, for watchers on several machines; replaces --workers",
    )
    watch.add_argument(
        "--once", action="store_true", help="process what is in the folder, then exit (cron, tests)"
    )
    watch.add_argument("--poll", action="store_true", help="no inotify: only poll (network shares: NFS, SMB)")
    watch.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between folder scans (default 1)"
    )
    watch.add_argument(
        "--stable-seconds",
        type=float,
        default=2.0,
        help="a file unchanged (size, mtime) this long is complete (default 2)",
    )
    watch.add_argument(
        "--on-success",
        choices=["move", "delete"],
        default="move",
        help="move processed files to done/ (default) or delete them (the store keeps the original)",
    )
    add_monitoring_flags(watch)
    add_common(watch, engine=True)
    watch.set_defaults(func=cmd_watch)
