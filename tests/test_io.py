import json

import pytest

from sciner.io import DataError
from sciner.io.conll import read_conll, write_conll
from sciner.io.jsonl import read_jsonl, write_jsonl
from sciner.io.labelstudio import label_config, prediction_task, read_labelstudio
from sciner.records import Entity, Sentence


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_jsonl_roundtrip_keeps_unknown_tags(tmp_path):
    s = Sentence("a", ["BERT", "rocks"], ["B-MethodName", None], "d", "src")
    write_jsonl(tmp_path / "x.jsonl", [s])
    (back,) = read_jsonl(tmp_path / "x.jsonl")
    assert back.tokens == s.tokens and back.tags == s.tags and back.doc_id == "d"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ('{"tokens": [], "tags": []}', "non-empty list"),
        ('{"tokens": ["a b"], "tags": ["O"]}', "without spaces"),
        ('{"tokens": ["a"], "tags": ["O", "O"]}', "as long as"),
        ('{"tokens": ["a"], "tags": ["X-Foo"]}', "is not O, B-<Type> or I-<Type>"),
        ('{"tokens": ["a", "b"], "tags": ["O", "I-Task"]}', "strict BIO"),
        ('{"tokens": ["a"]}', "'tags' is missing"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_invalid_jsonl_names_file_line_and_reason(tmp_path, line, reason):
    p = write(tmp_path, "bad.jsonl", '{"tokens": ["ok"], "tags": ["O"]}\n' + line + "\n")
    with pytest.raises(DataError) as err:
        read_jsonl(p)
    assert err.value.line == 2 and str(p) in str(err.value) and reason in str(err.value)


def test_conll_reads_all_three_layouts_and_docstart(tmp_path):
    p = write(
        tmp_path,
        "d.conll",
        "-DOCSTART- -X- O O\n\nBERT -X- _ B-MethodName\nworks O\n\r\nSQuAD\tB-DatasetName\n\n",
    )
    sents = read_conll(p)
    assert [s.tokens for s in sents] == [["BERT", "works"], ["SQuAD"]]
    assert sents[1].tags == ["B-DatasetName"]
    write_conll(tmp_path / "o.conll", sents)
    assert [s.tags for s in read_conll(tmp_path / "o.conll")] == [s.tags for s in sents]


def test_conll_bad_tag_is_reported_with_line(tmp_path):
    p = write(tmp_path, "d.conll", "a O\nb WHAT\n")
    with pytest.raises(DataError, match=r"d\.conll:2"):
        read_conll(p)


def test_label_studio_annotations_become_bio_sentences(tmp_path):
    text = "We train BERT on SQuAD. It reaches 90.1 F1."
    task = {
        "id": 7,
        "data": {"text": text},
        "annotations": [
            {
                "result": [
                    {"value": {"start": 9, "end": 13, "labels": ["MethodName"]}},
                    {"value": {"start": 17, "end": 22, "labels": ["DatasetName"]}},
                    {"value": {"start": 35, "end": 39, "labels": ["MetricValue"]}},
                ]
            }
        ],
    }
    p = write(tmp_path, "ls.json", json.dumps([task, {"data": {"text": "unannotated"}}]))
    sents = read_labelstudio(p)
    assert len(sents) == 2
    assert list(zip(sents[0].tokens, sents[0].tags, strict=True))[2:5] == [
        ("BERT", "B-MethodName"),
        ("on", "O"),
        ("SQuAD", "B-DatasetName"),
    ]
    assert "B-MetricValue" in sents[1].tags


def test_label_studio_span_outside_text_is_an_error(tmp_path):
    task = {"data": {"text": "abc"}, "annotations": [{"result": [{"value": {"start": 0, "end": 9, "labels": ["X"]}}]}]}
    with pytest.raises(DataError, match="outside the text"):
        read_labelstudio(write(tmp_path, "ls.json", json.dumps([task])))


def test_prediction_export_is_a_label_studio_pre_annotation():
    e = Entity(start=3, end=7, text="BERT", label="MethodName", score=0.8)
    task = prediction_task("We BERT", [e], "v3")
    (result,) = task["predictions"][0]["result"]
    assert result["value"] == {"start": 3, "end": 7, "text": "BERT", "labels": ["MethodName"]}
    assert task["predictions"][0]["model_version"] == "v3"
    assert 'value="MethodName"' in label_config(["MethodName"])


def test_a_data_hash_is_the_hash_of_the_file_write_jsonl_writes_taken_without_writing_one(seed_dev, tmp_path):
    from sciner.model_dir import sha256_file
    from training.pipeline import data_fingerprint

    path = tmp_path / "dev.jsonl"
    write_jsonl(path, seed_dev)

    fingerprint = data_fingerprint(seed_dev, path)

    assert fingerprint == {"source": str(path), "sha256": sha256_file(path), "sentences": len(seed_dev)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.jsonl"]
