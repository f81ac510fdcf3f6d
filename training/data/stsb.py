"""The STS Benchmark: where its files are, how to fetch them, how to check them.

The official 2017 release is downloaded from its home at the University of the Basque
Country (``STSB_URL``); the archive's CSVs are checked against the SHA-256 sums below before
they are used, so a changed or truncated download is refused rather than silently trained on.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from training.atomic import atomic_directory

STSB_URL = "https://ixa2.si.ehu.eus/stswiki/images/4/48/Stsbenchmark.tar.gz"
# split -> (file name, sha256) of the official release.
STSB_FILES: dict[str, tuple[str, str]] = {
    "train": ("sts-train.csv", "0f71910b59aa1ad973c5897f0791f3b0965a92b8f82b1a95f3eea9f4162fda82"),
    "validation": ("sts-dev.csv", "5d7e944d8b02734b07bfdb5df67db3420c64bed153fcaa1ba47ad03480cf4234"),
    "test": ("sts-test.csv", "affe45928a66ee5a708531233c95b7dacbbdc57f974f002a3d32ea0180cf816a"),
}


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the official release."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_files(directory: Path) -> dict[str, list[Path]]:
    """The three split files in an STS-B directory; raises naming any that is missing."""
    splits = {split: [directory / name] for split, (name, _) in STSB_FILES.items()}
    missing = [str(paths[0]) for paths in splits.values() if not paths[0].is_file()]
    if missing:
        raise FileNotFoundError(f"STS-B file(s) not found: {', '.join(missing)}")
    return splits


def verify(directory: Path) -> None:
    """Check every split file against the official SHA-256; raises :class:`ChecksumError`."""
    for path_list, (_, expected) in zip(split_files(directory).values(), STSB_FILES.values(), strict=True):
        actual = sha256_file(path_list[0])
        if actual != expected:
            raise ChecksumError(f"{path_list[0]}: sha256 {actual} differs from the official release's {expected}")


def download(cache_dir: Path, *, url: str = STSB_URL, timeout: float = 60.0) -> Path:
    """Fetch and unpack the release into ``cache_dir/stsbenchmark`` (once), verify it, return it."""
    target = cache_dir / "stsbenchmark"
    if target.is_dir():
        verify(target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        archive = Path(scratch) / "Stsbenchmark.tar.gz"
        with urllib.request.urlopen(url, timeout=timeout) as response, archive.open("wb") as out:
            shutil.copyfileobj(response, out)
        with atomic_directory(target) as staging:
            wanted = {name for name, _ in STSB_FILES.values()}
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar.getmembers():
                    name = Path(member.name).name
                    if member.isfile() and name in wanted:
                        source = tar.extractfile(member)
                        if source is None:
                            continue
                        with source, (staging / name).open("wb") as out:
                            shutil.copyfileobj(source, out)
            verify(staging)
    return target
