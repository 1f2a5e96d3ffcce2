"""The tokenizer files of a model folder: which one to read, reading it into a BERT backend, writing it.

A standard BERT folder keeps its tokenizer as ``tokenizer.json`` (the ``tokenizers``
library's own file) or ``vocab.txt`` (one WordPiece token per line), its settings in
``tokenizer_config.json``, and its weights beside them in one of ``WEIGHT_FILES``.
Each reader here fails with one line naming the file and the fix. This module knows
nothing of torch.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "vocab.txt").write_text("[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\nhello\\n")
>>> directory, file = tokenizer_file(folder)
>>> file.name, read_vocab_txt(file)["hello"]
('vocab.txt', 4)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from tokenizers import Tokenizer as Backend
from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from bertforge.errors import BertforgeError
from bertforge.files import write_text_atomically

# A folder holding one of these is a standard model directory (whatever else lies beside it).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# The special tokens' roles; the first four must be in every BERT vocabulary.
ROLES = ("pad", "unk", "cls", "sep", "mask")
REQUIRED_ROLES = ("pad", "unk", "cls", "sep")
DEFAULT_MAX_LENGTH = 512


class TokenizerFiles(NamedTuple):
    """What a tokenizer file and the ``tokenizer_config.json`` beside it say."""

    backend: Backend
    special_tokens: dict[str, str]  # role -> token text
    model_max_length: int
    file: Path


def tokenizer_file(path: Path) -> tuple[Path, Path]:
    """The folder and the file to read: a folder's ``tokenizer.json``, else its ``vocab.txt``,
    or the file given."""
    if not path.exists():
        raise BertforgeError(
            f"{path}: no such file or directory; pass a BERT model directory "
            "(with vocab.txt or tokenizer.json) or the path of one of those files"
        )
    if not path.is_dir():
        return path.parent, path
    for name in ("tokenizer.json", "vocab.txt"):
        if (path / name).is_file():
            return path, path / name
    raise BertforgeError(
        f"{path}: no vocab.txt or tokenizer.json in this directory; "
        "pass a BERT model directory or the path of its vocabulary file"
    )


def read_tokenizer_files(directory: Path, file: Path, do_lower_case: bool | None,
                         strip_accents: bool | None) -> TokenizerFiles:
    """A BERT backend from ``file`` with the settings of ``tokenizer_config.json`` in
    ``directory``, in the order of precedence ``Tokenizer.from_pretrained`` describes."""
    config = read_tokenizer_config(directory / "tokenizer_config.json")

    names = {r: token_name(config.get(f"{r}_token")) or f"[{r.upper()}]" for r in ROLES}
    chinese = config.get("tokenize_chinese_chars", True)
    if do_lower_case is None and "do_lower_case" in config:
        do_lower_case = bool(config["do_lower_case"])
    # strip_accents=null in the config is a real setting ("follow lower-casing").
    accents_given = strip_accents is not None or "strip_accents" in config
    if strip_accents is None:
        strip_accents = config.get("strip_accents")

    if file.suffix == ".json":
        backend = load_tokenizer_json(file)
        norm = backend.normalizer
        if isinstance(norm, normalizers.BertNormalizer):
            backend.normalizer = normalizers.BertNormalizer(
                clean_text=norm.clean_text,
                handle_chinese_chars=bool(chinese) if "tokenize_chinese_chars" in config
                else norm.handle_chinese_chars,
                strip_accents=strip_accents if accents_given else norm.strip_accents,
                lowercase=norm.lowercase if do_lower_case is None else do_lower_case,
            )
        elif do_lower_case is not None or accents_given:
            raise BertforgeError(
                f"{file}: normalizer is {type(norm).__name__}, not BertNormalizer, so "
                "do_lower_case/strip_accents cannot be applied; drop those settings"
            )
    else:
        vocab = read_vocab_txt(file)
        missing = [names[r] for r in REQUIRED_ROLES if names[r] not in vocab]
        if missing:
            raise BertforgeError(
                f"{file}: no {', '.join(missing)} token in this vocabulary; pass a BERT "
                "WordPiece vocab.txt (one token per line, with [PAD], [UNK], [CLS], [SEP])"
            )
        backend = bert_pipeline(
            WordPiece(vocab, unk_token=names["unk"], continuing_subword_prefix="##",
                      max_input_chars_per_word=100),
            lowercase=True if do_lower_case is None else do_lower_case,
            strip_accents=strip_accents,
            handle_chinese_chars=bool(chinese),
        )
    max_length = config.get("model_max_length")
    # transformers writes 1e30 for "no limit"; BERT's position table says 512.
    if not isinstance(max_length, int) or not 0 < max_length <= 1_000_000:
        max_length = DEFAULT_MAX_LENGTH
    return TokenizerFiles(backend, names, max_length, file)


def write_tokenizer_files(directory: Path, backend: Backend, settings: dict[str, Any],
                          special_tokens: dict[str, str], source: str) -> Path:
    """Write ``vocab.txt``, ``tokenizer.json``, ``tokenizer_config.json`` (with ``settings``)
    and ``special_tokens_map.json`` into ``directory``, each atomically; ``source`` names
    the tokenizer in errors."""
    if directory.exists() and not directory.is_dir():
        raise BertforgeError(f"{directory}: exists and is not a directory; pass a directory path")
    directory.mkdir(parents=True, exist_ok=True)

    vocab = backend.get_vocab(with_added_tokens=True)
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise BertforgeError(
            f"{source}: token ids are not contiguous from 0, so no vocab.txt can "
            "describe them; rebuild the tokenizer without gaps in its ids"
        )
    state = json.loads(backend.to_str())
    # Truncation and padding are per-call choices, not part of the vocabulary.
    state["truncation"] = None
    state["padding"] = None
    config = {
        "tokenizer_class": "BertTokenizer",
        **settings,
        "clean_up_tokenization_spaces": True,
        **{f"{role}_token": token for role, token in special_tokens.items()},
    }
    special_map = {f"{role}_token": token for role, token in special_tokens.items()}

    write_text_atomically(directory / "vocab.txt", "".join(t + "\n" for t, _ in by_id))
    write_text_atomically(directory / "tokenizer.json", json.dumps(state, ensure_ascii=False, indent=2))
    write_text_atomically(directory / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")
    write_text_atomically(directory / "special_tokens_map.json", json.dumps(special_map, indent=2) + "\n")
    return directory


def bert_pipeline(model: WordPiece, *, lowercase: bool, strip_accents: bool | None,
                  handle_chinese_chars: bool) -> Backend:
    """A backend around ``model`` with BERT's normalizer, pre-tokenizer and decoder.

    >>> backend = bert_pipeline(WordPiece({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"),
    ...                         lowercase=True, strip_accents=None, handle_chinese_chars=True)
    >>> backend.encode("Hello there").tokens
    ['hello', '[UNK]']
    """
    backend = Backend(model)
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=handle_chinese_chars,
        strip_accents=strip_accents, lowercase=lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def apply_bert_layout(backend: Backend, names: dict[str, str], ids: dict[str, int | None]) -> None:
    """Make ``backend`` give ``[CLS] A [SEP] (B [SEP])`` with segments 0 and 1, unpadded and
    uncut; ``names`` and ``ids`` map each special role to its token and id (None: absent)."""
    # Special tokens must be matched whole in raw text and skipped by decode,
    # exactly as transformers does, or ids would differ on texts containing them.
    present = [names[r] for r in ROLES if ids[r] is not None]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in present])
    cls_token, sep_token = names["cls"], names["sep"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, ids["cls"]), (sep_token, ids["sep"])],
    )
    if backend.decoder is None:
        backend.decoder = decoders.WordPiece(prefix="##")
    # Padding is done in numpy by the caller (cheaper than letting the backend build
    # padded Python lists); truncation is set per call.
    backend.no_padding()
    backend.no_truncation()


def read_vocabulary(file: Path) -> dict[str, int]:
    """``{token: id}`` of a ``tokenizer.json`` (added tokens included) or a ``vocab.txt``.

    >>> import tempfile
    >>> vocab = Path(tempfile.mkdtemp()) / "vocab.txt"
    >>> _ = vocab.write_text("[PAD]\\n[UNK]\\nthe\\n")
    >>> read_vocabulary(vocab)
    {'[PAD]': 0, '[UNK]': 1, 'the': 2}
    """
    if file.suffix == ".json":
        return load_tokenizer_json(file).get_vocab(with_added_tokens=True)
    return read_vocab_txt(file)


def read_vocab_txt(file: Path) -> dict[str, int]:
    """``{token: line index}`` of a ``vocab.txt``; an empty, repeated or non-UTF-8 line is an error."""
    fix = "pass a BERT WordPiece vocab.txt (UTF-8 text, one token per line)"
    try:
        data = file.read_bytes()
    except OSError as error:
        raise BertforgeError(f"{file}: cannot be read ({error.strerror}); {fix}") from None
    if b"\x00" in data:
        raise BertforgeError(f"{file}: is a binary file, not a vocabulary; {fix}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise BertforgeError(f"{file}: line {line} is not UTF-8 text; {fix}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last token
    if not lines:
        raise BertforgeError(f"{file}: is empty; {fix}")
    vocab: dict[str, int] = {}
    for index, line in enumerate(lines):
        token = line.rstrip("\r")
        if not token:
            raise BertforgeError(f"{file}: line {index + 1} is empty; {fix}")
        if token in vocab:
            raise BertforgeError(
                f"{file}: line {index + 1} repeats the token {token!r} of line "
                f"{vocab[token] + 1}; {fix} with each token once"
            )
        vocab[token] = index
    return vocab


def load_tokenizer_json(file: Path) -> Backend:
    """The backend a ``tokenizer.json`` describes."""
    try:
        backend = Backend.from_file(str(file))
    except Exception as error:  # the Rust loader raises a bare Exception
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BertforgeError(
            f"{file}: not a readable tokenizer.json ({reason}); pass a tokenizer.json "
            "saved by the tokenizers library, or the model's vocab.txt"
        ) from None
    return backend


def read_tokenizer_config(file: Path) -> dict[str, Any]:
    """The settings in a ``tokenizer_config.json``; ``{}`` when there is none.

    >>> read_tokenizer_config(Path("no/such/tokenizer_config.json"))
    {}
    """
    if not file.is_file():
        return {}
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = str(error).splitlines()[0]
        raise BertforgeError(f"{file}: not valid JSON ({reason}); fix or delete this file") from None
    if not isinstance(config, dict):
        raise BertforgeError(f"{file}: holds a {type(config).__name__}, not a JSON object; "
                             "fix or delete this file")
    return config


def token_name(value: Any) -> str | None:
    """A special token's text as ``tokenizer_config.json`` writes it, or None.

    >>> token_name("[CLS]"), token_name({"content": "[SEP]", "lstrip": False}), token_name("")
    ('[CLS]', '[SEP]', None)
    """
    # Older transformers releases write special tokens as {"content": ..., ...} objects.
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None
