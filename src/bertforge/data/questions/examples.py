"""The one type every reader of question answering data returns: :class:`QuestionData`.

Each example is a question about one passage (its ``context``); labeled examples
carry their reference answers as ``(text, start)`` with ``start`` a character offset
into the context, and an empty list of answers for a question the passage cannot
answer (SQuAD v2.0's ``is_impossible``).
"""

from __future__ import annotations

from dataclasses import dataclass

Answer = tuple[str, int]  # (text, character offset of its start in the context)


@dataclass
class QuestionData:
    """Questions with their passages, and their reference answers when labeled.

    ``places[i]`` names example ``i`` in messages: ``line 4`` of a JSON Lines or CSV
    file, ``row 3`` of rows given in memory, ``question 5733be28 (article 2, paragraph
    4)`` of a SQuAD file.

    >>> data = QuestionData(["Who?"], ["Ann came."], ["q1"], [[("Ann", 0)]], ["line 1"], "dev.jsonl")
    >>> len(data), data.where(0), data.answerable, data.subset([0]).ids
    (1, 'dev.jsonl: line 1', [True], ['q1'])
    """

    questions: list[str]
    contexts: list[str]
    ids: list[str]
    answers: list[list[Answer]] | None  # None for unlabeled input; [] for a question with no answer
    places: list[str]
    path: str

    def __len__(self) -> int:
        return len(self.questions)

    def subset(self, indices) -> "QuestionData":
        indices = list(indices)

        def pick(values):
            return None if values is None else [values[i] for i in indices]

        return QuestionData(pick(self.questions), pick(self.contexts), pick(self.ids), pick(self.answers),
                            pick(self.places), self.path)

    def where(self, index: int) -> str:
        """``file: place`` of example ``index``, for messages."""
        return f"{self.path}: {self.places[index]}"

    @property
    def answerable(self) -> list[bool]:
        """Whether each question has an answer in its passage (all True when unlabeled)."""
        return [True] * len(self) if self.answers is None else [bool(answers) for answers in self.answers]

    @property
    def has_unanswerable(self) -> bool:
        """Whether some question has no answer in its passage (SQuAD v2.0 style data)."""
        return not all(self.answerable)

    @property
    def reference_texts(self) -> list[list[str]]:
        """The texts of every question's reference answers (``[]`` for no answer)."""
        return [[text for text, _ in answers] for answers in self.answers or [[] for _ in self.questions]]
