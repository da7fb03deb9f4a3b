"""Bad e-invoice input, each a clear per-file error while the batch goes on.

Truncated ZIP, OFD without OFD.xml, XML billion laughs, XML with external entities (nothing read
from disk or network: a real listener on 127.0.0.1 counts connections), ZIP members with ``../``
names, zip bombs (ratio and total size), encrypted members, too many members; and the hot folder:
a bundle moved once, a file of an unread format in failed/ with its reason.
"""

from __future__ import annotations

import io
import os
import re
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import EInvoiceUnreadable, UnsafeInput
from pipeline.ingest import Outcome, State, discover, run_batch
from pipeline.load import load_document
from pipeline.store import open_store
from pipeline.watch import Watcher, WatchOptions
from tests.conftest import REPO

SAMPLES = REPO / "samples_einvoice"
GOOD_OFD = SAMPLES / "vat_e_general_blue.ofd"
GOOD_XML = SAMPLES / "fully_digital_special_blue.xml"


def zip_bytes(members: dict[str, bytes], encrypt: frozenset[str] = frozenset()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    data = bytearray(out.getvalue())
    # Mark members encrypted as a zip tool does (bit 0 of the flags, in the local header and the
    # central directory); zipfile itself cannot write encrypted members.
    for info in zipfile.ZipFile(io.BytesIO(bytes(data))).infolist():
        if info.filename in encrypt:
            data[info.header_offset + 6] |= 0x1
            central = data.index(b"PK\x01\x02")
            while True:
                name_length = int.from_bytes(data[central + 28 : central + 30], "little")
                if data[central + 46 : central + 46 + name_length].decode() == info.filename:
                    data[central + 8] |= 0x1
                    break
                central = data.index(b"PK\x01\x02", central + 4)
    return bytes(data)


class Listener:
    """A real TCP server on 127.0.0.1 that counts who connects (an XXE would fetch from it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stopping = True
        self.thread.join()
        self.sock.close()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<EInvoice><TaxSupervisionInfo><InvoiceNumber>&lol9;</InvoiceNumber></TaxSupervisionInfo></EInvoice>
"""


def external_entity_xml(secret: Path, port: int) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE EInvoice [
 <!ENTITY secret SYSTEM "file://{secret}">
 <!ENTITY remote SYSTEM "http://127.0.0.1:{port}/steal">
 <!ENTITY % dtd SYSTEM "http://127.0.0.1:{port}/evil.dtd"> %dtd;
]>
<EInvoice><EInvoiceData><SellerInformation><SellerName>&secret;</SellerName></SellerInformation>
<BuyerInformation><BuyerName>&remote;</BuyerName></BuyerInformation></EInvoiceData>
<TaxSupervisionInfo><InvoiceNumber>24112000000000000001</InvoiceNumber></TaxSupervisionInfo></EInvoice>
""".encode()


def ofd_without_entry() -> bytes:
    with zipfile.ZipFile(io.BytesIO(GOOD_OFD.read_bytes())) as source:
        return zip_bytes(
            {info.filename: source.read(info) for info in source.infolist() if info.filename != "OFD.xml"}
        )


def by_name(outcomes: list[Outcome], root: Path) -> dict[str, Outcome]:
    return {os.path.relpath(o.path, root): o for o in outcomes}


def test_bad_einvoice_inputs_fail_one_by_one_and_the_batch_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-6f1c")
    listener = Listener()
    good_pdf_like = GOOD_XML.read_bytes()
    bundle = zip_bytes({"a/one.ofd": GOOD_OFD.read_bytes(), "a/two.xml": good_pdf_like})
    files = {
        "good.ofd": GOOD_OFD.read_bytes(),
        "truncated.zip": bundle[: len(bundle) // 2],
        "truncated.ofd": GOOD_OFD.read_bytes()[:1500],
        "no_entry.ofd": ofd_without_entry(),
        "laughs.xml": BILLION_LAUGHS,
        "xxe.xml": external_entity_xml(secret, listener.port),
        "traversal.zip": zip_bytes(
            {
                "../evil.xml": good_pdf_like,
                "/etc/abs.xml": good_pdf_like,
                "ok/inside.xml": good_pdf_like + b" ",
            }
        ),
        "bomb.zip": zip_bytes(
            {"bomb.xml": b"<a>" + b" " * (60 * 1024 * 1024) + b"</a>", "fine.ofd": GOOD_OFD.read_bytes()}
        ),
        "encrypted.zip": zip_bytes(
            {"secret.xml": good_pdf_like, "plain.xml": good_pdf_like + b"\n"}, {"secret.xml"}
        ),
        "notes.zip": zip_bytes({"readme.txt": b"hello"}),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    chosen, skipped = discover([folder])
    assert skipped == []
    settings = Settings(store=str(tmp_path / "store"))
    store = open_store(settings.store)
    try:
        outcomes = by_name(run_batch(chosen, settings, store, workers=1), folder)
    finally:
        store.close()
        listener.close()

    def failed(name: str, *words: str) -> None:
        outcome = outcomes.pop(name)
        assert outcome.state == State.FAILED, (name, outcome)
        assert "\n" not in outcome.message, "one line per file"
        for word in words:
            assert word in outcome.message, (name, outcome.message)

    def stored(name: str) -> None:
        outcome = outcomes.pop(name)
        assert outcome.state == State.STORED, (name, outcome.message)

    failed("truncated.zip", "EInvoiceUnreadable", "truncated")
    failed("truncated.ofd", "EInvoiceUnreadable", "OFD file")
    failed("no_entry.ofd", "EInvoiceUnreadable", "no OFD.xml")
    failed("laughs.xml", "UnsafeInput", "DTD")
    failed("xxe.xml", "UnsafeInput", "DTD")
    failed("traversal.zip!../evil.xml", "UnsafeInput", "path traversal")
    failed("traversal.zip!/etc/abs.xml", "UnsafeInput", "path traversal")
    stored("traversal.zip!ok/inside.xml")
    failed("bomb.zip!bomb.xml", "UnsafeInput", "zip bomb")
    failed("encrypted.zip!secret.xml", "UnsafeInput", "encrypted")
    stored("encrypted.zip!plain.xml")
    skipped_member = outcomes.pop("notes.zip!readme.txt")
    assert skipped_member.state == State.SKIPPED and "not a document" in skipped_member.message
    # The bomb's neighbour is the same file as good.ofd: stored once, whichever came first.
    pair = sorted(str(outcomes.pop(name).state) for name in ("good.ofd", "bomb.zip!fine.ofd"))
    assert pair == ["already_stored", "stored"]
    assert outcomes == {}
    assert listener.connections == 0, "an external entity was fetched"
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert b"TOP-SECRET-6f1c" not in path.read_bytes(), path


def test_the_total_size_and_member_limits_refuse_the_rest(tmp_path: Path) -> None:
    documents = {f"inv_{n}.xml": GOOD_XML.read_bytes() + b" " * n for n in range(6)}
    path = tmp_path / "many.zip"
    path.write_bytes(zip_bytes(documents))
    settings = Settings(store=str(tmp_path / "store"), max_bundle_members=4)
    store = open_store(settings.store)
    try:
        outcomes = by_name(run_batch([path], settings, store, workers=1), tmp_path)
    finally:
        store.close()
    states = {name: o.state for name, o in outcomes.items()}
    assert [states[f"many.zip!inv_{n}.xml"] for n in range(6)] == [State.STORED] * 4 + [State.FAILED] * 2
    assert "member limit" in outcomes["many.zip!inv_5.xml"].message

    # A bundle that unpacks past the total-size limit: what is past it is refused with the reason.
    big = {f"scan_{n}.xml": os.urandom(300_000).hex().encode() for n in range(4)}  # incompressible-ish
    path = tmp_path / "big.zip"
    path.write_bytes(zip_bytes(big))
    settings = Settings(store=str(tmp_path / "store2"), max_unpacked_bytes=1_000_000)
    store = open_store(settings.store)
    try:
        outcomes = by_name(run_batch([path], settings, store, workers=1), tmp_path)
    finally:
        store.close()
    refused = [o for o in outcomes.values() if o.error_type == "UnsafeInput"]
    assert refused and all("MB" in o.message for o in refused)
    assert all(o.state == State.FAILED for o in outcomes.values()), "not invoices, but every one named"


def test_nested_zips_are_opened_once(tmp_path: Path) -> None:
    inner = zip_bytes({"inner.xml": GOOD_XML.read_bytes()})
    deeper = zip_bytes({"deeper.zip": zip_bytes({"deep.xml": GOOD_XML.read_bytes() + b" "})})
    path = tmp_path / "outer.zip"
    path.write_bytes(zip_bytes({"inner.zip": inner, "twice.zip": deeper}))
    settings = Settings(store=str(tmp_path / "store"))
    store = open_store(settings.store)
    try:
        outcomes = by_name(run_batch([path], settings, store, workers=1), tmp_path)
    finally:
        store.close()
    assert outcomes["outer.zip!inner.zip!inner.xml"].state == State.STORED
    refused = outcomes["outer.zip!twice.zip!deeper.zip"]
    assert refused.state == State.FAILED and "nested" in refused.message


def test_loader_errors_are_input_errors_with_reasons() -> None:
    settings = Settings()
    with pytest.raises(UnsafeInput, match="DTD"):
        load_document(BILLION_LAUGHS, settings)
    with pytest.raises(EInvoiceUnreadable, match="not an e-invoice"):
        load_document(b"<?xml version='1.0'?><note>hello</note>", settings)
    with pytest.raises(EInvoiceUnreadable, match="not well-formed"):
        load_document(b"<?xml version='1.0'?><EInvoice><oops></EInvoice>", settings)
    with pytest.raises(EInvoiceUnreadable, match=r"no OFD\.xml"):
        load_document(ofd_without_entry(), settings)


def test_hot_folder_moves_a_bundle_once_and_fails_an_unread_format_with_its_reason(tmp_path: Path) -> None:
    hot, store_dir = tmp_path / "hot", tmp_path / "store"
    hot.mkdir()
    (hot / "download.zip").write_bytes(
        zip_bytes({"x/inv.ofd": GOOD_OFD.read_bytes(), "x/inv.xml": GOOD_XML.read_bytes()})
    )
    (hot / "broken.zip").write_bytes(
        zip_bytes({"../up.xml": GOOD_XML.read_bytes(), "ok.ofd": GOOD_OFD.read_bytes() + b""})
    )
    (hot / "letter.rtf").write_bytes(b"{\\rtf1 not an invoice}")
    settings = Settings(store=str(store_dir))
    store = open_store(settings.store)
    try:
        options = WatchOptions(
            workers=1, once=True, stable_seconds=0.1, poll_interval=0.05, handle_signals=False
        )
        report = Watcher(hot, settings, store, options, None).run()
    finally:
        store.close()
    assert sorted(p.name for p in (hot / "done").iterdir()) == ["download.zip"]
    failed = sorted(p.name for p in (hot / "failed").iterdir())
    assert failed == ["broken.zip", "broken.zip.error.txt", "letter.rtf", "letter.rtf.error.txt"]
    bundle_reason = (hot / "failed" / "broken.zip.error.txt").read_text().splitlines()[0]
    assert "1 of 2 files in the bundle failed" in bundle_reason and "path traversal" in bundle_reason
    format_reason = (hot / "failed" / "letter.rtf.error.txt").read_text().splitlines()[0]
    assert "UnsupportedFormat" in format_reason and "OFD" in format_reason
    assert report.done == 1 and report.failed == 2


def test_ingest_summary_names_what_was_not_read_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "inv.xml").write_bytes(GOOD_XML.read_bytes())
    (folder / "notes.txt").write_text("not an invoice")
    (folder / "bundle.zip").write_bytes(zip_bytes({"readme.md": b"# hello", "x.ofd": GOOD_OFD.read_bytes()}))
    code = main(["ingest", str(folder), "--store", str(tmp_path / "store"), "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "skipped file" in out
    assert re.search(r"notes\.txt\s+not a format read \(\.txt\)", out), out
    assert re.search(r"bundle\.zip!readme\.md\s+not a document this pipeline reads \(\.md\)", out), out
    assert re.search(r"^stored\s+2$", out, re.MULTILINE), out
