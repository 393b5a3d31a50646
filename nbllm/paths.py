"""Files a user names: where nbllm may write, and reading text they point at.

Every writer (--save, %lora --save, %rag index --persist, leaderboard --csv/--markdown) checks
its destination here before it computes anything, so a bad path costs nothing and the message
names the flag; every text reader turns the OS's and codecs' errors into one DataError line.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, DataError

NAME_LIMIT = 200  # bytes: file systems take 255, and atomic saves add a prefix to the name
GZIP_MAGIC = b"\x1f\x8b"


def check_destination(target, flag: str, kind: str = "folder") -> Path:
    """Refuse a destination that cannot be written: a name too long, a folder where a file goes
    (or the reverse), a path under a regular file, a folder nobody may write in. Missing parent
    folders are fine (they are created on writing)."""
    path = Path(str(target)).expanduser()
    if len(path.name.encode()) > NAME_LIMIT:
        raise ConfigError(
            f"{flag} name is {len(path.name.encode())} bytes, too long for the file system "
            f"(about 255 at most); pick a shorter name"
        )
    if kind == "folder" and path.exists() and not path.is_dir():
        raise ConfigError(
            f"{flag} '{target}' is an existing file, and this writes a folder: give a new folder name "
            "(your file stays as it is)"
        )
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{flag} '{target}' is a folder; give a file name, e.g. '{path / 'results'}{path.suffix}'")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} '{target}' lies under '{parent}', which is a file; give a path in a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{flag} '{target}': cannot write in '{parent}' (permission denied); pick a folder you can write to"
        )
    return path


def read_text(path, what: str = "file") -> str:
    """The UTF-8 text of `path`, or one DataError naming why not (a folder, gzip data, another encoding)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} '{path}' is a folder; give a file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {what} '{path}': {err.strerror or err}") from None
    if raw[:2] == GZIP_MAGIC:
        raise DataError(
            f"'{path}' holds gzip-compressed data, not text; decompress it first (gunzip -c FILE > NEW_FILE)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"'{path}' is not UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start}); re-save it "
            "as UTF-8, e.g. iconv -f latin1 -t utf-8 FILE > NEW_FILE"
        ) from None
