"""The one error type users see.

Every check on user input raises :class:`BertforgeError` with a message that fits
on one line and says what was wrong and what to do. The command line prints that
line alone (the traceback only under ``--debug``); library users can catch it.
"""


class BertforgeError(ValueError):
    """Bad input or a failed job, explained in one line.

    >>> try:
    ...     raise BertforgeError("vocab.txt: line 3 is empty; pass a WordPiece vocabulary")
    ... except BertforgeError as error:
    ...     print(error)
    vocab.txt: line 3 is empty; pass a WordPiece vocabulary
    """


class UsageError(BertforgeError):
    """An option with a value outside what it allows, found before any work: the command line exits 2.

    >>> issubclass(UsageError, BertforgeError)
    True
    """
