"""One table of bad inputs across commands and routes: each gets one clear line (CLI: `error: ...` naming the
file/field/line, exit code 2; HTTP: the right 4xx with a JSON error body), never a traceback, and leaves any
output folder as it was. A BOM and CRLF line endings are not errors (MRPC ships with a BOM).

CLI rows run the real entry point in-process (`cli.main`), which keeps the table fast.
"""

import json
import logging
import shutil
import sys

import httpx
import pytest

from modernbert_glue import cli

from .conftest import MODERNBERT, SHARED, TINY_ARGS, run_cli
from .inference.conftest import start

TRAIN = ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--epochs", "1", "--batch-size", "16",
         "--max-train-samples", "16", "--max-eval-samples", "16"]


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """cli.main() in this process: (exit code, stdout, stderr)."""
    root = logging.getLogger()
    for handler in list(root.handlers):  # main() configures logging onto the stderr capsys gives this call
        root.removeHandler(handler)
    capsys.readouterr()
    old = sys.argv
    sys.argv = ["modernbert-glue", *map(str, argv)]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(small_sst2, tiny_run, tmp_path_factory):
    """Bad (and two good) data files and model folders, made once."""
    d = tmp_path_factory.mktemp("bad")
    good = (small_sst2 / "train.tsv").read_text().splitlines()

    def tsv(name: str, lines: list[str], raw: bytes | None = None):
        path = d / name
        path.write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode())
        return path

    f = {
        "empty": tsv("empty.tsv", [], b""),
        "binary": tsv("binary.tsv", [], bytes(range(256)) * 4),
        "latin1": tsv("latin1.tsv", [], "sentence\tlabel\ncaf\xe9 society\t1\n".encode("latin-1")),
        "huge": tsv("huge.tsv", ["sentence\tlabel", "x" * 1_000_000 + "\t1"]),
        "nan": tsv("nan.jsonl", ['{"sentence": "fine", "label": NaN}']),
        "no_label_2": tsv("no_label_2.jsonl", ['{"sentence": "fine", "label": 1}', '{"sentence": "also fine"}']),
        "blank_label": tsv("blank.tsv", ["sentence\tlabel", "fine\t"]),
        "label_2": tsv("two.tsv", ["sentence\tlabel", "fine\t1", "odd\t2"]),
        "dup_header": tsv("dup.tsv", ["sentence\tsentence\tlabel", "a\tb\t1"]),
        "no_header": tsv("noheader.tsv", good[1:4]),
        "wrong_columns": tsv("cols.tsv", ["text\tlabel", "fine\t1"]),
        "field_count": tsv("fields.tsv", ["sentence\tlabel", "fine\t1", "too\tmany\t1"]),
        "header_only": tsv("header.tsv", ["sentence\tlabel"]),
        "empty_sentence": tsv("blank_sentence.tsv", ["sentence\tlabel", "   \t1"]),
        "bad_json": tsv("bad.jsonl", ['{"sentence": "a", "label": 1}', '{"sentence": "b", "label":']),
        "bad_parquet": tsv("bad.parquet", [], b"PAR1 not really"),
        "xlsx": tsv("data.xlsx", ["a"]),
        "bom_crlf": tsv("bom.tsv", [], ("\ufeffsentence\tlabel\r\n" + "\r\n".join(good[1:9]) + "\r\n").encode()),
        "empty_lines": tsv("empty.txt", [], b""),
        "superscript": tsv("sup.jsonl", ['{"sentence": "fine", "label": "\u00b2"}']),
        "surrogate": tsv("surrogate.jsonl", ['{"sentence": "fine", "label": 1}', '{"sentence": "a \\ud800", "label": 1}']),
        "one_class": tsv("positive.tsv", ["sentence\tlabel", *[f"fine {i}\t1" for i in range(20)]]),
        "review": tsv("review.csv", ["review", "fine"]),
        "stars_train": tsv("stars.csv", ["text,stars", "good,2", "bad,1", "fine,2"]),
        "stars_dev": tsv("stars_dev.csv", ["text,stars", "good,2", "odd,0"]),
    }
    (d / "punct.tsv").write_text("sentence\tlabel\n?\t1\n!\t0\n:)\t1\n:(\t0\n")
    (d / "int_columns.toml").write_text("[data]\ntext_columns = [1]\n")
    (d / "multiline.csv").write_text('sentence,label\n"a line\nbreak",1\nfine,0\n')
    (d / "cr.tsv").write_bytes(b"sentence\tlabel\rgood\t1\rbad\t0\r")
    (d / "cr.txt").write_bytes(b"a fine film\rdull\r")
    model = d / "model"
    shutil.copytree(tiny_run / "model", model)
    broken = {}
    for name in ("truncated", "no_arch", "no_tokenizer", "newer", "no_weights"):
        broken[name] = d / name
        shutil.copytree(model, broken[name])
    weights = broken["truncated"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    config = json.loads((broken["no_arch"] / "config.json").read_text())
    for key in ("model_type", "architectures"):
        config.pop(key, None)
    (broken["no_arch"] / "config.json").write_text(json.dumps(config))
    (broken["no_weights"] / "model.safetensors").unlink()  # as an ONNX export folder: config, no torch weights
    for p in broken["no_tokenizer"].glob("tokenizer*"):
        p.unlink()
    (broken["newer"] / "inference.json").write_text(json.dumps({"version": 99, "max_length": 128}))
    shutil.copytree(model, d / "bad_pad")  # a config.json edited by hand: its padding id past the vocabulary
    config = json.loads((d / "bad_pad" / "config.json").read_text())
    (d / "bad_pad" / "config.json").write_text(json.dumps({**config, "pad_token_id": 99999}))
    shutil.copytree(model, d / "seeds-of-one" / "seed-1" / "model")  # a --seeds folder's seed 1 alone
    (d / "cut-overwrite").mkdir()  # an --overwrite killed after it removed run.json
    (d / "cut-overwrite" / ".modernbert-glue.json").write_text(
        '{"kind": "run", "complete": false, "replacing": true, "files": ["model"]}')
    (d / "seeds-done").mkdir()  # a finished --seeds folder of seeds 1 and 2
    (d / "seeds-done" / ".modernbert-glue.json").write_text('{"kind": "seeds", "complete": true, "files": []}')
    (d / "seeds-done" / "run.json").write_text('{"seeds": [1, 2]}')
    (d / "bom.toml").write_text("\ufeff[train]\nepochs = 0\n", encoding="utf-8")  # an editor's BOM: read as TOML
    (d / "a-sweep").mkdir()
    (d / "a-sweep" / ".modernbert-glue.json").write_text('{"kind": "sweep", "complete": true, "files": []}')
    mine = d / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    return {**f, **broken, "model": model, "mine": mine, "dir": d, "sst2": small_sst2}


# (argv with {placeholders}, expected exit code, a substring of the last stderr line)
CLI_ROWS = [
    (["{train}", "--train-file", "/nonexistent/train.tsv"], 2, "/nonexistent/train.tsv: file not found"),
    (["{train}", "--train-file", "{empty}"], 2, "empty.tsv: empty file"),
    (["{train}", "--train-file", "{dir}"], 2, ": a folder, not a file"),
    (["{train}", "--train-file", "{binary}"], 2, "binary.tsv, line 2: not valid UTF-8"),
    (["{train}", "--train-file", "{latin1}"], 2, "latin1.tsv, line 2: not valid UTF-8"),
    (["{train}", "--train-file", "{huge}"], 2, "huge.tsv, line 2: 'sentence' has 1,000,000 characters"),
    (["{train}", "--train-file", "{nan}"], 2, "nan.jsonl, line 1: label nan is not one of 0, 1, negative, positive"),
    (["{train}", "--train-file", "{no_label_2}"], 2,
     "no_label_2.jsonl, line 2: no 'label' field (the first row has it)"),  # said "label None is not one of"
    (["{train}", "--train-file", "{blank_label}"], 2, "blank.tsv, line 2: label '' is not one of 0, 1, negative, positive"),
    (["{train}", "--train-file", "{label_2}"], 2, "two.tsv, line 3: label '2' is not one of 0, 1, negative, positive"),
    (["{train}", "--train-file", "{dup_header}"], 2, "dup.tsv, line 1: column 'sentence' appears more than once"),
    (["{train}", "--train-file", "{no_header}"], 2, "noheader.tsv: missing column 'sentence'"),
    (["{train}", "--train-file", "{wrong_columns}"], 2, "cols.tsv: missing column 'sentence' (sst2 classifies single sentences: expected sentence; found: text, label); name yours with --text-columns"),
    (["{train}", "--train-file", "{field_count}"], 2, "fields.tsv, line 3: expected 2 fields"),
    (["{train}", "--train-file", "{header_only}"], 2, "header.tsv: no rows"),
    (["{train}", "--train-file", "{empty_sentence}"], 2, "blank_sentence.tsv, line 2: empty 'sentence'"),
    (["{train}", "--train-file", "{bad_json}"], 2, "bad.jsonl, line 2: not valid JSON"),
    (["{train}", "--train-file", "{bad_parquet}"], 2, "bad.parquet: cannot read as parquet"),
    (["{train}", "--train-file", "{xlsx}"], 2, "data.xlsx: unsupported file type '.xlsx'"),
    (["{train}", "--lr", "-1"], 2, "'train.lr' must be more than 0, got -1.0"),
    (["{train}", "--epochs", "0"], 2, "'train.epochs' must be more than 0, got 0.0"),
    (["{train}", "--epochs", "nan"], 2, "'train.epochs' must be a finite number, got nan"),
    (["{train}", "--batch-size", "0"], 2, "'train.batch_size' must be at least 1 and at most 1048576, got 0"),
    (["{train}", "--max-train-samples", "-5"], 2, "'data.max_train_samples' must be at least 1, got -5"),
    (["{train}", "--set", "train.warmup_ratio=1.5"], 2, "'train.warmup_ratio' must be at least 0 and less than 1"),
    (["{train}", "--set", "train.nope=1"], 2, "unknown config key 'train.nope'"),
    (["{train}", "--preset", "nosuch"], 2, "unknown preset 'nosuch'"),
    (["train", "--model", "./no-such-model", "--data-dir", "{sst2}", "-o", "{dir}/o"], 2, "./no-such-model: model folder not found"),
    (["train", "--model", "runs/no/model", "--data-dir", "{sst2}", "-o", "{dir}/o"], 2,
     "runs/no/model: model folder not found"),  # two slashes: not a Hub id (it said the Hub was not reachable)
    (["baseline", "sbert-frozen", "--encoder", "nobody/no-such-encoder", "--data-dir", "{sst2}", "-o", "{out}"], 2,
     "pass a local folder to --encoder"),  # it named --model, which baseline does not have
    (["{train}", "--set", "data.task=nosuch"], 2, "unknown task 'nosuch'"),
    (["{train}", "--input-path", "fast"], 2, "train.input_path must be one of auto, padded, dynamic, grouped"),
    (["{train}", "--seeds", "1,1"], 2, "--seeds needs distinct seeds"),
    (["{train}", "--seed", "-1"], 2, "'train.seed' must be at least 0 and at most 4294967295, got -1"),
    (["{train}", "--set", "train.seed=4294967296"], 2, "'train.seed' must be at least 0"),
    (["{train}", "--seeds=-1,2"], 2, "--seeds must be between 0 and 4294967295, got -1, 2"),
    (["baseline", "tfidf", "--data-dir", "{sst2}", "--seed", "-1", "-o", "{out}"], 2, "--seed must be between 0 and"),
    (["{train}", "--seeds", "1,2", "--train-file", "/nonexistent/train.tsv"], 2, "/nonexistent/train.tsv: file not found"),
    (["{train}", "--epochs", "abc"], 2, "Invalid value for '--epochs'"),
    (["{train}", "--train-file", "{superscript}"], 2, "sup.jsonl, line 1: label '²' is not one of 0, 1, negative"),
    (["{train}", "--train-file", "{surrogate}"], 2, "surrogate.jsonl, line 2: 'sentence' is not valid Unicode"),
    (["{train}", "--set", "train.lr_scheduler=bogus"], 2, "train.lr_scheduler must be one of linear, cosine"),
    (["{train}", "--seeds", "1,2", "--set", "train.lr_scheduler=bogus"], 2, "train.lr_scheduler must be one of"),
    (["{train}", "--seeds", "1,2", "--seed", "5"], 2, "--seeds gives each run its seed: leave out --seed"),
    (["{train}", "--set", "data.max_length=2"], 2, "'data.max_length' must be at least 3, got 2"),  # pairs uncut
    (["{train}", "--seeds", "1,2", "--set", "train.seed=5", "--check"], 2, "--seeds gives each run its seed"),
    (["{train}", "--model-override", "hidden_size=abc"], 2, "model.overrides): invalid model config"),
    (["{train}", "--model-override", "hidden_size=65"], 2, "model.overrides): invalid model config"),
    (["baseline", "tfidf", "--data-dir", "{sst2}", "--train-file", "{one_class}", "-o", "{out}"], 2,
     "positive.tsv: every label is 'positive'; a classifier needs two or more"),
    # numbers as label names are names, not ids: with names 1 and 2, a 0 is no label (not the id of '1')
    (["baseline", "majority", "--task", "custom", "--text-columns", "text", "--label-column", "stars",
      "--train-file", "{stars_train}", "--validation-file", "{stars_dev}", "-o", "{out}"], 2,
     "stars_dev.csv, line 3: label '0' is not one of 1, 2"),
    (["{train}", "--bogus"], 2, "No such option: --bogus"),
    (["predict", "--model", "{truncated}", "fine"], 2, "truncated: cannot load a classifier from it"),
    (["predict", "--model", "{no_arch}", "fine"], 2, "no_arch: cannot load a classifier from it"),
    (["predict", "--model", "{no_tokenizer}", "fine"], 2, "no_tokenizer': cannot load its tokenizer"),
    (["predict", "--model", "{newer}", "fine"], 2, "settings version 99 is newer than this modernbert-glue reads"),
    (["predict", "--model", "{dir}/nothing", "fine"], 2, "nothing: model folder not found"),
    (["predict", "--model", "{model}", "--backend", "tensorrt", "fine"], 2, "--backend must be torch or onnx"),
    (["predict", "--model", "{model}", "--batch-size", "0", "fine"], 2, "--batch-size must be at least 1, got 0"),
    (["predict", "--model", "{model}", "--bf16", "maybe", "fine"], 2, "--bf16 must be auto, fast, on or off"),
    (["predict", "--model", "{model}", "--input", "{empty_lines}"], 2, "empty.txt: no rows"),
    (["predict", "--model", "{model}", "--input", "{review}"], 2,
     "review.csv: no column(s) sentence (name yours with --text-columns); found: review"),
    (["predict", "--model", "{model}", "bad \udcff byte"], 2,  # refused with every argument (the API: "text argument 1")
     "'bad \\udcff byte': not valid UTF-8; give paths and texts in UTF-8"),
    (["predict", "--model", "{model}", "--input", "{empty}"], 2, "empty.tsv: empty file"),  # "found: " and nothing
    (["evaluate", "--model", "{model}", "--data-dir", str(SHARED / "data" / "rte")], 2,  # "pass --task rte": refused
     "model was trained on sst2: evaluate a model of task rte on it"),
    (["evaluate", "--model", "{model}", "--data-dir", "{sst2}", "--split", "develop"], 2, "unknown split 'develop' (use train, validation, test)"),
    (["serve", "--model", "{model}", "--port", "99999"], 2, "--port must be at most 65535, got 99999"),
    (["serve", "--model", "{model}", "--backend", "onnx"], 2, "model: not an ONNX export folder"),
    (["serve", "--model", "{model}", "--backend", "tensorrt"], 2, "--backend must be torch or onnx"),
    (["serve", "--model", "{model}", "--backend", "onnx", "--bf16", "on"], 2, "--bf16 go with --backend torch"),
    (["serve", "--model", "{model}", "--max-texts", "0"], 2, "--max-texts must be at least 1, got 0"),
    (["serve", "--model", "{model}", "--max-wait-ms", "nan"], 2, "--max-wait-ms must be a number of 0 or more, got nan"),
    (["serve", "--model", "{model}", "--max-wait-ms", "inf"], 2, "--max-wait-ms must be a number of 0 or more, got inf"),
    # accepted: a BOM and CRLF line endings
    (["evaluate", "--model", "{model}", "--file", "{bom_crlf}"], 0, None),
    # the file silently won over these
    (["evaluate", "--model", "{model}", "--file", "{bom_crlf}", "--split", "train"], 2,
     "evaluates that file, not a split; drop --split"),
    (["evaluate", "--model", "{model}", "--file", "{bom_crlf}", "--data-dir", "{sst2}"], 2,
     "evaluates that file, not a split; drop --data-dir"),
    *((["bench", "infer", "--data-dir", "{sst2}", *option], 2, message) for option, message in (
        (["--batch-size", "0"], "--batch-size must be at least 1"), (["--steps", "-1"], "--steps must be at least 1"),
        (["--steps", "0"], "--steps must be at least 1, got 0"),  # was the default, silently
        (["--repeats", "0"], "--repeats must be at least 1"), (["--lengths", "1"], "--lengths must be at least 2"),
        (["--variable-means", "0"], "--variable-means at least 1"),  # drew zero-length documents for ever
        (["--token-budget", "1"], "--token-budget must be a multiple of 256"),
        (["--token-budget", "512", "--paths", "grouped"],
         "--token-budget needs the packed input path, not 'grouped' (pass --paths packed with --token-budget)"),
        (["--token-budget", "512", "--lengths", "64"], "--lengths and --variable-means build their own"),
        (["--compile", "bogus"], "--compile must be none or one of"), (["--paths", ","], "(none given)"),
        (["--output", "{empty}/results.json"], "empty.tsv/results.json: cannot write there"))),
    (["{train}", "--check"], 0, None),  # checks options, data and model; writes nothing
    (["{train}", "--check", "--train-file", "/nonexistent/train.tsv"], 2, "/nonexistent/train.tsv: file not found"),
    (["{train}", "--check", "--seeds", "3,3"], 2, "--seeds needs distinct seeds"),
    (["{train}", "--check", "--init-from", "{truncated}"], 2, "truncated: cannot load a classifier from it ("),
    (["{train}", "--check", "--init-from", "{no_weights}"], 2,
     "no_weights: cannot load a classifier from it (no weights file: model.safetensors)"),  # --check said ok
    (["{train}", "--seeds", ","], 2, "--seeds ',': expected comma-separated"),  # trained one unseeded run
    (["train", "--resume", "{dir}/a-sweep"], 2,
     "a-sweep: a sweep folder: the same `modernbert-glue sweep` command continues it"),  # "not ... modernbert-glue"
    (["train", "--model", "{dir}/bad_pad", "--random-init", "--data-dir", "{sst2}", "-o", "{out}", "--check"], 2,
     "the model folder's config.json or weights make no model (Padding_idx must be within num_embeddings)"),
    (["train", "--resume", "{dir}/seeds-done", "--seeds", "1,2,3"], 2, "seeds-done: its seeds 1,2 finished "
     "already; nothing to resume (--seeds 1,2,3 go in a new --seeds folder)"),
    (["train", "--resume", "{dir}/seeds-done", "--seeds", "2,1"], 2, "seeds-done: these seeds finished already"),  # it said nothing of seed 3
    (["{train}", "--preset", "{dir}/bom.toml"], 2, "'train.epochs' must be more than 0"),  # "not valid TOML" before
    (["train", "--resume", "{dir}/cut-overwrite"], 2,
     "cut-overwrite: an --overwrite of it was cut short; nothing to resume (pass --overwrite)"),  # run.json: not found
    (["compare", "{dir}/a-sweep", "--output", "{out}"], 2,
     "a-sweep/sweep.json: not found"),  # was "a-sweep/metrics.json: not found"; a sweep gives its chosen config
    (["{train}", "--seeds", "1,,2"], 2, "--seeds '1,,2': expected comma-separated"),  # was read as 1,2
    (["train", "--preset", "cpu-sbert", "--data-dir", "{sst2}", "--init-from", "{model}", "-o", "{out}", "--check"], 2,
     "(--model-override, or the preset's model.overrides): the 'modernbert' config has no field 'hidden_dropout_prob'"),
    # overrides the embedding tables cannot take: training failed at its first step (a traceback, a folder kept)
    (["train", "--preset", "cpu-sbert", "--random-init", "--data-dir", "{sst2}", "--model-override",
      "max_position_embeddings=8", "-o", "{out}"], 2, "model override max_position_embeddings=8 (--model-override, or "
     "the preset's model.overrides) is too small: inputs are cut at 128 tokens; it must be at least 128 (or lower "
     "data.max_length)"),
    (["train", "--preset", "cpu-sbert", "--random-init", "--data-dir", "{sst2}", "--model-override",
      "vocab_size=1000", "-o", "{out}", "--check"], 2, "is too small: the tokenizer has 30522 ids"),
    (["train", "--preset", "minilm-glue", "--random-init", "--task", "rte", "--data-dir", str(SHARED / "data" / "rte"),
      "--model-override", "type_vocab_size=1", "-o", "{out}", "--check"], 2,
     "type_vocab_size=1 (--model-override, or the preset's model.overrides) is too small: a pair task's second text"),
    (["train", "--model", MODERNBERT, "--data-dir", "{sst2}", "-o", "{out}", "--check"], 2,
     "no weights found (no model.safetensors); use --random-init"),  # --check said ok, the run then failed
    (["sweep", "--model", MODERNBERT, "--data-dir", "{sst2}", "--lr", "1e-4", "--seeds", "1", "-o", "{out}"], 2,
     "sweep: train refuses the runs' options: model"),  # started, failed, and kept a folder it could not resume
    (["sweep", "--model", MODERNBERT, "--random-init", "--data-dir", "{sst2}", "--lr", "1e-4", "--seeds", "1",
      "--set", "train.nope=1", "-o", "{out}"], 2, "sweep: train refuses the runs' options: override: unknown config key 'train.nope'"),
    (["sweep", "--data-dir", "{sst2}", "--lr", "nan", "--seeds", "1", "-o", "{out}"], 2, "--lr needs positive values"),
    (["sweep", "--data-dir", "{sst2}", "--lr", "1e-4", "--epochs", "1", "--seeds", "1", "--set", "train.epochs=3",
      "-o", "{out}"], 2, "sweep: --set train.epochs (--epochs is in the grid) gives each run its value: leave out "
     "--set train.epochs"),  # the grid's value won without a word
    (["sweep", "--model", MODERNBERT, "--random-init", "--data-dir", "{sst2}", "--lr", "1e-4", "--epochs", "1,2",
      "--seeds", "1", "--set", "train.max_steps=4", "-o", "{out}"], 2,
     "sweep: train.max_steps=4 ends every run at step 4, whatever its --epochs"),  # trained one run twice, a "tie"
    (["sweep", "--model", MODERNBERT, "--random-init", "--data-dir", "{sst2}", "--lr", "1e-4", "--seeds", "1,3",
      "--init-from", "{dir}/seeds-of-one/seed-{{seed}}/model", "-o", "{out}"], 2,
     "seeds-of-one/seed-3/model: model folder not found"),  # each run its seed's, checked before seed 1 trained
    (["sweep", "--data-dir", "{sst2}", "--lr", "1e-4", "--weight-decay", "", "--seeds", "1", "-o", "{out}"], 2,
     "--weight-decay '': expected comma-separated"),  # was a sweep without the wd axis
    (["baseline", "tfidf", "--train-file", "{dir}/punct.tsv", "--validation-file", "{dir}/punct.tsv", "-o", "{out}"],
     2, "punct.tsv: TF-IDF finds no words in any training text"),  # sklearn's "empty vocabulary"
    (["{train}", "--preset", "{dir}/int_columns.toml", "--check"], 2,
     "int_columns.toml: 'data.text_columns' must be a list of str, got [1]"),  # the preset named
    (["{train}", "--train-file", "{dir}/multiline.csv"], 2,
     "multiline.csv, line 2: a quoted field runs past the end of the line; fields spanning lines"),
    (["{train}", "--train-file", "{dir}/cr.tsv"], 2, "cr.tsv: its line endings are CR only"),  # was "no rows"
    (["predict", "--model", "{model}", "--input", "{dir}/cr.txt"], 2, "cr.txt: its line endings are CR only"),
    # a file where a folder belongs: FileExistsError from mkdir, after the data and the encoder had loaded
    (["baseline", "sbert-frozen", "--data-dir", "{sst2}", "--cache-dir", "{bom_crlf}/x", "-o", "{out}"], 2,
     "exists and is not a folder"),
]


def expand(argv: list[str], files: dict, out) -> list[str]:
    if argv[0] == "{train}":
        argv = [*TRAIN, "--data-dir", "{sst2}", "--output-dir", str(out), *argv[1:]]
    return [str(a).format(out=str(out), **{k: str(v) for k, v in files.items()}) for a in argv]


def test_bad_cli_inputs_get_one_line_and_exit_2(files, capsys, tmp_path):
    assert len(CLI_ROWS) + len(HTTP_ROWS) >= 40
    failures = []
    for argv, code, message in CLI_ROWS:
        out = tmp_path / "out"
        got, stdout, stderr = run_main(expand(argv, files, out), capsys)
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        ok = got == code and "Traceback" not in stderr and not out.exists()
        if code:
            ok = ok and stdout == "" and last.startswith("error: ") and message in last
        if not ok:
            failures.append(f"{argv}: exit {got}, last line {last!r}")
    assert not failures, "\n".join(failures)


def test_overwrite_of_a_users_folder_leaves_it_as_it_was(files, capsys):
    code, _, stderr = run_main([*TRAIN, "--data-dir", files["sst2"], "--output-dir", files["mine"], "--overwrite"],
                               capsys)
    assert code == 2 and "not a folder modernbert-glue wrote" in stderr.strip().splitlines()[-1]
    assert sorted(p.name for p in files["mine"].iterdir()) == ["thesis.tex"]


# (method, route, request keywords, expected status, error_type)
HTTP_ROWS = [
    ("post", "/v1/classify", {"content": b'{"texts": ["a"]}', "headers": {"content-type": "text/plain"}}, 422,
     "validation"),
    ("post", "/v1/classify", {"content": b'{"texts": [', "headers": {"content-type": "application/json"}}, 422,
     "validation"),
    ("post", "/v1/classify", {"json": {"texts": [1, 2]}}, 422, "validation"),
    ("post", "/v1/classify", {"json": {"texts": "fine"}}, 422, "validation"),
    ("post", "/v1/classify", {"json": {"texts": ["x"] * 9}}, 413, "validation"),
    ("post", "/v1/classify", {"json": {"texts": ["y" * 201]}}, 413, "validation"),
    ("post", "/v1/classify", {"json": {"texts": []}}, 422, "validation"),
    ("post", "/predict", {"json": {"inputs": []}}, 400, "Empty"),  # TEI's routes: TEI's spelling
    ("post", "/predict", {"json": {"inputs": [["a"], ["b", "c", "d"]]}}, 422, "Validation"),
    ("post", "/predict", {"content": b'{"inputs": [', "headers": {"content-type": "application/json"}}, 422,
     "Validation"),
    ("post", "/v1/classify", {"json": {"texts": ["a"]}, "auth": None}, 401, "unauthorized"),
    ("post", "/predict", {"json": {"inputs": "a"}, "auth": "Bearer nope"}, 401, "unauthorized"),
]


def test_bad_requests_get_the_right_4xx_with_a_json_error(tiny_run):
    proc, url, _ = start(tiny_run / "model", "--max-texts", "8", "--max-chars", "200", "--api-key", "k")
    try:
        failures = []
        for method, route, kwargs, status, kind in HTTP_ROWS:
            kwargs = dict(kwargs)
            auth = kwargs.pop("auth", "Bearer k")
            headers = {**kwargs.pop("headers", {}), **({"Authorization": auth} if auth else {})}
            r = httpx.request(method, f"{url}{route}", headers=headers, **kwargs)
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            if r.status_code != status or body.get("error_type") != kind or not body.get("error"):
                failures.append(f"{method} {route} {kwargs}: {r.status_code} {r.text[:200]}")
        assert not failures, "\n".join(failures)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_ctrl_c_exits_130_with_one_line(tiny_run, capsys, monkeypatch):
    """Ctrl-C mid-command: exit 130 and "error: interrupted", so that `train && evaluate` stops there (typer
    hands the interrupt back as a returned code, which main() once dropped: exit 0)."""
    from modernbert_glue.inference import predict

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(predict, "predict", interrupted)
    code, stdout, stderr = run_main(["predict", "--model", tiny_run, "a fine film"], capsys)
    assert code == 130 and stdout == "" and stderr.strip().splitlines()[-1] == "error: interrupted"


@pytest.mark.parametrize("value, code, message", [
    ("verbose", 2, "error: $MODERNBERT_GLUE_LOG: unknown level 'verbose' (use DEBUG, INFO, WARNING or ERROR)"),
    ("debug", 0, None),  # any case: logging's names are upper case
])
def test_the_log_level_variable_is_one_line_when_wrong(value, code, message):
    """An unknown level was logging's ValueError traceback, before any command ran."""
    got, stdout, stderr = run_cli("presets", "list", env={"MODERNBERT_GLUE_LOG": value})
    assert got == code and "Traceback" not in stderr, stderr[-800:]
    if message:
        assert stderr.strip().splitlines()[-1] == message and stdout == ""
    else:
        assert "paper" in stdout.split()
