"""Store benchmarks (``make bench``): index latency at 100,000 invoices, S3 throughput on SeaweedFS.

    python scripts/bench_store.py                      # both sections
    python scripts/bench_store.py --only index --docs 20000
    python scripts/bench_store.py --only s3 --objects 400
    python scripts/bench_store.py --only index --index postgres   # PostgreSQL, a local server

Sections
  index  build an index of N synthetic invoices (realistic names, dates, amounts, text), then
         time a point lookup (invoice number; target < 5 ms) and filtered listings (target < 50 ms)
         through ``Index.query``, the code path of ``invoices query``. The SQLite index by default;
         ``--index postgresql://USER@HOST:PORT/DB`` benchmarks a PostgreSQL index there (its tables
         are emptied first: give a scratch database), ``--index postgres`` starts a throw-away local
         server (Debian's postgresql, 127.0.0.1) for the run
  s3     start a local SeaweedFS (``weed mini``, 127.0.0.1 only), then time put and get of page-sized
         and result-sized objects through ``S3ObjectStore`` with parallel threads

Nothing is asserted: it prints numbers. Each target is marked ``ok`` or ``SLOW``.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.cli import QUERY_COLUMNS  # noqa: E402  (the columns `invoices query` reads)
from pipeline.config import S3Settings  # noqa: E402
from pipeline.model import DocType, Field, FieldStatus, InvoiceResult, PageInfo, TextLine  # noqa: E402
from pipeline.store.index import IndexEntry, Query, open_index  # noqa: E402
from pipeline.store.objects import original_key, page_key, result_key  # noqa: E402

POINT_TARGET_MS = 5.0
LISTING_TARGET_MS = 50.0

CITIES = ["北京", "上海", "杭州", "深圳", "广州", "成都", "南京", "武汉", "天津", "苏州"]
WORDS = ["智源", "凯德", "长城", "启明", "宏图", "天润", "新纪元", "金桥", "安泰", "众合", "华信", "中科"]
TRADES = ["医疗器械", "信息技术", "网络科技", "建筑工程", "商贸", "文化传媒", "软件", "咨询", "物流", "电子"]
FORMS = ["有限公司", "股份有限公司", "有限责任公司"]
ITEMS = [
    f"*{kind}*{thing}"
    for kind, things in (
        ("信息技术服务", ["软件维护费", "技术服务费", "云服务费", "软件开发费", "数据处理费"]),
        ("广告服务", ["广告发布费", "广告设计费", "推广服务费"]),
        ("办公用品", ["打印纸", "墨盒", "文件夹", "办公桌椅", "签字笔"]),
        ("建筑服务", ["工程款", "装修费", "设计费"]),
        ("现代服务", ["咨询费", "会议费", "培训费", "审计费", "法律服务费"]),
        ("运输服务", ["国内运费", "快递费", "仓储费"]),
        ("电子元件", ["集成电路", "电阻器", "电容器", "连接器", "传感器"]),
        ("餐饮服务", ["餐费", "住宿费", "会务餐费"]),
    )
    for thing in things
]


def _company(rng: random.Random) -> str:
    return rng.choice(CITIES) + rng.choice(WORDS) + rng.choice(TRADES) + rng.choice(FORMS)


def _tax_id(rng: random.Random) -> str:
    return "91" + "".join(rng.choice("0123456789") for _ in range(15)) + rng.choice("0123456789X")


def synthetic_entries(count: int, seed: int = 20250101) -> Iterator[IndexEntry]:
    """``count`` invoices from 2,000 sellers and 300 buyers over three years, text included."""
    rng = random.Random(seed)
    sellers = [(_company(rng), _tax_id(rng)) for _ in range(2000)]
    buyers = [(_company(rng), _tax_id(rng)) for _ in range(300)]
    start = date(2023, 1, 1)
    polygon = ((0.0, 0.0), (100.0, 0.0), (100.0, 10.0), (0.0, 10.0))
    for n in range(count):
        seller, seller_tax = rng.choice(sellers)
        buyer, buyer_tax = rng.choice(buyers)
        issued = start + timedelta(days=rng.randrange(3 * 365))
        total = round(rng.lognormvariate(7.5, 1.3), 2)
        review = rng.random() < 0.18
        number = f"{rng.randrange(10**8):08d}"
        items = rng.sample(ITEMS, 2)
        text = [
            "电子发票（普通发票）",
            f"发票号码 {number}",
            f"开票日期 {issued:%Y年%m月%d日}",
            seller,
            buyer,
        ]
        text += [*items, f"价税合计 ¥{total:.2f}"]
        document_id = f"{n:08x}" + secrets.token_hex(28)
        result = InvoiceResult(
            document_id=document_id,
            source_name=f"scan-{n:06d}.pdf",
            doc_type=DocType.VAT_E_INVOICE_GENERAL,
            fields={
                "invoice_code": Field(f"0{rng.randrange(10**11):011d}", 0.99, FieldStatus.OK),
                "invoice_number": Field(number, 0.99, FieldStatus.OK),
                "issue_date": Field(issued.isoformat(), 0.99, FieldStatus.OK),
                "seller_name": Field(
                    seller, 0.7 if review else 0.97, FieldStatus.NEEDS_REVIEW if review else FieldStatus.OK
                ),
                "seller_tax_id": Field(seller_tax, 0.99, FieldStatus.OK),
                "buyer_name": Field(buyer, 0.98, FieldStatus.OK),
                "buyer_tax_id": Field(buyer_tax, 0.99, FieldStatus.OK),
                "total_amount": Field(f"{total:.2f}", 0.99, FieldStatus.OK),
            },
            pages=[PageInfo(0, 1600, 1000, "ocr")],
            engine="onnx",
            lines=[TextLine(line, 0.95, polygon) for line in text],
        )
        yield IndexEntry(
            result,
            result_key(document_id),
            original_key(document_id),
            1.7e9 + n,
            (page_key(document_id, 0),),
        )


def _timed(function: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times = []
    last = None
    for _ in range(repeat):
        started = time.perf_counter()
        last = function()
        times.append((time.perf_counter() - started) * 1000)
    return times, last


def _report(label: str, times: list[float], rows: int, target: float) -> None:
    p50 = statistics.median(times)
    p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
    mark = "ok" if p95 < target else "SLOW"
    print(
        f"  {label:<44} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  rows {rows:>6}   target <{target:g} ms: {mark}"
    )


def bench_index(docs: int, folder: Path, location: str | None = None) -> None:
    if location == "postgres":
        from pipeline.store.pglocal import LocalPostgres

        with LocalPostgres() as server:
            bench_index(docs, folder, server.create_database("bench"))
        return
    if location:
        print(f"\n== index: {docs:,} synthetic invoices (PostgreSQL, pg_trgm) ==")
        index = open_index(location)
        index.rebuild([], [])  # a scratch database: start empty
    else:
        print(f"\n== index: {docs:,} synthetic invoices (SQLite WAL + FTS5 trigram) ==")
        index = open_index(folder / "bench-index.sqlite")
    started = time.perf_counter()
    batch: list[IndexEntry] = []
    numbers: list[str] = []
    for entry in synthetic_entries(docs):
        batch.append(entry)
        numbers.append(entry.result.value("invoice_number"))
        if len(batch) == 5000:
            index.upsert_many(batch)
            batch.clear()
    index.upsert_many(batch)
    if location:
        index._db.execute("ANALYZE documents")  # type: ignore[attr-defined]
    build = time.perf_counter() - started
    size = sum(p.stat().st_size for p in folder.glob("bench-index.sqlite*"))
    on_disk = f", {size / 1e6:.0f} MB on disk" if size else ""
    print(f"  built in {build:.1f} s ({docs / build:,.0f} invoices/s){on_disk}")

    rng = random.Random(7)
    lookups = [rng.choice(numbers) for _ in range(1000)]
    times = []
    for number in lookups:
        started = time.perf_counter()
        rows = index.query(Query(number=number), QUERY_COLUMNS)
        times.append((time.perf_counter() - started) * 1000)
        assert rows, number
    print("point lookups (1,000 random invoice numbers):")
    _report("--number N", times, 1, POINT_TARGET_MS)
    sample = index.query(Query(number=lookups[0]))[0]
    times, _ = _timed(lambda: index.get(sample["document_id"][:10]), 1000)
    _report("show <id prefix>", times, 1, POINT_TARGET_MS)

    buyer = sample["buyer_name"]
    misread = buyer[:3] + ("木" if buyer[3] != "木" else "本") + buyer[4:]
    print("filtered listings (each run 30 times):")
    listings: list[tuple[str, Query]] = [
        (
            "--date-from/--date-to (a month) --needs-review",
            Query(date_from=date(2024, 3, 1), date_to=date(2024, 3, 31), needs_review=True),
        ),
        ("--date-from/--date-to (a month)", Query(date_from=date(2024, 3, 1), date_to=date(2024, 3, 31))),
        (
            "--seller 智源医疗器械 (fuzzy) + a year",
            Query(seller="智源医疗器械", date_from=date(2024, 1, 1), date_to=date(2024, 12, 31)),
        ),
        (f"--buyer {misread} (fuzzy, one character off)", Query(buyer=misread)),
        ("--tax-id (seller or buyer)", Query(tax_id=sample["seller_tax_id"])),
        (
            "--amount-min 10000 --amount-max 20000 + a quarter",
            Query(amount_min=10000, amount_max=20000, date_from=date(2024, 1, 1), date_to=date(2024, 3, 31)),
        ),
        (
            "--text 广告发布费 + a month",
            Query(text="广告发布费", date_from=date(2024, 3, 1), date_to=date(2024, 3, 31)),
        ),
        ("--text 广告发布费 --limit 100", Query(text="广告发布费", limit=100)),
        ("--status needs_review --limit 200", Query(status="needs_review", limit=200)),
    ]
    for label, query in listings:
        index.query(query)  # warm the page cache as a clerk's second query would
        times, rows = _timed(lambda query=query: index.query(query, QUERY_COLUMNS), 30)
        _report(label, times, len(rows), LISTING_TARGET_MS)
    index.close()


def bench_s3(objects: int, page_kb: int, threads: int, folder: Path) -> None:
    from pipeline.store.s3 import S3ObjectStore
    from pipeline.store.seaweedfs import LocalSeaweedFS

    print(f"\n== S3 throughput: local SeaweedFS (weed mini), {threads} threads ==")
    server = LocalSeaweedFS(folder / "weed", "bench" + secrets.token_hex(4), secrets.token_hex(16))
    server.start()
    saved = {name: os.environ.get(name) for name in server.env()}
    try:
        os.environ.update(server.env())
        server.create_bucket("bench")
        store = S3ObjectStore("s3://bench/run", S3Settings(max_pool_connections=threads * 2))
        store.check()
        for label, size, count in (
            (f"page images ({page_kb} KB)", page_kb * 1024, objects),
            ("result JSON (8 KB)", 8 * 1024, objects * 2),
        ):
            payload = os.urandom(size)
            keys = [f"bench/{label[:4]}/{n:06d}" for n in range(count)]

            def put(key: str, payload: bytes = payload) -> bool:
                return store.put(key, payload, "image/png", {"source_name": "发票.pdf"})

            def create(key: str, payload: bytes = payload) -> bool:
                return store.put(key, payload, create_only=True)

            with ThreadPoolExecutor(threads) as pool:
                started = time.perf_counter()
                list(pool.map(put, keys))
                put_seconds = time.perf_counter() - started
                started = time.perf_counter()
                sizes = list(pool.map(lambda key: len(store.get(key)), keys))
                get_seconds = time.perf_counter() - started
                started = time.perf_counter()
                created = list(pool.map(create, keys))
                create_seconds = time.perf_counter() - started
            assert sum(sizes) == size * count and not any(created)
            megabytes = size * count / 1e6
            print(
                f"  {label:<22} {count:5d} objects  put {count / put_seconds:7.1f} obj/s {megabytes / put_seconds:7.1f} MB/s"
                f"   get {count / get_seconds:7.1f} obj/s {megabytes / get_seconds:7.1f} MB/s"
                f"   create-only refused {count / create_seconds:7.1f} obj/s"
            )
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="index,s3", help="comma-separated sections: index, s3")
    parser.add_argument("--docs", type=int, default=100_000, help="invoices in the index (default 100,000)")
    parser.add_argument("--objects", type=int, default=300, help="page-sized objects for S3 (default 300)")
    parser.add_argument(
        "--page-kb", type=int, default=256, help="size of a page-sized object (default 256 KB)"
    )
    parser.add_argument("--threads", type=int, default=8, help="parallel S3 requests (default 8)")
    parser.add_argument(
        "--index",
        default=None,
        metavar="URL",
        help="benchmark a PostgreSQL index: postgresql://USER@HOST:PORT/DB (a scratch database), or "
        "'postgres' for a throw-away local server (default: SQLite)",
    )
    args = parser.parse_args(argv)
    sections = {part.strip() for part in args.only.split(",") if part.strip()}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        if "index" in sections:
            bench_index(args.docs, Path(tmp), args.index)
        if "s3" in sections:
            bench_s3(args.objects, args.page_kb, args.threads, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
