"""tl_core.runs.sessions: a session's settings and upload on disk, as a refresh or a second tab reads them back."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

from tl_core.inputs.archive import DataError, Limits
from tl_core.runs.sessions import SessionStore, clean_name, storable_settings, valid_session_id

SID, OTHER = "0123456789abcdef", "fedcba9876543210"


@pytest.fixture
def sessions(tmp_path):
    return SessionStore(tmp_path / "sessions")


def test_unknown_session_is_empty(sessions):
    rec = sessions.load(SID)
    assert rec.settings == {} and rec.upload is None
    assert sessions.read_upload(SID) is None


def test_settings_round_trip_and_merge(sessions):
    sessions.update_settings(SID, {"epochs": 15, "mode": "finetune", "lr": 3e-4, "image_size": None, "augment": True})
    sessions.update_settings(SID, {"epochs": 20})  # another tab changes one value: the others stay
    assert sessions.load(SID).settings == {"epochs": 20, "mode": "finetune", "lr": 3e-4, "image_size": None,
                                           "augment": True}
    assert sessions.load(OTHER).settings == {}  # sessions never see each other's


def test_only_json_scalars_are_kept():
    kept = storable_settings({"ok": 1, "text": "x", "list": [1], "obj": object(), "nan": float("nan"),
                              "long": "x" * 5000, 3: "not a str key", "": 1})
    assert kept == {"ok": 1, "text": "x"}


def test_ids_from_urls_cannot_name_other_files(sessions, tmp_path):
    for bad in ("../../etc/passwd", "ABCDEF0123456789", "abc", "0123456789abcdef/../x", "", None):
        assert not valid_session_id(bad)
        with pytest.raises(ValueError):
            sessions.update_settings(bad, {"epochs": 1})
        with pytest.raises(ValueError):
            sessions.save_upload(bad, "a.zip", b"x")
    assert not list(tmp_path.rglob("*.json"))


def test_upload_round_trip_content_addressed(sessions):
    ref = sessions.save_upload(SID, "folder/shapes.zip", b"zip bytes")
    assert ref.name == "shapes.zip" and ref.sha256 == hashlib.sha256(b"zip bytes").hexdigest() and ref.size == 9
    assert sessions.read_upload(SID) == ("shapes.zip", b"zip bytes")
    sessions.save_upload(OTHER, "mine.zip", b"zip bytes")  # the same content: stored once
    assert len(list(sessions.uploads.iterdir())) == 1
    assert sessions.read_upload(OTHER) == ("mine.zip", b"zip bytes")


def test_replacing_and_clearing_prunes_unreferenced_copies(sessions):
    sessions.save_upload(SID, "a.zip", b"first")
    sessions.save_upload(OTHER, "a.zip", b"first")
    sessions.save_upload(SID, "b.csv", b"second")  # "first" is still OTHER's
    assert sorted(p.read_bytes() for p in sessions.uploads.iterdir()) == [b"first", b"second"]
    sessions.clear_upload(OTHER)
    assert [p.read_bytes() for p in sessions.uploads.iterdir()] == [b"second"]
    assert sessions.read_upload(OTHER) is None and sessions.read_upload(SID) == ("b.csv", b"second")
    sessions.update_settings(SID, {"epochs": 3})  # settings and upload live side by side
    assert sessions.read_upload(SID) == ("b.csv", b"second")


def test_upload_over_the_cap_is_refused_and_nothing_is_lost(tmp_path):
    small = SessionStore(tmp_path / "s", limits=Limits(max_upload_bytes=10))
    small.save_upload(SID, "ok.zip", b"0123456789")
    with pytest.raises(DataError, match="too large"):
        small.save_upload(SID, "big.zip", b"x" * 11)
    assert small.read_upload(SID) == ("ok.zip", b"0123456789")


def test_a_changed_or_missing_copy_is_not_restored(sessions):
    sessions.save_upload(SID, "a.zip", b"original")
    blob = next(sessions.uploads.iterdir())
    blob.write_bytes(b"tampered")
    assert sessions.read_upload(SID) is None
    blob.unlink()
    assert sessions.read_upload(SID) is None


def test_unreadable_session_file_reads_as_empty(sessions):
    sessions.update_settings(SID, {"epochs": 4})
    path = sessions.root / f"{SID}.json"
    path.write_text("{ not json")
    assert sessions.load(SID).settings == {}
    path.write_text(json.dumps({"settings": ["wrong"], "upload": {"sha256": "../x"}}))
    assert sessions.load(SID).settings == {} and sessions.load(SID).upload is None
    sessions.update_settings(SID, {"epochs": 5})  # and it can be written again
    assert sessions.load(SID).settings == {"epochs": 5}


def test_writes_leave_no_temporary_files_and_survive_threads(sessions):
    def work(i):
        for j in range(20):
            sessions.update_settings(SID, {f"k{i}": j})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sessions.load(SID).settings == {f"k{i}": 19 for i in range(4)}
    assert not [p for p in sessions.root.rglob("*") if p.name.endswith(".part")]


def test_clean_name():
    assert clean_name("../../a\x00b.zip") == "ab.zip"
    assert clean_name("C:\\Users\\me\\pets.zip") == "pets.zip"
    assert clean_name("") == "upload" and len(clean_name("x" * 500)) == 200
