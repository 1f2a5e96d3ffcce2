"""Questions about passages for extractive question answering: read them, with or without answers.

SQuAD JSON (v1.1, v2.0), JSON Lines and CSV rows, and rows in memory become
:class:`QuestionData`: questions, their passages and their reference answers as
character spans. The pieces live in ``examples`` (the type) and ``read``.

>>> data = read_questions([{"question": "Who?", "context": "Ann came.", "answer_text": "Ann", "answer_start": 0}])
>>> data.answers
[[('Ann', 0)]]
"""

from bertforge.data.questions.examples import Answer, QuestionData
from bertforge.data.questions.read import looks_like_questions, read_questions, read_unanswered

__all__ = ["Answer", "QuestionData", "looks_like_questions", "read_questions", "read_unanswered"]
