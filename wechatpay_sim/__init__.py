"""A local WeChat Pay API v3 simulator (refunds, payments, bills, complaints and notifications)
for development and tests.

Not part of the Lambda bundle. See README.md for the control API.
"""
from .keys import KeySet, generate_keyset, load_keyset
from .server import Simulator
from .state import ApiError

__all__ = ["ApiError", "KeySet", "Simulator", "generate_keyset", "load_keyset"]
