"""tl_core.inputs.data: real loading behaviour on tiny datasets built in tmp_path, built-ins and splits."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from tl_core.inputs.data import (
    DataError,
    Dataset,
    Limits,
    decode_image,
    list_builtins,
    load_dataset,
    load_upload,
    make_split,
    sample_indices,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def png(color=RED, size=(12, 10), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_tree(root, entries: dict[str, bytes]):
    for name, data in entries.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def two_classes(n=3, prefix="") -> dict[str, bytes]:
    return {
        **{f"{prefix}cat/{i}.png": png(RED) for i in range(n)},
        **{f"{prefix}dog/{i}.png": png(BLUE) for i in range(n)},
    }


def error_text(excinfo) -> str:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg, "DataError messages are one line"
    return msg


# --------------------------------------------------------------------------- image folders and zips


def test_class_folder_zip_and_folder_give_the_same_dataset(tmp_path):
    entries = two_classes(3)
    from_zip = load_upload("pets.zip", make_zip(entries))
    from_dir = load_dataset(write_tree(tmp_path / "pets", entries))
    for ds in (from_zip, from_dir):
        assert ds.kind == "image" and ds.classes == ["cat", "dog"]
        assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1] and ds.labels.dtype == np.int64
        assert ds.report.counts == {"cat": 3, "dog": 3}
        assert ds.fixed_val is None and ds.texts is None
        assert isinstance(ds.images, np.ndarray) and ds.images.shape == (6, 10, 12, 3)  # same size: stacked
        assert tuple(ds.images[0, 0, 0]) == RED and tuple(ds.images[5, 0, 0]) == BLUE
        assert ds.report.image_sizes == {"min": [12, 10], "max": [12, 10], "most_common": [12, 10]}
    assert from_zip.name == "pets.zip"


def test_zip_path_and_wrapper_folder(tmp_path):
    entries = two_classes(2, prefix="my_data/")
    entries["my_data/README.md"] = b"hello"
    path = tmp_path / "d.zip"
    path.write_bytes(make_zip(entries))
    ds = load_dataset(path)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4
    assert any("my_data/" in n for n in ds.report.notes)
    assert any("outside class folders" in n for n in ds.report.notes)
    entries["notes.txt"] = b"a stray file beside the wrapper"
    assert load_upload("d.zip", make_zip(entries)).classes == ["cat", "dog"]


def test_zip_without_images_and_spreadsheets_refused():
    with pytest.raises(DataError, match="no image files"):
        load_upload("d.zip", make_zip({"xl/workbook.xml": b"<x/>", "docProps/app.xml": b"<x/>"}))
    with pytest.raises(DataError, match="save book.xlsx as CSV"):
        load_upload("book.xlsx", make_zip({"xl/workbook.xml": b"<x/>"}))


def test_train_val_layout_sets_fixed_val_and_split_honours_it():
    entries = {
        **two_classes(4, prefix="train/"),
        **two_classes(3, prefix="val/"),
    }
    ds = load_upload("tv.zip", make_zip(entries))
    assert ds.classes == ["cat", "dog"] and len(ds) == 14
    assert ds.fixed_val is not None and ds.fixed_val.sum() == 6
    split = make_split(ds, val_per_class=20)
    assert set(split.val) | set(split.test) == set(np.flatnonzero(ds.fixed_val))  # val/ halves: validation, test
    assert np.bincount(ds.labels[split.val]).tolist() == [2, 2] and np.bincount(ds.labels[split.test]).tolist() == [1, 1]
    assert set(split.train) == set(np.flatnonzero(~ds.fixed_val))
    capped = make_split(ds, val_per_class=1, test_per_class=1, seed=1)
    assert np.bincount(ds.labels[capped.val]).tolist() == [1, 1] == np.bincount(ds.labels[capped.test]).tolist()
    assert ds.fixed_val[capped.val].all() and not ds.fixed_val[capped.train].any()  # val/ never trains


def test_exif_rotation_is_applied():
    im = Image.new("RGB", (40, 20), RED)
    im.paste(BLUE, (20, 0, 40, 20))  # left half red, right half blue, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, quality=95)
    arr, size = decode_image(buf.getvalue())
    assert arr.shape == (40, 20, 3) and size == (20, 40)  # upright: tall
    top, bottom = arr[5, 10], arr[35, 10]
    assert top[0] > 200 and top[2] < 60  # the stored left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_modes_convert_to_rgb():
    grey, _ = decode_image(png(128, mode="L"))
    assert grey.shape == (10, 12, 3) and (grey == 128).all()
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent: shows as white, not black
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    arr, _ = decode_image(buf.getvalue())
    assert arr.shape == (4, 4, 3) and tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[1, 1]) == RED
    pal = Image.new("RGB", (5, 5), GREEN).convert("P", palette=Image.Palette.ADAPTIVE)
    buf = io.BytesIO()
    pal.save(buf, "GIF")
    arr, _ = decode_image(buf.getvalue())
    assert arr.dtype == np.uint8 and arr.shape == (5, 5, 3) and tuple(arr[2, 2]) == GREEN


def test_large_images_are_downscaled_on_load():
    arr, size = decode_image(png(size=(1000, 600)), max_short_side=256)
    assert size == (1000, 600) and arr.shape == (256, 427, 3)


def test_corrupt_image_is_skipped_and_named():
    entries = two_classes(2)
    entries["cat/broken.png"] = b"\x89PNG\r\n\x1a\n garbage"
    entries["dog/fake.jpg"] = b"not an image at all"
    ds = load_upload("d.zip", make_zip(entries))
    assert ds.report.counts == {"cat": 2, "dog": 2}
    skipped = dict(ds.report.skipped)
    assert set(skipped) == {"cat/broken.png", "dog/fake.jpg"}
    assert all(reason and "\n" not in reason for reason in skipped.values())


def test_hidden_files_macosx_and_non_images_ignored_with_notes():
    entries = two_classes(2)
    entries.update(
        {
            ".DS_Store": b"x",
            "cat/._0.png": b"x",
            "__MACOSX/cat/._0.png": b"x",
            "dog/Thumbs.db": b"x",
            "dog/labels.txt": b"x",
        }
    )
    ds = load_upload("d.zip", make_zip(entries))
    assert ds.report.counts == {"cat": 2, "dog": 2} and ds.report.skipped == []
    notes = " | ".join(ds.report.notes)
    assert "hidden" in notes and "__MACOSX" in notes and "non-image" in notes and ".txt" in notes


def test_mixed_sizes_are_kept_as_a_list_with_size_stats():
    entries = {"a/1.png": png(size=(10, 10)), "a/2.png": png(size=(10, 10)), "b/1.png": png(size=(30, 20))}
    ds = load_upload("d.zip", make_zip(entries))
    assert isinstance(ds.images, list) and [im.shape for im in ds.images] == [(10, 10, 3), (10, 10, 3), (20, 30, 3)]
    assert ds.report.image_sizes == {"min": [10, 10], "max": [30, 20], "most_common": [10, 10]}


def test_one_class_is_refused():
    with pytest.raises(DataError, match="at least 2 class") as e:
        load_upload("d.zip", make_zip({"cat/1.png": png(), "cat/2.png": png()}))
    assert "'cat'" in error_text(e)


def test_class_without_usable_images_is_refused(tmp_path):
    entries = two_classes(2)
    entries["bird/broken.png"] = b"garbage"
    with pytest.raises(DataError, match="'bird'") as e:
        load_dataset(write_tree(tmp_path / "d", entries))
    assert "no usable images" in error_text(e)


def test_hostile_zips_are_refused_through_load_upload():
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("../evil.png"), png())
    with pytest.raises(DataError, match=r"\.\."):
        load_upload("d.zip", bomb.getvalue())
    with pytest.raises(DataError, match="^d.zip is not a zip archive but a text file") as e:
        load_upload("d.zip", b"not a zip")
    error_text(e)


def tiny_png_claiming(width: int, height: int) -> bytes:
    """A few-byte PNG whose header claims a huge image (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_image_is_skipped():
    entries = two_classes(2)
    entries["cat/bomb.png"] = tiny_png_claiming(100_000, 100_000)
    ds = load_upload("d.zip", make_zip(entries))
    assert dict(ds.report.skipped)["cat/bomb.png"].startswith("too large")
    with pytest.raises(DataError, match="too large"):
        decode_image(tiny_png_claiming(7_000, 7_000))  # 49 M pixels: over our 40 M limit, under PIL's own
    small_limit = Limits(max_image_pixels=100)  # 12x10 = 120 pixels: every image is too large
    with pytest.raises(DataError, match="no usable images"):
        load_upload("d.zip", make_zip(two_classes(2)), limits=small_limit)


def test_missing_and_unsupported_sources(tmp_path):
    with pytest.raises(DataError, match="^not found: ") as e:
        load_dataset(tmp_path / "nope")
    error_text(e)
    other = tmp_path / "model.bin"
    other.write_bytes(b"\x00\x01binary")
    with pytest.raises(DataError, match="^not a zip archive, folder or CSV"):
        load_dataset(other)
    with pytest.raises(DataError, match="^not a zip archive, folder or CSV"):
        load_upload("photo.png", png())
    with pytest.raises(DataError, match="unknown built-in"):
        load_dataset("builtin:nope")


# --------------------------------------------------------------------------- CSV / TSV


def test_csv_auto_detects_columns():
    csv_bytes = (
        b"id,review,sentiment\n"
        b'1,"Great film, loved it",pos\n'
        b"2,Terrible plot,neg\n"
        b"3,,neg\n"
        b"4,Terrible plot,neg\n"
        b"5,Fine I guess,pos\n"
    )
    ds = load_upload("reviews.csv", csv_bytes)
    assert ds.kind == "text" and ds.images is None and ds.classes == ["neg", "pos"]
    assert ds.texts == ["Great film, loved it", "Terrible plot", "Fine I guess"]
    assert ds.labels.tolist() == [1, 0, 1]
    assert ds.report.skipped == [("row 4", "empty text")]
    assert any("duplicate" in n for n in ds.report.notes)


def test_csv_longest_column_is_the_text_and_two_column_fallback(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("y\tbody\n1\ta long piece of text\n2\tanother long text here\n10\tmore words\n")
    ds = load_dataset(path)
    assert ds.texts[0] == "a long piece of text" and ds.classes == ["1", "2", "10"]  # numeric names sort as numbers


def test_csv_explicit_columns_and_bad_column_message():
    csv_bytes = b"a,b,c\nx1,hello there,u\nx2,good bye,v\nx3,see you,u\n"
    ds = load_upload("d.csv", csv_bytes, text_column="b", label_column="c")
    assert ds.texts == ["hello there", "good bye", "see you"] and ds.classes == ["u", "v"]
    with pytest.raises(DataError) as e:
        load_upload("d.csv", csv_bytes, text_column="txt", label_column="c")
    msg = error_text(e)
    assert "'txt'" in msg and "a, b, c" in msg
    with pytest.raises(DataError, match="a, b, c"):
        load_upload("d.csv", csv_bytes)  # three columns, none named like a label


def test_empty_and_one_class_csv_refused():
    with pytest.raises(DataError, match="empty"):
        load_upload("d.csv", b"")
    with pytest.raises(DataError, match="empty"):
        load_upload("d.csv", b"text,label\n")
    with pytest.raises(DataError, match="at least 2 classes"):
        load_upload("d.csv", b"text,label\nhi,a\nho,a\n")
    with pytest.raises(DataError, match="more than 2 rows"):
        load_upload("d.csv", b"text,label\nhi,a\nho,b\nhu,a\n", limits=Limits(max_text_rows=2))


def csv_rows(n=10, sep=",", text="text number {i}") -> str:
    return "".join(f"{text.format(i=i)}{sep}{'pos' if i % 2 else 'neg'}\n" for i in range(n))


def test_csv_delimiter_from_the_rows_and_excel_sep_line():
    """A semicolon file whose texts hold commas, Excel's 'sep=;' first line, a comma file named .tsv: all load."""
    semi = load_upload("semi.csv", ("text;label\n" + csv_rows(sep=";", text="great, number {i}")).encode())
    assert semi.classes == ["neg", "pos"] and semi.texts[0] == "great, number 0"
    excel = load_upload("excel.csv", ("sep=;\r\ntext;label\r\n" + csv_rows(sep=";", text="a, b {i}")).encode())
    assert excel.classes == ["neg", "pos"] and len(excel) == 10  # not a class 'label' with one row
    assert any("sep=;" in n for n in excel.report.notes)
    misnamed = load_upload("comma.tsv", ("text,label\n" + csv_rows()).encode())
    assert misnamed.classes == ["neg", "pos"] and any("comma, not tabs" in n for n in misnamed.report.notes)


def test_csv_encodings_utf16_and_windows_1252():
    body = "text,label\n" + csv_rows(text="café {i}")
    for encoded, note in [(body.encode("utf-16"), "UTF-16"), (body.encode("utf-16-le"), "UTF-16"),
                          (body.encode("cp1252"), "Windows-1252")]:
        ds = load_upload("d.csv", encoded)
        assert ds.classes == ["neg", "pos"] and ds.texts[0] == "café 0", ds.texts[:2]
        assert any(note in n for n in ds.report.notes)


def test_csv_problems_are_named_at_load():
    """What would otherwise surface later as "class 'label' has only 1 item(s)" is said about the file itself."""
    with pytest.raises(DataError) as e:  # the rows use another delimiter than the header
        load_upload("mixed.csv", ("text,label\n" + csv_rows(sep=";")).encode())
    assert error_text(e).startswith("mixed.csv: 10 of 10 rows have fewer fields than the header's 2 when split "
                                    "at a comma; check the delimiter")
    repeated = load_upload("twice.csv", ("text,label\n" + csv_rows() + "text,label\n" + csv_rows(text="more {i}")).encode())
    assert repeated.classes == ["neg", "pos"] and ("row 12", "repeats the header row") in repeated.report.skipped
    with pytest.raises(DataError, match="^one.csv has one column .*separated by a comma, a tab or a semicolon"):
        load_upload("one.csv", b"just text\nmore text\nand more\n")


# --------------------------------------------------------------------------- built-ins


def test_builtins_load_with_expected_shapes():
    animals = load_dataset("builtin:animals")
    assert animals.images.shape == (10000, 28, 28, 3) and animals.images.dtype == np.uint8
    assert animals.classes[:3] == ["bear", "bird", "cat"] and len(animals.classes) == 10
    assert set(animals.report.counts.values()) == {1000}
    assert not animals.images.flags.writeable  # shared cache: read-only
    assert load_dataset("builtin:animals") is animals

    digits = load_dataset("builtin:digits")
    assert digits.images.shape == (1797, 8, 8, 3) and digits.images.max() == 255
    assert digits.classes == [str(i) for i in range(10)] and sum(digits.report.counts.values()) == 1797

    sentiment = load_dataset("builtin:sentiment")
    assert sentiment.kind == "text" and sentiment.classes == ["negative", "neutral", "positive"]
    assert len(sentiment) > 30_000 and len(set(sentiment.texts)) == len(sentiment)
    assert all(t and t.isascii() for t in sentiment.texts)

    listing = {b["name"]: b for b in list_builtins()}
    assert set(listing) == {"builtin:animals", "builtin:digits", "builtin:sentiment"}
    assert listing["builtin:animals"]["n_items"] == 10000 and listing["builtin:digits"]["kind"] == "image"
    assert "ImageNet" in listing["builtin:digits"]["description"]


# --------------------------------------------------------------------------- splits and batches


def toy(counts: list[int]) -> Dataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    return load_upload("t.csv", ("text,label\n" + "".join(f"item {i},c{l}\n" for i, l in enumerate(labels))).encode())


def test_split_is_stratified_and_deterministic():
    ds = toy([50, 30, 7])
    split = make_split(ds, val_per_class=10, test_per_class=10, seed=3)
    assert np.bincount(ds.labels[split.val]).tolist() == [10, 10, 2]  # small class: a third each
    assert np.bincount(ds.labels[split.test]).tolist() == [10, 10, 2]
    assert np.bincount(ds.labels[split.train]).tolist() == [30, 10, 3]
    again = make_split(ds, val_per_class=10, test_per_class=10, seed=3)
    assert all(np.array_equal(getattr(split, p), getattr(again, p)) for p in ("train", "val", "test"))
    assert not np.array_equal(make_split(ds, val_per_class=10, seed=4).val, split.val)
    assert split.per_class(ds.labels, 3) == {"train": [30, 10, 3], "val": [10, 10, 2], "test": [10, 10, 2]}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_test_split_is_disjoint_from_train_and_validation(seed):
    ds = toy([40, 25, 9, 3])
    for lpc in (None, 1, 5):
        split = make_split(ds, val_per_class=20, test_per_class=50, labels_per_class=lpc, seed=seed)
        train, val, test = set(split.train), set(split.val), set(split.test)
        assert not train & val and not train & test and not val & test
        assert all(np.bincount(ds.labels[list(part)], minlength=4).min() >= 1 for part in (train, val, test))


def test_label_budgets_nest_and_share_validation_and_test():
    ds = toy([60, 60, 60])
    s10 = make_split(ds, val_per_class=20, test_per_class=20, labels_per_class=10, seed=7)
    s50 = make_split(ds, val_per_class=20, test_per_class=20, labels_per_class=50, seed=7)
    full = make_split(ds, val_per_class=20, test_per_class=20, seed=7)
    assert np.array_equal(s10.val, s50.val) and np.array_equal(s10.val, full.val)
    assert np.array_equal(s10.test, s50.test) and np.array_equal(s10.test, full.test)
    assert set(s10.train) < set(s50.train) <= set(full.train)
    assert np.bincount(ds.labels[s10.train]).tolist() == [10, 10, 10]
    assert np.bincount(ds.labels[s50.train]).tolist() == [20, 20, 20]  # asked for more than exists: all
    assert s10.labels_per_class == 10 and s10.val_per_class == 20 and s10.seed == 7


def test_split_refuses_tiny_class():
    with pytest.raises(DataError, match="'c1' has only 2 item"):
        make_split(toy([5, 2]))


def test_sample_indices_per_class():
    ds = toy([10, 3])
    picks = sample_indices(ds, per_class=4, seed=0)
    assert list(picks) == ["c0", "c1"] and len(picks["c0"]) == 4 and len(picks["c1"]) == 3
    assert all(ds.labels[i] == 0 for i in picks["c0"]) and picks == sample_indices(ds, per_class=4, seed=0)


def test_image_batch_uniform_and_list_storage_agree():
    animals = load_dataset("builtin:animals")
    batch = animals.image_batch([0, 5000, 9999], 64)
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == torch.uint8
    sub = animals.subset([0, 5000, 9999])
    assert sub.images.shape == (3, 28, 28, 3) and sub.report.counts["bear"] == 1
    as_list = Dataset(**{**sub.__dict__, "images": list(sub.images)})
    assert torch.equal(as_list.image_batch([0, 1, 2], 64), sub.image_batch([0, 1, 2], 64))

    entries = {"a/1.png": png(RED, (40, 20)), "b/1.png": png(BLUE, (20, 30))}
    mixed = load_upload("d.zip", make_zip(entries))
    out = mixed.image_batch([0, 1], 16)
    assert out.shape == (2, 3, 16, 16) and out.dtype == torch.uint8
    assert out[0, 0].min() == 255 and out[1, 2].min() == 255  # centre crop of flat colour stays flat
    assert animals.image_batch(np.arange(600), 32).shape == (600, 3, 32, 32)  # several internal chunks


def test_text_dataset_subset_and_no_images():
    ds = toy([4, 4])
    sub = ds.subset([0, 7])
    assert sub.texts == ["item 0", "item 7"] and sub.labels.tolist() == [0, 1]
    with pytest.raises(DataError, match="text dataset"):
        ds.image_batch([0], 32)
