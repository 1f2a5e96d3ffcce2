"""``bertforge.keras``: the public home of the Keras layer (built in :mod:`bertforge.apps.keras`).

``import bertforge.keras`` registers ``BertLayer`` with Keras (and picks Keras' torch
backend when ``KERAS_BACKEND`` is unset), which ``keras.saving.load_model`` needs.
"""

# Importing the app module registers the layer; BertLayer itself is built on first access.
from bertforge.apps.keras import __getattr__, load_model  # noqa: F401

__all__ = ["BertLayer", "load_model"]
