"""Reading the CIFAR-10 binary archive straight from its compressed tar stream.

Nothing is extracted and nothing is unpickled: the expected members are read into memory,
every other member is skipped unread whatever its path (``../evil`` included).
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from pathlib import Path

import numpy as np

from svmtrain.data.format import (
    IMAGE_BYTES,
    META_MEMBER,
    NUM_CLASSES,
    RECORD_BYTES,
    TEST_MEMBER,
    TRAIN_MEMBERS,
)
from svmtrain.data.source import ENV_URL
from svmtrain.errors import ArchiveError

_DRAIN_BYTES = 1 << 16  # read size when running to the gzip trailer


def bad_archive(archive: Path, what: str) -> ArchiveError:
    """The error for an archive that cannot be used: what is wrong and how to get a good one."""
    return ArchiveError(
        f"The archive {archive} is unusable: {what}. Delete it (rm {archive}) and run "
        f"`svmtrain data download` again; if that does not help, the source (--url or "
        f"{ENV_URL}) is not the CIFAR-10 binary version."
    )


def parse_archive(archive: Path) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Records (N, 3073) uint8 per expected .bin member, and the class names.

    Raises ArchiveError for a corrupt or truncated archive, a missing, repeated or odd-sized
    member, a label outside 0..9 or a class list that is not 10 names long."""
    wanted = (*TRAIN_MEMBERS, TEST_MEMBER, META_MEMBER)
    data: dict[str, bytes] = {}
    where, last = "its first member", None
    try:
        with gzip.open(archive, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
            for member in tar:
                name = last = member.name.removeprefix("./")
                if name not in wanted:
                    continue
                where = name
                if name in data or not member.isfile():
                    raise bad_archive(archive, f"{name} is repeated or not a regular file")
                if name != META_MEMBER and (member.size == 0 or member.size % RECORD_BYTES):
                    raise bad_archive(
                        archive,
                        f"{name} has {member.size:,} bytes, not a whole number of "
                        f"{RECORD_BYTES:,}-byte records (1 label byte + {IMAGE_BYTES:,} pixels)",
                    )
                data[name] = tar.extractfile(member).read()
                where = f"the member after {name}"
            where = "the end of the archive"
            # The stream reader ends at the first block that is not a header, so the rest must
            # be the end-of-archive blocks, all zeros; read to the gzip trailer (CRC, length).
            while block := tar.fileobj.read(_DRAIN_BYTES):
                if block.count(0) != len(block):
                    raise bad_archive(
                        archive,
                        f"it is damaged after {last}: the data there is not a tar header, so "
                        f"the size recorded for {last} is wrong or the archive is corrupt",
                    )
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise bad_archive(archive, f"it is corrupt or truncated ({err}) at {where}") from None
    missing = [name for name in wanted if name not in data]
    if missing:
        raise bad_archive(archive, f"it lacks {', '.join(missing)}")
    records = {name: _records(archive, name, data[name]) for name in (*TRAIN_MEMBERS, TEST_MEMBER)}
    return records, _class_names(archive, data[META_MEMBER])


def _records(archive: Path, name: str, raw: bytes) -> np.ndarray:
    """(N, 3073) uint8 view of one .bin member whose size is a whole number of records."""
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    bad = np.flatnonzero(records[:, 0] >= NUM_CLASSES)
    if bad.size:
        raise bad_archive(
            archive,
            f"{name} record {bad[0]} has label {records[bad[0], 0]}; "
            f"labels are 0 to {NUM_CLASSES - 1}",
        )
    return records


def _class_names(archive: Path, raw: bytes) -> tuple[str, ...]:
    lines = raw.decode("utf-8", "replace").splitlines()
    names = tuple(name for line in lines if (name := line.strip()))  # the file ends in blanks
    if len(names) != NUM_CLASSES:
        raise bad_archive(
            archive, f"{META_MEMBER} lists {len(names)} class names, not {NUM_CLASSES}"
        )
    return names
