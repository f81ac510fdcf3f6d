"""``o2v prepare`` on damaged input and with --force: clear file:line errors, nothing destroyed."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.training.conftest import stsb_source
from training.atomic import remove_stale_temporaries
from training.cli import main
from training.data import readers
from training.data.errors import DataError
from training.data.labels import LabelSpec
from training.data.prepare import PrepareConfig, Source, prepare

LINE = 3000


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _stsb_with(stsb_slice: dict[str, Path], target: Path, line: int, replacement: bytes, rows: int = 0) -> Path:
    """The train slice (repeated to ``rows`` lines when asked) with ``line`` replaced byte for byte."""
    lines = _lines(stsb_slice["train"])
    while len(lines) < rows:
        lines += lines
    lines = lines[:rows] if rows else lines
    lines[line - 1] = replacement
    target.write_bytes(b"".join(lines))
    return target


def test_invalid_utf8_names_its_own_line_and_can_be_skipped(stsb_slice: dict[str, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # The reader decoded 8 KiB chunks: the error named the first line of the chunk (2995 for 3000).
    bad = _stsb_with(stsb_slice, tmp_path / "bad.csv", LINE,
                     b"main-captions\tMSRvid\t2012test\t0001\t2.0\tA pl\xffane.\tA jet.\n", rows=LINE + 10)
    with pytest.raises(DataError) as raised:
        prepare(stsb_source({"train": bad}), tmp_path / "out", PrepareConfig())
    assert raised.value.line == LINE and "not valid UTF-8" in str(raised.value)
    assert main(["prepare", "--train", str(bad), "--out", str(tmp_path / "skip"), "--quiet", "--skip-bad-rows"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped_bad_rows"] == 1 and summary["records"]["train"] == LINE + 10 - 1


def _csv(path: Path, text: bytes) -> Path:
    path.write_bytes(text)
    return path


def _csv_source(path: Path) -> Source:
    columns = readers.ColumnMap.parse("in0=a,in1=b,label=score", header=True)
    return Source("csv", lambda file: readers.read_table(file, "csv", columns), {"train": [path]},
                  LabelSpec("regression"))


ROWS = b"".join(b'"a dog %d runs","a cat %d sits",%d.5\n' % (i, i, i % 5) for i in range(20))


def test_a_utf8_bom_before_the_csv_header_is_accepted(tmp_path: Path) -> None:
    path = _csv(tmp_path / "bom.csv", b"\xef\xbb\xbfa,b,score\n" + ROWS)
    manifest = prepare(_csv_source(path), tmp_path / "out", PrepareConfig())
    assert manifest["splits"]["train"]["records"] == 20


def test_invalid_utf8_inside_a_quoted_csv_field_names_the_line(tmp_path: Path) -> None:
    path = _csv(tmp_path / "bad.csv", b"a,b,score\n" + ROWS + b'"two\nlines \xff","x",1\n' + ROWS)
    with pytest.raises(DataError, match=r"bad\.csv:23: not valid UTF-8"):
        prepare(_csv_source(path), tmp_path / "out", PrepareConfig())
    manifest = prepare(_csv_source(path), tmp_path / "skip", PrepareConfig(skip_bad_rows=True))
    assert manifest["splits"]["train"]["skipped_bad_rows"] == 1 and manifest["splits"]["train"]["records"] == 40


def test_nul_bytes_are_a_bad_row_not_tokens(stsb_slice: dict[str, Path], tmp_path: Path) -> None:
    bad = _stsb_with(stsb_slice, tmp_path / "nul.csv", 5,
                     b"main-captions\tMSRvid\t2012test\t0001\t2.0\tA\x00plane.\tA jet.\n")
    with pytest.raises(DataError, match=r"nul\.csv:5: contains a NUL byte \(column 41\)"):
        prepare(stsb_source({"train": bad}), tmp_path / "out", PrepareConfig())
    prepare(stsb_source({"train": bad}), tmp_path / "skip", PrepareConfig(skip_bad_rows=True))
    vocab = json.loads((tmp_path / "skip" / "auxiliary" / "vocab.json").read_text(encoding="utf-8"))
    assert not [token for token in vocab if "\x00" in token]


def _gz(stsb_slice: dict[str, Path], path: Path) -> bytes:
    data = gzip.compress(stsb_slice["train"].read_bytes())
    path.write_bytes(data)
    return data


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda data: data[: len(data) // 2], "the gzip data ends early (truncated file)"),
    (lambda data: b"this is not gzip at all\n" * 50, "not valid gzip data"),
], ids=["truncated", "not gzip"])
def test_a_damaged_gz_is_a_clear_error_without_traceback(stsb_slice: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str], damage: object,
                                                         problem: str) -> None:
    path = tmp_path / "train.csv.gz"
    data = _gz(stsb_slice, path)
    path.write_bytes(damage(data))  # type: ignore[operator]
    assert main(["prepare", "--train", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"o2v prepare: error: {path}:" in err and problem in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def _jsonl_source(path: Path) -> Source:
    columns = readers.ColumnMap.parse("in0=a,in1=b,label=score", header=True)
    return Source("jsonl", lambda file: readers.read_table(file, "jsonl", columns), {"train": [path]},
                  LabelSpec("regression"))


GOOD_JSONL = "".join(json.dumps({"a": f"a dog {i} runs", "b": f"a cat {i}", "score": i % 5}) + "\n"
                     for i in range(10))


@pytest.mark.parametrize(("line", "problem"), [
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    ('{"a": "x y", "b": "z", "score": ' + "9" * 5000 + "}", "not usable JSON (Exceeds the limit (4300 digits)"),
    ('{"a": "x y", "b": "z", "score": ' + "9" * 400 + "}", "label 'score' is an integer of 400 digits"),
    ('{"a": "x y", "b": "z", "score": "' + "9" * 5000 + '"}', "label '99999999999999999999999999999999999999"),
], ids=["deep json", "5000-digit label", "400-digit label", "5000-digit string label"])
def test_json_lines_oddities_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(GOOD_JSONL + line + "\n" + GOOD_JSONL, encoding="utf-8")
    with pytest.raises(DataError) as raised:
        prepare(_jsonl_source(path), tmp_path / "out", PrepareConfig())
    assert str(raised.value).startswith(f"{path}:11: ") and problem in str(raised.value)
    assert len(str(raised.value)) < 300  # the thousands of digits are not repeated
    manifest = prepare(_jsonl_source(path), tmp_path / "skip", PrepareConfig(skip_bad_rows=True))
    assert manifest["splits"]["train"]["skipped_bad_rows"] == 1


def test_force_refuses_a_directory_that_holds_an_input(shared_data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "stsbenchmark"
    inputs.mkdir()
    for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        (inputs / name).write_bytes(b"".join(_lines(shared_data / "stsbenchmark" / name)[:200]))
    before = {path.name: path.read_bytes() for path in inputs.iterdir()}
    code = main(["prepare", "--format", "stsb", "--stsb-dir", str(inputs), "--out", str(inputs), "--force", "--quiet"])
    assert code == 2
    assert f"--force will not replace {inputs}: it holds the input" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in inputs.iterdir()} == before


def test_force_replaces_only_an_o2v_prepare_output(stsb_slice: dict[str, Path], tmp_path: Path) -> None:
    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    (unrelated / "holiday.jpg").write_bytes(b"\xff\xd8 not a dataset")
    with pytest.raises(FileExistsError, match=r"it has no manifest\.json of format o2v-dataset/1"):
        prepare(stsb_source(stsb_slice), unrelated, PrepareConfig(), overwrite=True)
    assert (unrelated / "holiday.jpg").read_bytes() == b"\xff\xd8 not a dataset"

    out = tmp_path / "dataset"
    prepare(stsb_source(stsb_slice), out, PrepareConfig())
    prepare(stsb_source(stsb_slice), out, PrepareConfig(max_seq_len=8), overwrite=True)  # ours: replaced
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["max_seq_len"] == 8
    (out / "notes.txt").write_text("my notes", encoding="utf-8")
    with pytest.raises(FileExistsError, match=r"notes\.txt is not a file `o2v prepare` wrote"):
        prepare(stsb_source(stsb_slice), out, PrepareConfig(), overwrite=True)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "my notes"


def test_stale_temporary_directories_are_removed_on_the_next_run(stsb_slice: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.tmp-pid{dead.pid}-abc123"
    legacy = tmp_path / ".out.tmp-k2j4h5g6"  # named by an older version, without a process id
    running = tmp_path / f".out.tmp-pid{os.getppid()}-zzz"  # a live writer: left alone
    for folder in (stale, legacy, running):
        (folder / "train").mkdir(parents=True)
    old = time.time() - 7200
    os.utime(legacy, (old, old))
    prepare(stsb_source(stsb_slice), tmp_path / "out", PrepareConfig())
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["out", running.name])
    assert remove_stale_temporaries(tmp_path / "out") == []


@pytest.mark.slow
def test_sigterm_removes_the_temporary_directory(shared_data: Path, tmp_path: Path, repo_root: Path) -> None:
    big = tmp_path / "big.csv"
    rows = _lines(shared_data / "stsbenchmark" / "sts-train.csv")
    big.write_bytes(b"".join(rows * 20))  # ~115,000 rows: seconds of work
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), str(repo_root / "lambdas")])}
    log = (tmp_path.parent / f"{tmp_path.name}-stderr.txt").open("w+", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "training.cli", "prepare", "--train", str(big), "--out",
                                str(tmp_path / "out")], cwd=repo_root, env=env, stderr=log, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.tmp-*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.tmp-*")), "prepare never created its temporary directory"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    log.seek(0)
    err = log.read()
    log.close()
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["big.csv"]
