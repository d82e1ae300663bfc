"""tl_core.inputs.archive: untrusted zips and folders are read in memory, within limits, or refused."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest

from tl_core.inputs.archive import DataError, Limits, ignore_reason, iter_folder, iter_members


def make_zip(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """entries: {name or ZipInfo: bytes}. ZipInfo keeps hostile names exactly as given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


def test_reads_members_in_memory_and_skips_metadata():
    data = make_zip(
        {
            "cat/a.png": b"A",
            "dog/b.png": b"B",
            "dog/": b"",
            ".DS_Store": b"x",
            "cat/.hidden.png": b"x",
            "__MACOSX/cat/._a.png": b"x",
            "cat/Thumbs.db": b"x",
        }
    )
    ignored = []
    got = dict(iter_members(data, ignored=ignored))
    assert got == {"cat/a.png": b"A", "dog/b.png": b"B"}
    assert sorted(r for _, r in ignored) == ["__MACOSX", "hidden", "hidden", "system file"]


def test_want_filter_skips_without_reading():
    data = make_zip({"a.png": b"A", "notes.txt": b"T"})
    asked = []
    got = list(iter_members(data, want=lambda p: asked.append(p) or p.endswith(".png")))
    assert got == [("a.png", b"A")] and sorted(asked) == ["a.png", "notes.txt"]


def test_reads_from_path(tmp_path):
    path = tmp_path / "d.zip"
    path.write_bytes(make_zip({"x/y.png": b"Y"}))
    assert list(iter_members(path)) == [("x/y.png", b"Y")]


@pytest.mark.parametrize("name", ["../x.png", "cat/../../x.png", "..\\x.png"])
def test_zip_slip_rejected(name):
    data = make_zip({zipfile.ZipInfo(name): b"x", zipfile.ZipInfo("ok/a.png"): b"x"})
    assert name in zipfile.ZipFile(io.BytesIO(data)).namelist()  # the hostile name really is in there
    with pytest.raises(DataError, match=r"'\.\.'") as e:
        list(iter_members(data))
    one_line_error(e)


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/Windows/x.png"])
def test_absolute_path_rejected(name):
    data = make_zip({zipfile.ZipInfo(name): b"x"})
    with pytest.raises(DataError, match="absolute"):
        list(iter_members(data))


def test_symlink_member_rejected():
    link = zipfile.ZipInfo("cat/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = make_zip({link: b"/etc/passwd", "cat/a.png": b"x"})
    with pytest.raises(DataError, match="symbolic link"):
        list(iter_members(data))


def test_zip_bomb_rejected():
    data = make_zip({"cat/bomb.png": bytes(20 * 2**20)})  # 20 MiB of zeros -> ~20 KiB
    assert len(data) < 100_000
    with pytest.raises(DataError, match="zip bomb") as e:
        list(iter_members(data))
    one_line_error(e)


def test_total_uncompressed_bytes_capped():
    data = make_zip({f"c/{i}.bin": os.urandom(100_000) for i in range(5)}, zipfile.ZIP_STORED)
    with pytest.raises(DataError, match="too large uncompressed"):
        list(iter_members(data, Limits(max_total_bytes=250_000)))
    assert len(list(iter_members(data, Limits(max_total_bytes=600_000)))) == 5


def test_too_many_members_rejected():
    data = make_zip({f"c/{i}.png": b"x" for i in range(6)})
    with pytest.raises(DataError, match="too many members"):
        list(iter_members(data, Limits(max_members=5)))


def test_upload_size_capped():
    data = make_zip({"c/a.png": os.urandom(5000)}, zipfile.ZIP_STORED)
    with pytest.raises(DataError, match="too large"):
        list(iter_members(data, Limits(max_upload_bytes=1000)))


def test_not_a_zip_and_truncated_zip_get_different_plain_messages():
    with pytest.raises(DataError, match=r"^notes\.zip is not a zip archive but a text file "
                                        r"\(it begins \"this is plain text, not a zip\"\)") as e:
        list(iter_members(b"this is plain text, not a zip", name="notes.zip"))
    one_line_error(e)
    data = make_zip({"c/a.png": os.urandom(5000)})
    with pytest.raises(DataError, match=r"^cut\.zip is an incomplete zip archive: .*cut short") as e:
        list(iter_members(data[: len(data) // 2], name="cut.zip"))
    one_line_error(e)
    with pytest.raises(DataError, match=r"^the upload is not a zip archive \(it does not begin like one\)"):
        list(iter_members(bytes(range(256))))
    for err in (e,):  # no Python wording reaches the student
        assert "File is not a zip file" not in str(err.value) and "BadZipFile" not in str(err.value)


def test_corrupt_member_data_rejected():
    data = bytearray(make_zip({"c/a.bin": b"hello world " * 200}))
    start = data.index(b"c/a.bin") + len("c/a.bin")  # first copy: the local header, then the data
    data[start + 5 : start + 25] = bytes(20)
    with pytest.raises(DataError, match="damaged") as e:
        list(iter_members(bytes(data)))
    one_line_error(e)


def test_folder_iteration_skips_hidden(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.png").write_bytes(b"A")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.png").write_bytes(b"x")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    ignored = []
    assert list(iter_folder(tmp_path, ignored=ignored)) == [("cat/a.png", b"A")]
    assert {p for p, _ in ignored} == {".git/", ".DS_Store"}
    with pytest.raises(DataError, match="too many files"):
        (tmp_path / "cat" / "b.png").write_bytes(b"B")
        list(iter_folder(tmp_path, Limits(max_members=1)))


def test_ignore_reason():
    assert ignore_reason("a/b.png") is None
    assert ignore_reason("a/.b.png") == "hidden"
    assert ignore_reason("__MACOSX/a/b.png") == "__MACOSX"
    assert ignore_reason("a/THUMBS.DB") == "system file"
