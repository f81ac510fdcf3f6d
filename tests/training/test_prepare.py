"""o2v prepare on real STS-B / SNLI slices: record format, vocab, manifest, truncation, bad rows,
atomic output, streaming memory, checksums and the S3 layout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from o2v_core.hyperparameters import validate

from tests.training.conftest import STSB_EVAL_ROWS, STSB_TRAIN_ROWS, stsb_source
from training.cli import main
from training.data import readers, stsb
from training.data.errors import DataError
from training.data.labels import LabelSpec
from training.data.prepare import PrepareConfig, Source, prepare
from training.data.tokenizer import Tokenizer
from training.data.upload import upload_dataset
from training.data.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocab


def records(dataset: Path, split: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (dataset / split / f"{split}.jsonl").read_text().splitlines()]


def stsb_rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_records_are_object2vec_jsonlines(stsb_dataset: Path, stsb_slice: dict[str, Path]) -> None:
    vocab = json.loads((stsb_dataset / "auxiliary" / "vocab.json").read_text())
    train = records(stsb_dataset, "train")
    assert len(train) == STSB_TRAIN_ROWS + 5
    assert len(records(stsb_dataset, "validation")) == len(records(stsb_dataset, "test")) == STSB_EVAL_ROWS
    for record in train:
        assert set(record) == {"label", "in0", "in1"}
        assert isinstance(record["label"], float) and 0.0 <= record["label"] <= 5.0
        for side in ("in0", "in1"):
            ids = record[side]
            assert isinstance(ids, list) and ids and all(isinstance(i, int) and 0 <= i < len(vocab) for i in ids)
    # Same order and labels as the source rows, including the rows with extra fields.
    rows = stsb_rows(stsb_slice["train"])
    assert [record["label"] for record in train] == [float(row[4]) for row in rows]
    assert sum(len(row) == 9 for row in rows) == 3


def test_unbalanced_quotes_are_plain_text(stsb_dataset: Path, stsb_slice: dict[str, Path]) -> None:
    vocab = Vocab.load(stsb_dataset / "auxiliary" / "vocab.json")
    rows = stsb_rows(stsb_slice["train"])
    quoted = [i for i, row in enumerate(rows) if row[5].count('"') % 2 == 1 or row[6].count('"') % 2 == 1]
    assert quoted, "the slice should hold sentences with unbalanced quotes"
    train = records(stsb_dataset, "train")
    tokenizer = Tokenizer()
    for index in quoted:
        assert train[index]["in0"] == vocab.encode(tokenizer.tokenize(rows[index][5]))[:24]


def test_tokenizer_is_documented_and_deterministic() -> None:
    tokenizer = Tokenizer()
    assert tokenizer.tokenize("Don't panic -- it's 3.5°C!") == \
        ["don", "'", "t", "panic", "-", "-", "it", "'", "s", "3", ".", "5", "°", "c", "!"]
    assert tokenizer.tokenize("\uff21\uff22\uff23 café") == ["abc", "café"]  # NFKC folds full-width letters
    assert Tokenizer(lowercase=False).tokenize("A Plane") == ["A", "Plane"]
    assert Tokenizer.from_json(tokenizer.to_json()) == tokenizer
    with pytest.raises(ValueError, match="unknown tokenizer settings"):
        Tokenizer.from_json({"lowercase": True, "stem": True})


def test_vocab_reserved_ids_cap_and_min_count(stsb_slice: dict[str, Path], tmp_path: Path) -> None:
    counts: Counter[str] = Counter()
    tokenizer = Tokenizer()
    for row in stsb_rows(stsb_slice["train"]):
        counts.update(tokenizer.tokenize(row[5]) + tokenizer.tokenize(row[6]))
    out = tmp_path / "capped"
    manifest = prepare(stsb_source(stsb_slice), out, PrepareConfig(vocab_max_size=50, min_count=3))
    vocab = json.loads((out / "auxiliary" / "vocab.json").read_text())
    assert vocab[PAD] == PAD_ID == 0 and vocab[UNK] == UNK_ID == 1
    assert len(vocab) == manifest["vocab_size"] == 50
    expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:48]
    assert [token for token, _ in expected] == list(vocab)[2:]
    assert all(counts[token] >= 3 for token in list(vocab)[2:])
    # Tokens outside the vocabulary become <unk>, so every id is below the cap.
    assert all(max(r["in0"] + r["in1"]) < 50 for r in records(out, "train"))  # type: ignore[operator]
    rare = out / "rare"
    prepare(stsb_source(stsb_slice), rare, PrepareConfig(min_count=100_000))
    assert json.loads((rare / "auxiliary" / "vocab.json").read_text()) == {PAD: 0, UNK: 1}


def test_manifest_has_the_numbers_the_hyperparameters_need(stsb_dataset: Path) -> None:
    manifest = json.loads((stsb_dataset / "manifest.json").read_text())
    vocab = json.loads((stsb_dataset / "auxiliary" / "vocab.json").read_text())
    longest = {side: max(len(r[side]) for split in ("train", "validation", "test")  # type: ignore[arg-type]
                         for r in records(stsb_dataset, split)) for side in ("in0", "in1")}
    hyperparameters = manifest["hyperparameters"]
    assert hyperparameters == {
        "enc0_max_seq_len": longest["in0"], "enc0_vocab_size": len(vocab),
        "enc1_max_seq_len": longest["in1"], "enc1_vocab_size": len(vocab),
        "output_layer": "mean_squared_error",
    }
    validate(hyperparameters)  # exactly what the required hyperparameters need
    assert manifest["label"] == {"kind": "regression"}
    assert manifest["max_seq_len"] == 24 and manifest["vocab_size"] == len(vocab)
    assert {name: split["records"] for name, split in manifest["splits"].items()} == \
        {"train": STSB_TRAIN_ROWS + 5, "validation": STSB_EVAL_ROWS, "test": STSB_EVAL_ROWS}
    assert json.loads((stsb_dataset / "auxiliary" / "tokenizer.json").read_text()) == manifest["tokenizer"]
    assert set(manifest["files"]) == {"train/train.jsonl", "validation/validation.jsonl", "test/test.jsonl",
                                      "auxiliary/vocab.json", "auxiliary/tokenizer.json"}


def test_truncation_to_max_seq_len(stsb_slice: dict[str, Path], tmp_path: Path) -> None:
    tokenizer = Tokenizer()
    rows = stsb_rows(stsb_slice["train"])
    long0 = sum(len(tokenizer.tokenize(row[5])) > 6 for row in rows)
    manifest = prepare(stsb_source(stsb_slice), tmp_path / "short", PrepareConfig(max_seq_len=6))
    train = records(tmp_path / "short", "train")
    assert all(len(r["in0"]) <= 6 and len(r["in1"]) <= 6 for r in train)  # type: ignore[arg-type]
    assert manifest["splits"]["train"]["truncated_in0"] == long0 > 0
    assert manifest["hyperparameters"]["enc0_max_seq_len"] == 6
    full = tokenizer.tokenize(rows[0][5])
    vocab = Vocab.load(tmp_path / "short" / "auxiliary" / "vocab.json")
    assert train[0]["in0"] == vocab.encode(full)[:6]  # the first tokens are kept


def _with_bad_row(source: Path, target: Path, line: int, replacement: str) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = replacement
    target.write_text("".join(lines), encoding="utf-8")
    return target


@pytest.mark.parametrize(("replacement", "problem"), [
    ("main-captions\tMSRvid\t2012test\t0001\tfive\tA plane.\tA jet.\n", "score 'five' is not a number (field 5)"),
    ("main-captions\tMSRvid\t2012test\t0001\t7.5\tA plane.\tA jet.\n", "score 7.5 is outside [0, 5]"),
    ("main-captions\tMSRvid\t2012test\n", "expected at least 7 tab-separated fields, found 3"),
])
def test_bad_row_names_file_line_and_problem(
    stsb_slice: dict[str, Path], tmp_path: Path, replacement: str, problem: str
) -> None:
    bad = _with_bad_row(stsb_slice["train"], tmp_path / "bad.csv", 3, replacement)
    splits = {**stsb_slice, "train": bad}
    with pytest.raises(DataError) as raised:
        prepare(stsb_source(splits), tmp_path / "out", PrepareConfig())
    assert raised.value.path == str(bad) and raised.value.line == 3
    assert str(raised.value) == f"{bad}:3: {problem}"


def test_punctuation_only_sentence_is_kept(stsb_slice: dict[str, Path], tmp_path: Path) -> None:
    bad = _with_bad_row(stsb_slice["train"], tmp_path / "odd.csv", 3,
                        "main-captions\tMSRvid\t2012test\t0001\t2.0\t...\tA jet.\n")
    manifest = prepare(stsb_source({**stsb_slice, "train": bad}), tmp_path / "out", PrepareConfig())
    assert manifest["splits"]["train"]["records"] == STSB_TRAIN_ROWS + 5


def test_empty_sentence_is_a_bad_row(stsb_slice: dict[str, Path], tmp_path: Path) -> None:
    bad = _with_bad_row(stsb_slice["train"], tmp_path / "empty.csv", 4,
                        "main-captions\tMSRvid\t2012test\t0001\t2.0\t   \tA jet.\n")
    with pytest.raises(DataError, match=r"empty\.csv:4: sentence 1 has no tokens"):
        prepare(stsb_source({**stsb_slice, "train": bad}), tmp_path / "out", PrepareConfig())


def test_bad_rows_skipped_and_counted_when_asked(stsb_slice: dict[str, Path], tmp_path: Path) -> None:
    bad = _with_bad_row(stsb_slice["train"], tmp_path / "bad.csv", 3,
                        "main-captions\tMSRvid\t2012test\t0001\tfive\tA plane.\tA jet.\n")
    bad = _with_bad_row(bad, bad, 10, "only\ttwo\n")
    manifest = prepare(stsb_source({**stsb_slice, "train": bad}), tmp_path / "out", PrepareConfig(skip_bad_rows=True))
    train = manifest["splits"]["train"]
    assert train["skipped_bad_rows"] == 2
    assert train["records"] == STSB_TRAIN_ROWS + 5 - 2
    assert [error.split(": ", 1)[0] for error in train["errors"]] == [f"{bad}:3", f"{bad}:10"]
    assert len(records(tmp_path / "out", "train")) == train["records"]


def test_output_is_atomic(stsb_slice: dict[str, Path], tmp_path: Path) -> None:
    # The bad row sits in the test split, written last: train and validation were already written.
    bad = _with_bad_row(stsb_slice["test"], tmp_path / "bad-test.csv", STSB_EVAL_ROWS, "broken\n")
    parent = tmp_path / "datasets"
    parent.mkdir()
    with pytest.raises(DataError, match=r"bad-test\.csv"):
        prepare(stsb_source({**stsb_slice, "test": bad}), parent / "stsb", PrepareConfig())
    assert list(parent.iterdir()) == []  # nothing half-written, no temporary left behind
    # An existing dataset is never replaced by a failed run, even with overwrite.
    prepare(stsb_source(stsb_slice), parent / "stsb", PrepareConfig())
    before = {path: path.read_bytes() for path in (parent / "stsb").rglob("*") if path.is_file()}
    with pytest.raises(DataError):
        prepare(stsb_source({**stsb_slice, "test": bad}), parent / "stsb", PrepareConfig(), overwrite=True)
    assert {path: path.read_bytes() for path in (parent / "stsb").rglob("*") if path.is_file()} == before
    assert [path.name for path in parent.iterdir()] == ["stsb"]
    with pytest.raises(FileExistsError, match="--force"):
        prepare(stsb_source(stsb_slice), parent / "stsb", PrepareConfig())


# VmHWM is the peak resident memory of this process image (ru_maxrss would include the forking
# parent's pages: it survives exec).
PEAK_RSS = """
import sys
from pathlib import Path
from training.data import readers
from training.data.labels import LabelSpec
from training.data.prepare import PrepareConfig, Source, prepare
source, out = Path(sys.argv[1]), Path(sys.argv[2])
prepare(Source("big", readers.read_stsb, {"train": [source]}, LabelSpec("regression")), out, PrepareConfig())
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def test_memory_stays_flat_as_input_grows(shared_data: Path, tmp_path: Path, repo_root: Path) -> None:
    """Peak memory does not grow with the number of rows: the data is streamed, never held."""
    rows = (shared_data / "stsbenchmark" / "sts-train.csv").read_text(encoding="utf-8")

    def peak_kib(copies: int) -> int:
        source = tmp_path / f"train-{copies}.csv"
        source.write_text(rows * copies, encoding="utf-8")
        done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(source), str(tmp_path / f"out-{copies}")],
                              capture_output=True, text=True, check=True, cwd=repo_root)
        return int(done.stdout.strip())

    small, large = peak_kib(1), peak_kib(10)  # 0.9 MB vs 9 MB of rows (57,490 pairs)
    # Holding 8 MB more rows as Python objects would add well over 40 MB; allow 8 MB of noise.
    assert large - small < 8 * 1024, (small, large)


def test_nli_three_classes_and_unlabeled_rows(snli_dataset: Path) -> None:
    manifest = json.loads((snli_dataset / "manifest.json").read_text())
    assert manifest["label"] == {"kind": "classification", "classes": list(readers.NLI_LABELS), "num_classes": 3}
    assert manifest["hyperparameters"]["output_layer"] == "softmax"
    assert manifest["hyperparameters"]["num_classes"] == 3
    train = manifest["splits"]["train"]
    labels = Counter(record["label"] for record in records(snli_dataset, "train"))
    assert set(labels) == {0, 1, 2}
    assert train["records"] + train["skipped_unlabeled"] == 400
    assert train["skipped_unlabeled"] >= 1  # SNLI's '-' gold labels are skipped and counted


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_generic_pairs_with_column_mapping(fmt: str, tmp_path: Path, stsb_slice: dict[str, Path]) -> None:
    rows = stsb_rows(stsb_slice["train"])[:60]
    path = tmp_path / f"pairs.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"q": r[5], "a": r[6], "y": "same" if float(r[4]) >= 2.5 else "diff",
                                            "extra": 1}) + "\n" for r in rows))
    else:
        import csv

        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t" if fmt == "tsv" else ",",
                                quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL, escapechar=None,
                                quotechar='"' if fmt == "csv" else "\x00")
            writer.writerow(["id", "q", "a", "y"])
            for number, r in enumerate(rows):
                writer.writerow([number, r[5], r[6], "same" if float(r[4]) >= 2.5 else "diff"])
    columns = readers.ColumnMap.parse("in0=q,in1=a,label=y", header=True)
    manifest = prepare(
        Source(fmt, lambda p: readers.read_table(p, fmt, columns), {"train": [path]},  # type: ignore[arg-type]
               LabelSpec("classification")),
        tmp_path / "out", PrepareConfig(validation_fraction=0.25),
    )
    assert manifest["label"]["classes"] == ["diff", "same"]
    total = manifest["splits"]["train"]["records"] + manifest["splits"]["validation"]["records"]
    assert total == 60 and manifest["splits"]["validation"]["records"] > 0
    tokenizer = Tokenizer()
    vocab = Vocab.load(tmp_path / "out" / "auxiliary" / "vocab.json")
    first = records(tmp_path / "out", "train")[0]
    assert first["in0"] in [vocab.encode(tokenizer.tokenize(r[5]))[:40] for r in rows]


def test_column_mapping_errors_name_the_column(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("s1\ts2\tscore\nA cat.\tA dog.\t1\n")
    columns = readers.ColumnMap.parse("in0=s1,in1=s2,label=label", header=True)
    with pytest.raises(DataError, match=r"pairs\.tsv:1: header has no column 'label' \(for label\)"):
        list(readers.read_table(path, "tsv", columns))
    with pytest.raises(ValueError, match="missing in1"):
        readers.ColumnMap.parse("in0=a,label=b", header=True)
    with pytest.raises(ValueError, match="0-based index"):
        readers.ColumnMap.parse("in0=a,in1=1,label=2", header=False)


def test_stsb_checksums(shared_data: Path, tmp_path: Path) -> None:
    stsb.verify(shared_data / "stsbenchmark")  # the shared copy is the official release
    copy = tmp_path / "copy"
    shutil.copytree(shared_data / "stsbenchmark", copy)
    (copy / "sts-dev.csv").chmod(0o644)
    with (copy / "sts-dev.csv").open("a") as handle:
        handle.write("x")
    with pytest.raises(stsb.ChecksumError, match=r"sts-dev\.csv: sha256"):
        stsb.verify(copy)


def _archive(directory: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv", "readme.txt"):
            tar.add(directory / name, arcname=f"stsbenchmark/{name}")
    return target


def test_stsb_download_verifies_the_archive(shared_data: Path, tmp_path: Path) -> None:
    archive = _archive(shared_data / "stsbenchmark", tmp_path / "Stsbenchmark.tar.gz")
    cache = tmp_path / "cache"
    folder = stsb.download(cache, url=archive.as_uri())
    assert folder == cache / "stsbenchmark"
    assert sorted(path.name for path in folder.iterdir()) == ["sts-dev.csv", "sts-test.csv", "sts-train.csv"]
    stsb.verify(folder)
    # A tampered archive is refused and leaves nothing behind.
    tampered_dir = tmp_path / "tampered"
    shutil.copytree(shared_data / "stsbenchmark", tampered_dir)
    (tampered_dir / "sts-test.csv").chmod(0o644)
    (tampered_dir / "sts-test.csv").write_text("genre\tfile\t2012\t1\t1.0\ta\tb\n")
    bad_archive = _archive(tampered_dir, tmp_path / "bad.tar.gz")
    other_cache = tmp_path / "other-cache"
    with pytest.raises(stsb.ChecksumError, match=r"sts-test\.csv"):
        stsb.download(other_cache, url=bad_archive.as_uri())
    assert not (other_cache / "stsbenchmark").exists()


def test_cli_prepare_and_error_message(stsb_slice: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = main(["prepare", "--format", "stsb", "--train", str(stsb_slice["train"]), "--validation",
                 str(stsb_slice["validation"]), "--max-seq-len", "30", "--out", str(out), "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == {"train": STSB_TRAIN_ROWS + 5, "validation": STSB_EVAL_ROWS}
    bad = _with_bad_row(stsb_slice["train"], tmp_path / "bad.csv", 7, "x\ty\n")
    code = main(["prepare", "--train", str(bad), "--out", str(tmp_path / "never"), "--quiet"])
    assert code == 2
    assert f"{bad}:7: expected at least 7 tab-separated fields, found 2" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    assert main(["prepare", "--train", str(bad), "--out", str(tmp_path / "skip"), "--quiet", "--skip-bad-rows"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped_bad_rows"] == 1


@mock_aws
def test_upload_layout(stsb_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="o2v-datasets")
    written = upload_dataset(s3, stsb_dataset, "o2v-datasets", "stsb")
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="o2v-datasets")["Contents"])
    assert keys == [
        "datasets/stsb/auxiliary/tokenizer.json",
        "datasets/stsb/auxiliary/vocab.json",
        "datasets/stsb/manifest.json",
        "datasets/stsb/test/test.jsonl",
        "datasets/stsb/train/train.jsonl",
        "datasets/stsb/validation/validation.jsonl",
    ]
    assert written[-1] == "s3://o2v-datasets/datasets/stsb/manifest.json"  # the manifest goes last
    body = s3.get_object(Bucket="o2v-datasets", Key="datasets/stsb/train/train.jsonl")["Body"].read()
    assert body == (stsb_dataset / "train" / "train.jsonl").read_bytes()
    with pytest.raises(ValueError, match="dataset name"):
        upload_dataset(s3, stsb_dataset, "o2v-datasets", "Bad Name")
