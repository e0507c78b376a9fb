import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sciner.pretokenize import split_sentences, tokenize


def texts(tokens):
    return [t.text for t in tokens]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_every_token_is_the_text_at_its_offsets(text):
    tokens = tokenize(text)
    for tok in tokens:
        assert tok.text == text[tok.start : tok.end]
        assert tok.text and not any(c.isspace() for c in tok.text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(tokens))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n()\"'5%-,")), max_size=200))
def test_sentences_partition_the_tokens_in_order(text):
    tokens = tokenize(text)
    flat = [t for sent in split_sentences(text) for t in sent]
    assert flat == tokens
    assert all(sent for sent in split_sentences(text))


def test_punctuation_is_split_off_like_the_gold_data():
    assert texts(tokenize("We fine-tune BERT (Devlin et al., 2019) on SQuAD v1.1, e.g. with lr=3e-5.")) == [
        "We",
        "fine-tune",
        "BERT",
        "(",
        "Devlin",
        "et",
        "al.",
        ",",
        "2019",
        ")",
        "on",
        "SQuAD",
        "v1.1",
        ",",
        "e.g.",
        "with",
        "lr=3e-5",
        ".",
    ]


def test_percent_possessive_and_negation_are_separate_tokens():
    assert texts(tokenize("Accuracy 93.2% of the model's runs don't")) == [
        "Accuracy",
        "93.2",
        "%",
        "of",
        "the",
        "model",
        "'s",
        "runs",
        "do",
        "n't",
    ]


def test_sentences_end_at_terminal_punctuation_before_a_capital():
    text = "We use BERT. It works! See Fig. 3 for details.\n\nnew paragraph here"
    sents = [texts(s) for s in split_sentences(text)]
    assert sents == [
        ["We", "use", "BERT", "."],
        ["It", "works", "!"],
        ["See", "Fig.", "3", "for", "details", "."],
        ["new", "paragraph", "here"],
    ]


def test_abbreviations_do_not_end_sentences():
    sents = split_sentences("Results of Smith et al. Show gains, i.e. More data helps.")
    assert len(sents) == 1


def test_unicode_offsets_are_character_offsets():
    text = "Müller’s model reaches ≥ 90 % – “BLEU” 35.1."
    for tok in tokenize(text):
        assert text[tok.start : tok.end] == tok.text
    assert "Müller" in texts(tokenize(text))
