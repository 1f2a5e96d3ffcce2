"""Label values that mean "no target here", shared by the data and the model.

The data pipeline writes them and the model's losses read them, so neither layer
owns them: both import them from here.

>>> IGNORE_INDEX, NO_LABEL
(-100, -1)
"""

#: Label of a position without a target (as in torch's losses): tokens that are not masked.
IGNORE_INDEX = -100

#: Label value of an example without a label (``label=None``).
NO_LABEL = -1
