"""Reading a corpus in time that grows with its length, whatever its layout; where documents end."""

import pytest

from bertforge.data import corpus, sentences
from bertforge.data.corpus import check_documents, count_documents, read_documents
from bertforge.data.sentences import MAX_PIECE_CHARS, detect_text_format, split_sentences
from bertforge.errors import BertforgeError

# Paragraphs in the manner of the Works of Poe; the second opens a quotation that the
# third goes on with and never closes, as quotations over several paragraphs do.
PARAGRAPHS = [
    "Mr. Poe met Dr. Griswold at {n} o'clock. They argued, e.g. about E. A. Poe's tales, for an hour. "
    "The night was long and the rain fell on the roofs of the old town.",
    "“I have my doubts,” he said at {n}. “The cask is below. We shall go down to the vaults. "
    "The damp is nothing, and the niter hangs like moss upon the walls.",
    "“My friend, no. It is not the engagement, but the severe cold with which I perceive you are "
    "afflicted. The vaults are insufferably damp. They are encrusted with niter. Come, let us go.",
    "The thousand injuries of Fortunato, {n} of them, I had borne as I best could. He left—Mr. Barnard stayed. "
    "Wait... then nothing more was heard of him.",
]


def paragraph_lines(count: int) -> list[str]:
    return [PARAGRAPHS[n % len(PARAGRAPHS)].format(n=n) for n in range(count)]


def spy_on_splitter(monkeypatch) -> list[str]:
    """Every text the sentence splitter (pysbd) is given, in this process."""
    seen: list[str] = []
    segmenter = sentences._segmenter()

    class Spy:
        def segment(self, text):
            seen.append(text)
            return segmenter.segment(text)

    monkeypatch.setattr(sentences, "_segmenter", lambda: Spy())
    return seen


# --------------------------------------------------------------------------- work that grows linearly


def test_a_paragraph_per_line_corpus_is_split_line_by_line(tmp_path, monkeypatch):
    # No blank line anywhere, CRLF line ends, a quotation never closed: today's reader took
    # this as one document and gave pysbd thousands of characters across lines at once.
    lines = paragraph_lines(120)
    path = tmp_path / "wiki.txt"
    path.write_bytes("\r\n".join(lines).encode("utf-8") + b"\r\n")
    seen = spy_on_splitter(monkeypatch)
    documents = list(read_documents(path, workers=1))
    assert detect_text_format(lines) == "paragraphs"
    # The splitter never looks across a line break: each text it sees lies inside one line,
    # and it sees each character once, so the work grows with the corpus, not its square.
    assert all(any(text in line for line in lines) for text in seen)
    assert sum(map(len, seen)) <= sum(map(len, lines))
    assert documents == [[sentence for line in lines for sentence in split_sentences(line)]]


def test_no_piece_the_splitter_sees_is_longer_than_the_bound(monkeypatch):
    # A quotation opened and never closed leaves no cut "outside quotes" after it.
    text = "“" + " ".join(PARAGRAPHS[n % 4].format(n=n) for n in range(600))
    assert len(text) > 3 * MAX_PIECE_CHARS and text.count("“") > text.count("”")
    pieces = sentences._pieces(" ".join(text.split()))
    assert "".join(pieces) == " ".join(text.split())
    assert max(map(len, pieces)) <= MAX_PIECE_CHARS
    seen = spy_on_splitter(monkeypatch)
    found = split_sentences(text)
    assert max(map(len, seen)) <= MAX_PIECE_CHARS
    assert "".join("".join(found).split()) == "".join(text.split())


def test_one_huge_document_is_shared_between_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_CHARS", 2000)
    path = tmp_path / "one.txt"
    path.write_text("\n".join(paragraph_lines(60)) + "\n", encoding="utf-8")
    chunks = list(corpus._chunks([path], "auto", False))
    assert len(chunks) >= 5 and sum(firsts.count(True) for _, _, firsts in chunks) == 1
    assert list(read_documents(path, workers=2)) == list(read_documents(path, workers=1))


# --------------------------------------------------------------------------- where documents end


def test_wiki_headings_start_documents_and_are_not_sentences(tmp_path):
    text = (" = Usher = \r\n The house fell. It sank into the tarn. \r\n = = Later = = \r\n"
            " Nothing was left . The water closed over it . \r\n = Morella = \r\n She died. Her child lived.\r\n")
    path = tmp_path / "wiki.raw"
    path.write_bytes(text.encode("utf-8"))
    assert list(read_documents(path, workers=1)) == [
        ["The house fell.", "It sank into the tarn.", "Nothing was left .", "The water closed over it ."],
        ["She died.", "Her child lived."]]
    assert count_documents(path) == 2
    # Text tokenized with a space before the full stop is a paragraph per line too.
    assert detect_text_format(["The house fell . It sank into the tarn ."] * 5) == "paragraphs"


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_crlf_and_cr_line_ends_read_as_lf(tmp_path, ending):
    text = "It was dark.\nThe bells rang.\n\nNevermore, quoth\nthe raven. It flew.\n"
    plain = tmp_path / "lf.txt"
    plain.write_text(text, encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_bytes(text.replace("\n", ending).encode("utf-8"))
    for text_format in ("auto", "sentences", "prose"):
        expected = list(read_documents(plain, text_format=text_format, workers=1))
        assert list(read_documents(other, text_format=text_format, workers=1)) == expected
        assert not any("\r" in sentence for document in expected for sentence in document)
    assert len(expected) == 2


def test_doc_per_line_makes_every_line_a_document(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_text("Good film. I liked it.\nBad film.\n\nThe end was weak. The start was fine.\n", encoding="utf-8")
    assert list(read_documents(path, workers=1, doc_per_line=True)) == [
        ["Good film.", "I liked it."], ["Bad film."], ["The end was weak.", "The start was fine."]]
    assert count_documents(path, doc_per_line=True) == 3 and count_documents(path) == 2


def test_too_few_documents_names_the_corpus_and_how_to_mark_them(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("\n".join(paragraph_lines(5)) + "\n", encoding="utf-8")
    with pytest.raises(BertforgeError) as caught:
        check_documents(path, 2, "next-sentence prediction", otherwise="or use --pair-objective sop or none")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: next-sentence prediction needs at least 2")
    assert "blank line" in message and "= Title =" in message and "--doc-per-line" in message
    check_documents(path, 5, "next-sentence prediction", doc_per_line=True)


def test_pretrain_refuses_one_document_before_tokenizing_and_names_the_file(tmp_path):
    from bertforge.apps.pretrain import PretrainSettings, pretrain
    from bertforge.text.tokenizer import Tokenizer

    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(paragraph_lines(40)) + "\n", encoding="utf-8")
    Tokenizer.train(paragraph_lines(8), vocab_size=120).save(tmp_path / "vocab")
    settings = PretrainSettings.of(corpus=[str(path)], vocab=str(tmp_path / "vocab"), out=str(tmp_path / "model"),
                                   preset="tiny", seq_len=32, batch_size=8, max_steps=1,
                                   shards_dir=str(tmp_path / "shards"), workers=1, progress=False)
    with pytest.raises(BertforgeError) as caught:
        pretrain(settings)
    message = str(caught.value)
    assert str(path) in message and "shards" not in message and "--doc-per-line" in message
    assert not (tmp_path / "shards").exists()  # nothing was split or tokenized first
