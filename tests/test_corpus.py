"""The pretraining corpus reader: finding files, documents, sentences, clauses, pairs, bad input."""

import gzip
import inspect
import itertools
import os
import re
from pathlib import Path

import pytest

from bertforge.data import corpus, sentences
from bertforge.data.corpus import corpus_files, read_documents, sentence_pairs, split_clauses, split_sentences
from bertforge.data.sentences import detect_text_format
from bertforge.errors import BertforgeError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(call, *names: str) -> str:
    """The message of the BertforgeError that ``call`` raises, checked to be one line naming ``names``."""
    with pytest.raises(BertforgeError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for name in names:
        assert name in message
    return message


def read_all(*args, **kwargs):
    return list(read_documents(*args, **kwargs))


# --------------------------------------------------------------------------- finding files


def test_a_folder_gives_its_regular_non_hidden_files_recursively_in_sorted_order(tmp_path):
    for name in ("b.txt", "a/z.txt", "a/b/c.txt", "a/a.txt", "a-file.txt", ".hidden.txt", ".git/config",
                 "a/.cache/x.txt"):
        write(tmp_path / name, "x\n")
    relative = [path.relative_to(tmp_path).as_posix() for path in corpus_files(tmp_path)]
    # Sorted by path components: the folder "a" before the file "a-file.txt".
    assert relative == ["a/a.txt", "a/b/c.txt", "a/z.txt", "a-file.txt", "b.txt"]
    assert corpus_files(str(tmp_path)) == corpus_files([tmp_path])


def test_glob_patterns_sorted_folders_expanded_and_duplicates_read_once(tmp_path):
    for name in ("2.txt", "1.txt", "3.md", "deep/er/4.txt", "sub/5.txt", "[x].txt"):
        write(tmp_path / name, "x\n")
    names = lambda paths: [path.relative_to(tmp_path).as_posix() for path in paths]  # noqa: E731
    assert names(corpus_files(f"{tmp_path}/*.txt")) == ["1.txt", "2.txt", "[x].txt"]
    assert names(corpus_files(f"{tmp_path}/?.txt")) == ["1.txt", "2.txt"]
    assert names(corpus_files(f"{tmp_path}/**/*.txt")) == ["1.txt", "2.txt", "[x].txt", "deep/er/4.txt",
                                                           "sub/5.txt"]
    assert names(corpus_files(f"{tmp_path}/[2-3].*")) == ["2.txt", "3.md"]
    assert names(corpus_files(f"{tmp_path}/su*")) == ["sub/5.txt"]
    # A name that exists is taken as it is, not as a pattern.
    assert names(corpus_files(tmp_path / "[x].txt")) == ["[x].txt"]
    # Entries keep their order; a file already listed is not read twice.
    assert names(corpus_files([tmp_path / "3.md", f"{tmp_path}/*.md", tmp_path / "sub"])) == ["3.md", "sub/5.txt"]


def test_gz_files_are_read_like_text(tmp_path):
    text = "The raven spoke.\nNevermore.\n\nThe bells rang.\n"
    plain = write(tmp_path / "plain" / "a.txt", text)
    packed = tmp_path / "packed" / "a.txt.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(text.encode("utf-8")))
    expected = [["The raven spoke.", "Nevermore."], ["The bells rang."]]
    assert read_all(plain, text_format="sentences", workers=1) == expected
    assert read_all(packed.parent, text_format="sentences", workers=1) == expected
    assert read_all(packed, text_format="auto", workers=1) == expected


@pytest.mark.parametrize("entry, expected", [
    ("missing.txt", "no such file or folder"),
    ("missing/*.txt", "the pattern matches nothing"),
])
def test_a_path_that_is_not_there_is_one_line(tmp_path, entry, expected):
    message = one_line_error(lambda: corpus_files([tmp_path / entry]), str(tmp_path / entry))
    assert expected in message


def test_no_files_at_all_is_one_line(tmp_path):
    write(tmp_path / "empty" / ".hidden", "x\n")
    message = one_line_error(lambda: corpus_files([tmp_path / "empty"]), str(tmp_path / "empty"))
    assert "no files" in message
    one_line_error(lambda: corpus_files([]), "no corpus files")
    # read_documents finds the files at the call, not at the first document.
    one_line_error(lambda: read_documents(tmp_path / "nowhere.txt"), "nowhere.txt")


# --------------------------------------------------------------------------- documents and formats


def test_blank_lines_end_documents(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("\ufeffOne.\r\n  Two  words. \r\n \t \r\n\r\n\r\nThree.\n\nFour.\nFive.".encode("utf-8"))
    assert read_all(path, text_format="sentences", workers=1) == [["One.", "Two words."], ["Three."],
                                                                   ["Four.", "Five."]]


def test_sentences_format_keeps_each_line_whole(tmp_path):
    path = write(tmp_path / "s.txt", "Mr. Poe wrote. He left.\nIt rained\n")
    assert read_all(path, text_format="sentences", workers=1) == [["Mr. Poe wrote. He left.", "It rained"]]


def test_prose_format_joins_the_lines_of_a_block_and_splits_sentences(tmp_path):
    path = write(tmp_path / "p.txt", "The thousand injuries of Fortunato I had\n  borne as I best could. "
                                     "Mr. Poe\nwrote it. It\nrained\n\nA new one.\n")
    assert read_all(path, text_format="prose", workers=1) == [
        ["The thousand injuries of Fortunato I had borne as I best could.", "Mr. Poe wrote it.", "It rained"],
        ["A new one."]]


def test_auto_decides_per_file(tmp_path):
    write(tmp_path / "1-lines.txt", "Mr. Poe wrote it.\nIt rained.\n\n“Is it?” he asked.\n")
    write(tmp_path / "2-wrapped.txt", "It was dark and the wind\nblew hard. The raven\nspoke once.\n")
    write(tmp_path / "3-paragraphs.txt", "It was dark. The wind blew.\nThe raven spoke. It said one word.\n")
    assert read_all(tmp_path, workers=1) == [
        ["Mr. Poe wrote it.", "It rained."], ["“Is it?” he asked."],
        ["It was dark and the wind blew hard.", "The raven spoke once."],
        ["It was dark.", "The wind blew.", "The raven spoke.", "It said one word."]]


def test_auto_rule_thresholds():
    ended = ["A sentence."] * 8
    assert detect_text_format(ended + ["no end", "no end either"]) == "sentences"  # 80% end like a sentence
    assert detect_text_format(ended[:7] + ["no end"] * 3) == "prose"  # 70%
    assert detect_text_format(ended + ['It is "done!"', "Ends (so.)"]) == "sentences"  # closing marks count
    two = "It rained all day. We stayed in."
    assert detect_text_format(ended + [two] * 2) == "sentences"  # 20% hold a sentence end inside
    assert detect_text_format(ended[:7] + [two] * 3) == "paragraphs"  # 30%: a paragraph per line
    # Abbreviations and initials inside a line are not sentence ends.
    assert detect_text_format(["Mr. Poe and Dr. Smith met E. A. Poe.", "St. Louis is far."] * 5) == "sentences"
    assert detect_text_format(["", "  "]) == "sentences"


def test_auto_looks_only_at_the_top_of_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "SNIFF_LINES", 4)
    path = write(tmp_path / "c.txt", "One.\nTwo.\n\nThree.\nFour.\nand then wrapped\nprose that goes\non and on\n")
    # Four sentence lines decide "sentences"; the wrapped lines after them are not looked at.
    assert read_all(path, workers=1)[-1] == ["Three.", "Four.", "and then wrapped", "prose that goes", "on and on"]


# --------------------------------------------------------------------------- sentences and clauses


@pytest.mark.parametrize("text, expected", [
    ("Mr. Poe met Dr. Griswold. They argued.", ["Mr. Poe met Dr. Griswold.", "They argued."]),
    ("Some tales, e.g. the Gold-Bug, sold well. Others did not.",
     ["Some tales, e.g. the Gold-Bug, sold well.", "Others did not."]),
    ("E. A. Poe was born in Boston. He died in Baltimore.", ["E. A. Poe was born in Boston.", "He died in Baltimore."]),
    ("The ink cost 3.50 dollars. It was dear.", ["The ink cost 3.50 dollars.", "It was dear."]),
    ('"Is it?" he asked. "It is."', ['"Is it?" he asked.', '"It is."']),
    ("“How?” said he. “Amontillado? A pipe? Impossible!”",
     ["“How?” said he.", "“Amontillado? A pipe? Impossible!”"]),
    ("Wait... what happened? Nothing.", ["Wait... what happened?", "Nothing."]),
    ("He paused... Then he went on.", ["He paused...", "Then he went on."]),
    ("He lives on St. Louis Street. Dr. Templeton left.", ["He lives on St. Louis Street.", "Dr. Templeton left."]),
    ("  One\n  two.\tThree  ", ["One two.", "Three"]),
    (" \n ", []),
    # pysbd's own output, mended: a title after a dash, closing marks cut off, a comma after "MS."
    ("They sailed for Vredenburgh—Mr. Barnard is well known. He left.",
     ["They sailed for Vredenburgh—Mr. Barnard is well known.", "He left."]),
    ("It sinks again if let alone.’ Then it rose.", ["It sinks again if let alone.’", "Then it rose."]),
    ("I am _here!_ To-morrow I shall be free.", ["I am _here!_", "To-morrow I shall be free."]),
    ("I read the MS., and then I slept. Morning came.", ["I read the MS., and then I slept.", "Morning came."]),
])
def test_split_sentences_on_tricky_english(text, expected):
    assert split_sentences(text) == expected


def test_long_prose_is_cut_only_at_certain_sentence_ends(monkeypatch):
    monkeypatch.setattr(sentences, "MAX_SEGMENT_CHARS", 60)
    text = ("“Go now. Run to the town.” She ran there. (It was far. Very far.) Mr. Poe said no. "
            "He left the house at night. The end came soon.")
    pieces = sentences._pieces(text)
    assert "".join(pieces) == text and len(pieces) >= 3
    # Never inside the quote or the brackets, never after "Mr.".
    assert all(piece.endswith(("town.” ", "there. ", "far.) ", "no. ", "night. ", "soon.")) for piece in pieces)
    assert all(len(piece) <= 60 for piece in pieces)
    assert split_sentences(text) == ["“Go now. Run to the town.”", "She ran there.", "(It was far. Very far.)",
                                     "Mr. Poe said no.", "He left the house at night.", "The end came soon."]


@pytest.mark.parametrize("sentence, expected", [
    ("He had a weak point—this Fortunato—although he was feared.",
     ["He had a weak point—", "this Fortunato—", "although he was feared."]),
    ("First, second; third: fourth.", ["First,", "second;", "third:", "fourth."]),
    ("It cost 3,500 francs at 10:30 in 1809–1849, a well-known price.",
     ["It cost 3,500 francs at 10:30 in 1809–1849,", "a well-known price."]),
    ("“I have my doubts,” I replied -- a ruse - a trick – a game.",
     ["“I have my doubts,”", "I replied --", "a ruse -", "a trick –", "a game."]),
    ("He came--he went.", ["He came--", "he went."]),
    ("Yes, — no.", ["Yes, —", "no."]),
    ("TO F——", ["TO F——"]),
    ("Mr. B—.", ["Mr. B—."]),
    (", — so it began", [", — so it began"]),
    ("No marks here", ["No marks here"]),
    ("* * *", ["* * *"]),
    ("   ", []),
])
def test_split_clauses(sentence, expected):
    assert split_clauses(sentence) == expected


def test_clauses_option_of_read_documents(tmp_path):
    path = write(tmp_path / "c.txt", "Quoth the raven, nevermore. Yes.\n")
    assert read_all(path, text_format="prose", split_clauses=True, workers=1) == [
        ["Quoth the raven,", "nevermore.", "Yes."]]


def test_sentence_pairs_never_cross_documents(tmp_path):
    path = write(tmp_path / "c.txt", "a.\nb.\nc.\n\nd.\n\ne.\nf.\n")
    documents = read_all(path, text_format="sentences", workers=1)
    assert list(sentence_pairs(documents)) == [("a.", "b."), ("b.", "c."), ("e.", "f.")]
    assert list(sentence_pairs(iter([]))) == []


# --------------------------------------------------------------------------- workers and streaming


PARAGRAPHS = [
    "Mr. Poe met Dr. Griswold at {n} o'clock. They argued, e.g. about E. A. Poe's tales, for an hour.",
    "“Is it {n}?” he asked. “It is,” said she; the price was 3.50 dollars. Wait... then nothing.",
    "The thousand injuries of Fortunato, {n} of them, I had borne as I best could. He left—Mr. Barnard stayed.",
]


def prose_corpus(folder: Path, files: int = 4, blocks: int = 60) -> Path:
    for index in range(files):
        text = "\n\n".join(PARAGRAPHS[(index + n) % 3].format(n=n) for n in range(blocks))
        write(folder / f"{index}.txt", text.replace(". ", ".\n", 1))
    write(folder / "1a-lines.txt", "".join(f"Line {n} stands alone.\n" + "\n" * (n % 3 == 0) for n in range(50)))
    return folder


def spy_on_pools(monkeypatch) -> list:
    started = []
    original = corpus._start_pool

    def start(workers):
        started.append(workers)
        return original(workers)

    monkeypatch.setattr(corpus, "_start_pool", start)
    return started


def test_two_workers_give_the_same_documents_as_one(tmp_path, monkeypatch):
    folder = prose_corpus(tmp_path)
    # Small chunks: many tasks in flight, finishing out of order, mixed with in-process ones.
    monkeypatch.setattr(corpus, "CHUNK_CHARS", 300)
    started = spy_on_pools(monkeypatch)
    for clauses in (False, True):
        alone = read_all(folder, split_clauses=clauses, workers=1)
        assert started == []
        together = read_all(folder, split_clauses=clauses, workers=2)
        assert started == [2]
        started.clear()
        assert together == alone
    assert len(alone) == 4 * 60 + 18
    assert ["Line 1 stands alone.", "Line 2 stands alone.", "Line 3 stands alone."] in alone


def test_one_sentence_per_line_starts_no_worker_processes(tmp_path, monkeypatch):
    started = spy_on_pools(monkeypatch)
    path = write(tmp_path / "c.txt", "One.\nTwo.\n")
    assert read_all(path, text_format="sentences", workers=4) == [["One.", "Two."]]
    assert started == []


def test_reading_streams_and_hands_over_what_came_before_bad_input(tmp_path):
    lines = "".join(f"Sentence {n} of the corpus.\n" + ("\n" if n % 10 == 9 else "") for n in range(100_000))
    good = lines.encode("utf-8")
    path = tmp_path / "big.txt"
    path.write_bytes(good + b"caf\xe9 noir.\n")
    documents = read_documents(path, text_format="sentences", workers=1)
    assert inspect.isgenerator(documents)
    # The first document comes before the bad byte at the end of the file is read.
    assert next(documents) == [f"Sentence {n} of the corpus." for n in range(10)]
    taken = 1
    with pytest.raises(BertforgeError) as caught:
        for _ in documents:
            taken += 1
    assert taken == 10_000
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert f"byte offset {len(good) + 3}" in message and "line 110001" in message and "UTF-8" in message


def test_prose_with_workers_reads_ahead_a_bounded_amount(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_CHARS", 500)  # 2 workers x 4 tasks of about 5 blocks in flight
    read = []
    original = corpus._blocks
    monkeypatch.setattr(corpus, "_blocks", lambda lines: (read.append(block) or block for block in original(lines)))
    blocks = [PARAGRAPHS[n % 3].format(n=n) for n in range(300)]
    path = tmp_path / "c.txt"
    path.write_bytes("\n\n".join(blocks).encode("utf-8") + b"\n\n\xff\n")
    documents = read_documents(path, text_format="prose", workers=2)
    assert next(documents) == split_sentences(blocks[0])
    assert 10 <= len(read) <= 60
    taken = [next(documents) for _ in range(9)]
    assert taken == [split_sentences(block) for block in blocks[1:10]]
    with pytest.raises(BertforgeError, match="byte 0xff"):
        taken.extend(documents)
    assert len(taken) == 299 and taken[-1] == split_sentences(blocks[-1])


# --------------------------------------------------------------------------- bad input


def test_not_utf8_names_the_file_line_and_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("First line.\nThe café.\n".encode("latin-1"))
    message = one_line_error(lambda: read_all(path, workers=1), str(path), "line 2", "byte offset 19")
    assert "byte 0xe9" in message and "convert the file to UTF-8" in message


def test_a_compressed_file_without_gz_name_is_named_as_such(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(gzip.compress(b"Hello there.\n"))
    message = one_line_error(lambda: read_all(path, workers=1), str(path))
    assert "gzip-compressed" in message


@pytest.mark.parametrize("damage", ["not gzip", "truncated", "corrupted"])
def test_a_corrupt_gz_is_one_line(tmp_path, damage):
    packed = gzip.compress(("The raven spoke.\n" * 2000).encode("utf-8"))
    data = {"not gzip": b"The raven spoke.\n", "truncated": packed[:len(packed) // 2],
            "corrupted": packed[:-8] + bytes(b ^ 0xFF for b in packed[-8:-4]) + packed[-4:]}[damage]
    path = tmp_path / "corpus.txt.gz"
    path.write_bytes(data)
    message = one_line_error(lambda: read_all(path, workers=1), str(path))
    assert "not a valid gzip file" in message


def test_permission_denied_is_one_line(tmp_path, monkeypatch):
    path = write(tmp_path / "locked.txt", "Hello.\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    # Faked: the tests may run as root, who can read any file.
    monkeypatch.setattr(corpus, "open", refuse, raising=False)
    message = one_line_error(lambda: read_all(path, workers=1), str(path))
    assert "permission denied" in message


def test_a_file_that_became_a_folder_is_one_line(tmp_path):
    path = write(tmp_path / "odd.txt", "Hello.\n")
    documents = read_documents(path, workers=1)
    path.unlink()
    path.mkdir()
    assert "is a folder" in one_line_error(lambda: list(documents), str(path))


def test_a_pipe_is_refused_before_reading(tmp_path):
    pipe = tmp_path / "pipe"
    try:
        os.mkfifo(pipe)
    except (AttributeError, OSError):
        pytest.skip("no named pipes here")
    assert "not a regular file" in one_line_error(lambda: corpus_files(pipe), str(pipe))


def test_a_corpus_without_sentences_is_one_line(tmp_path):
    path = write(tmp_path / "blank.txt", " \n\n\t\n")
    assert "no sentences" in one_line_error(lambda: read_all(path, workers=1), str(path))


@pytest.mark.parametrize("arguments, expected", [
    ({"text_format": "lines"}, "text_format='lines'"),
    ({"workers": 0}, "workers=0"),
    ({"workers": 1.5}, "workers=1.5"),
])
def test_bad_arguments_are_one_line(tmp_path, arguments, expected):
    path = write(tmp_path / "c.txt", "Hello.\n")
    one_line_error(lambda: read_documents(path, **arguments), expected)


# --------------------------------------------------------------------------- real data: Poe


@pytest.fixture(scope="module")
def poe(data_dir):
    """(path, text, documents) of the Works of Poe read as prose with two workers."""
    path = data_dir / "poe" / "poe.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path, path.read_text(encoding="utf-8"), read_all(path, text_format="prose", workers=2)


def test_poe_has_a_document_per_block_and_loses_no_text(poe):
    path, text, documents = poe
    lines = text.split("\n")
    blocks = sum(1 for non_blank, _ in itertools.groupby(lines, key=lambda line: bool(line.strip())) if non_blank)
    assert len(documents) == blocks
    assert detect_text_format(lines[:2000]) == "prose"
    sentences = [sentence for document in documents for sentence in document]
    assert 15_000 < len(sentences) < 20_000
    assert all(sentence and sentence == " ".join(sentence.split()) for sentence in sentences)
    assert "".join("".join(sentences).split()) == "".join(text.removeprefix("\ufeff").split())


def test_poe_sentences_come_out_whole(poe):
    _, _, documents = poe
    sentences = {sentence for document in documents for sentence in document}
    for known in [
        "The thousand injuries of Fortunato I had borne as I best could; but when he ventured upon insult, "
        "I vowed revenge.",
        "You, who so well know the nature of my soul, will not suppose, however, that I gave utterance to a threat.",
        "He had a weak point—this Fortunato—although in other regards he was a man to be respected and even feared.",
        "“How?” said he.",
        "And Darkness and Decay and the Red Death held illimitable dominion over all.",
    ]:
        assert known in sentences
    cask = next(document for document in documents if document[0].startswith("The thousand injuries"))
    assert cask[1].startswith("You, who so well know") and cask[-1].endswith("to him who has done the wrong.")


def test_poe_sentences_do_not_end_at_a_title_before_a_name(poe):
    _, _, documents = poe
    title = re.compile(r"(?<![^\W\d_])(?:Mr|Mrs|Dr|St)\.$")
    name = re.compile(r"[“‘\"'(]*[A-Z]")
    broken = [(first, second) for document in documents for first, second in itertools.pairwise(document)
              if title.search(first) and name.match(second)]
    assert broken == []
    assert sum(1 for document in documents for sentence in document if "Mr. " in sentence) > 100


# The sentences of the Works of Poe as the reader gave them before reading was made linear
# (pysbd's Segmenter, paragraph by paragraph): sha256 of json.dumps(documents, ensure_ascii=False),
# computed from that code once, before it changed. 4,328 documents, 17,352 sentences.
POE_DOCUMENTS_SHA256 = "ad98e37d729f73c30568548fef1623016a790843953800bd434220d6d697a61a"


def test_poe_sentences_are_those_read_before(poe):
    import hashlib
    import json

    _, _, documents = poe
    assert (len(documents), sum(map(len, documents))) == (4328, 17352)
    assert hashlib.sha256(json.dumps(documents, ensure_ascii=False).encode()).hexdigest() == POE_DOCUMENTS_SHA256


def test_the_fast_segmenter_gives_what_pysbd_gives_on_poe(poe):
    import pysbd

    from bertforge.data.segmenter import FastSegmenter

    _, text, _ = poe
    paragraphs = [" ".join(block.split()) for block in text.split("\n\n") if block.strip()][::8]
    reference, fast = pysbd.Segmenter(language="en", clean=False), FastSegmenter()
    for paragraph in paragraphs:
        expected = [sentence.strip() for sentence in reference.segment(paragraph)]
        assert fast.segment(paragraph) == [sentence for sentence in expected if sentence]
