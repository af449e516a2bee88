"""kqi_services.jobs.runfiles and the output.zip of kqi_services.jobs.results, against real directories.

Every test runs twice: with openat2(2) and with the O_NOFOLLOW walk that
replaces it on kernels before 5.6.
"""

import ctypes
import errno
import io
import os
import socket
import threading
import time
import zipfile

import pytest

from kqi_services.errors import InvalidInput, NotFound
from kqi_services.jobs import runfiles
from kqi_services.jobs.results import ZipLimits, zip_directory
from kqi_services.jobs.runfiles import RunTree, components, display_name, display_path, undisplayed, url_path

SECRET = b"host secret: never served"
RENAME_EXCHANGE = 2
AT_FDCWD = -100


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    if request.param == "openat2" and not runfiles.has_openat2():
        pytest.skip("this kernel has no openat2")
    monkeypatch.setattr(runfiles, "_openat2_works", request.param == "openat2")
    return request.param


@pytest.fixture
def tree(tmp_path, resolver):
    """An output dir with a file, a sub dir, a symlink to a host dir holding a secret, a FIFO and a socket."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.txt").write_bytes(SECRET)
    out = tmp_path / "output"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "result.txt").write_bytes(b"result")
    (out / "top.txt").write_bytes(b"top")
    (out / "link").symlink_to(host)
    (out / "file-link").symlink_to(host / "secret.txt")
    os.mkfifo(out / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(out / "sock"))
    (out / "\udcff\udcfe.bin").write_bytes(b"\x00\xffbytes")  # the name b"\xff\xfe.bin"
    with RunTree(str(out)) as t:
        yield t
    sock.close()


def read(opened) -> bytes:
    with opened:
        return b"".join(runfiles.chunks(opened.fd, 0, opened.size))


def test_components_of_api_paths():
    assert components("/") == components("") == components(b"/") == ()
    assert components("/sub dir//x/./y.txt") == (b"sub dir", b"x", b"y.txt")
    assert components("/etc/passwd") == (b"etc", b"passwd")  # "absolute" is below the root
    assert components("\udcff.bin") == (b"\xff.bin",)
    for bad in ("../x", "/a/../../x", "a/..", "x\x00y", "\ud800"):
        with pytest.raises(InvalidInput):
            components(bad)


def test_names_that_are_not_utf8_are_shown_and_found_again():
    raw = b"\xff\xfe.bin"
    assert display_name(raw) == "%FF%FE.bin"
    assert display_name("é #1.txt".encode()) == "é #1.txt"
    assert display_name(b"a\xed\xa0\x80b") == "a%ED%A0%80b"  # an encoded surrogate is not UTF-8
    assert undisplayed(b"%FF%FE.bin") == raw
    assert undisplayed(b"100%25.txt") is None  # valid UTF-8 after decoding: a real name, not a display form
    assert undisplayed(b"%ff.bin") is None  # display_name writes upper case
    assert url_path((b"sub dir", raw)) == "sub%20dir/%FF%FE.bin"
    assert display_path((b"sub dir", raw)) == "/sub dir/%FF%FE.bin"


def test_listing_says_what_every_entry_is(tree):
    entries, exceeded = tree.listdir(())
    assert not exceeded
    assert {e.name: e.kind for e in entries} == {
        b"sub": "directory", b"top.txt": "file", b"link": "symlink", b"file-link": "symlink", b"pipe": "fifo",
        b"sock": "socket", b"\xff\xfe.bin": "file"}
    assert [e.name for e in tree.listdir((b"sub",))[0]] == [b"result.txt"]
    entries, exceeded = tree.listdir((), limit=3)
    assert len(entries) == 3 and exceeded


def test_reads_regular_files_by_exact_bytes(tree):
    assert read(tree.open_file((b"sub", b"result.txt"))) == b"result"
    assert read(tree.open_file((b"\xff\xfe.bin",))) == b"\x00\xffbytes"
    assert read(tree.open_file(components("/%FF%FE.bin"))) == b"\x00\xffbytes"  # as the listing shows it


@pytest.mark.parametrize("path, message", [
    ("/link/secret.txt", "No"),  # a symlink as a directory component
    ("/file-link", "symlink"),  # a symlink as the leaf
    ("/pipe", "fifo"),  # would block a plain open()
    ("/sock", "socket"),
    ("/sub", "directory"),
    ("/missing.txt", "No"),
    ("/top.txt/x", "No"),
])
def test_refuses_what_is_not_a_regular_file_below_the_root(tree, path, message):
    started = time.monotonic()
    with pytest.raises(NotFound, match=message):
        tree.open_file(components(path))
    assert time.monotonic() - started < 5


def test_refuses_symlinked_directories(tree):
    with pytest.raises(NotFound):
        tree.listdir((b"link",))
    with pytest.raises(NotFound):
        tree.open_dir((b"top.txt",))


def test_refuses_a_device_node(tmp_path, resolver):
    out = tmp_path / "output"
    out.mkdir()
    try:
        os.mknod(out / "null", 0o666 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("no CAP_MKNOD here")
    with RunTree(str(out)) as tree:
        assert [e.kind for e in tree.listdir()[0]] == ["char-device"]
        with pytest.raises(NotFound, match="char-device"):
            tree.open_file((b"null",))


def test_a_root_that_is_a_symlink_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "output").symlink_to(tmp_path / "real")
    with pytest.raises(NotFound):
        RunTree(str(tmp_path / "output"))
    with pytest.raises(NotFound):
        RunTree(str(tmp_path / "nothing"))


def exchange_forever(a: str, b: str, stop: threading.Event) -> None:
    """What a hostile run does: swap two names atomically, as fast as it can."""
    libc = ctypes.CDLL(None, use_errno=True)
    while not stop.is_set():
        libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE)


def test_a_directory_swapped_with_a_symlink_never_leaks_the_host_file(tmp_path, resolver):
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.txt").write_bytes(SECRET)
    out = tmp_path / "output"
    (out / "d").mkdir(parents=True)
    (out / "d" / "secret.txt").write_bytes(b"harmless")
    (out / "swap").symlink_to(host)
    stop = threading.Event()
    swapper = threading.Thread(target=exchange_forever, args=(str(out / "d"), str(out / "swap"), stop))
    swapper.start()
    seen, listed = set(), set()
    try:
        with RunTree(str(out)) as tree:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                try:
                    seen.add(read(tree.open_file((b"d", b"secret.txt"))))
                except NotFound:
                    seen.add(None)
                try:
                    listed.update(e.kind for e in tree.listdir((b"d",))[0])
                except NotFound:
                    pass
    finally:
        stop.set()
        swapper.join()
    assert SECRET not in seen
    assert b"harmless" in seen and None in seen  # the swap did race the reads


def test_zip_stores_links_as_links_and_says_what_it_left_out(tree, tmp_path):
    out = tmp_path / "output"
    os.utime(out / "top.txt", (0, 0))  # 1970: before what a zip can hold
    dest = tmp_path / "out.zip"
    report = zip_directory(str(out), str(dest))
    archive = zipfile.ZipFile(dest)
    assert sorted(archive.namelist()) == ["%FF%FE.bin", "file-link", "link", "sub/result.txt", "top.txt"]
    assert archive.read("%FF%FE.bin") == b"\x00\xffbytes" and archive.read("sub/result.txt") == b"result"
    assert archive.read("link") == str(tmp_path / "host").encode()  # the link's target, not the secret
    assert SECRET not in dest.read_bytes()
    assert archive.getinfo("top.txt").date_time[0] in (1980, 1981)
    comment = archive.comment.decode()
    assert "/pipe: a fifo, not a regular file" in comment and "/sock: a socket" in comment
    assert report.left_out_count == 2 and "leaves out 2 entries" in report.note()


def test_zip_of_a_whole_output_has_no_note(tmp_path):
    out = tmp_path / "output"
    (out / "a").mkdir(parents=True)
    (out / "a" / "b c.txt").write_bytes(b"kept\n")
    report = zip_directory(str(out), str(tmp_path / "o.zip"))
    assert report.note() is None
    archive = zipfile.ZipFile(tmp_path / "o.zip")
    assert archive.namelist() == ["a/b c.txt"] and archive.comment == b""


def test_zip_stops_at_its_caps_and_says_so(tmp_path):
    out = tmp_path / "output"
    out.mkdir()
    for i in range(5):
        (out / f"f{i}").write_bytes(b"x" * 100)
    report = zip_directory(str(out), str(tmp_path / "a.zip"), ZipLimits(max_bytes=250))
    assert zipfile.ZipFile(tmp_path / "a.zip").namelist() == ["f0", "f1"]
    assert report.left_out_count == 3 and "cap of 250 bytes" in zipfile.ZipFile(tmp_path / "a.zip").comment.decode()
    report = zip_directory(str(out), str(tmp_path / "b.zip"), ZipLimits(max_entries=3))
    archive = zipfile.ZipFile(tmp_path / "b.zip")
    names = archive.namelist()  # which 3: the directory's own order picks them
    assert len(names) == 3 and set(names) < {f"f{i}" for i in range(5)}
    assert "more than 3 entries" in archive.comment.decode() and report.left_out_count == 1
    report = zip_directory(str(out), str(tmp_path / "c.zip"), ZipLimits(max_seconds=0))
    assert "time cap" in report.note()
    assert zipfile.ZipFile(io.BytesIO((tmp_path / "c.zip").read_bytes())).namelist() == []


def test_walk_does_not_go_deeper_than_its_depth(tmp_path):
    out = tmp_path / "output"
    deep = out.joinpath(*["d"] * 5)
    deep.mkdir(parents=True)
    (deep / "x").write_bytes(b"x")
    (out / "y").write_bytes(b"y")
    with RunTree(str(out)) as tree:
        items = [(display_path(p), e.kind) for p, e, _ in tree.walk(max_depth=3)]
    assert ("/d/d/d/d", "too-deep") in items and ("/y", "file") in items


def test_openat2_itself_refuses_symlinks_and_escapes(tmp_path):
    if not runfiles.has_openat2():
        pytest.skip("this kernel has no openat2")
    (tmp_path / "out" / "d").mkdir(parents=True)
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    root = os.open(tmp_path / "out", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(runfiles.openat2(root, b"d", runfiles.DIR_FLAGS))
        refused = {errno.ELOOP, errno.ENOTDIR}  # a symlink as the leaf: O_NOFOLLOW | O_DIRECTORY says ENOTDIR
        for path, codes in ((b"link", refused), (b"link/out", refused), (b"../out", {errno.EXDEV}),
                            (str(tmp_path).encode(), {errno.EXDEV})):
            with pytest.raises(OSError) as caught:
                runfiles.openat2(root, path, runfiles.DIR_FLAGS)
            assert caught.value.errno in codes, path
    finally:
        os.close(root)
