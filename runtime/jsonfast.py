"""JSON through the C accelerator alone.

``import json`` costs about 6 ms here because json.decoder and json.encoder import
``re`` (and with it enum and functools); every runtime command reads or writes JSON,
so this module drives ``_json``'s scanner and encoder directly.  Output matches
Go's encoding/json as runc produces it: compact ``{"a":1}`` and, for ``indent``,
two-space pretty printing with ``": "``.
"""

import _json


class DecodeError(ValueError):
    def __init__(self, msg, doc, pos):
        line = doc.count("\n", 0, pos) + 1
        col = pos - doc.rfind("\n", 0, pos)
        super().__init__(f"{msg}: line {line} column {col} (char {pos})")
        self.pos = pos


_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo = {}


_scan = _json.make_scanner(_Context())
_WS = " \t\n\r"


def loads(text):
    """Parse a JSON document (str or UTF-8 bytes)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError("invalid UTF-8", "", 0) from e
    start = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, start)
    except StopIteration as e:
        raise DecodeError("Expecting value", text, e.value) from None
    except RecursionError:
        raise DecodeError("nested too deeply", text, start) from None
    except (ValueError, SystemError):
        # The scanner builds its error from json.decoder only if that module is
        # already loaded; load it now that the error path is taken.
        import json.decoder

        try:
            _scan(text, start)
        except StopIteration as e:
            raise DecodeError("Expecting value", text, e.value) from None
        except json.decoder.JSONDecodeError as e:
            raise DecodeError(e.msg, text, e.pos) from None
        raise
    finally:
        _Context.memo.clear()
    if text[end:].strip(_WS):
        raise DecodeError("Extra data", text, end)
    return obj


def _default(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(
    None, _default, _json.encode_basestring, None, ":", ",", False, False, True
)
_string = _json.encode_basestring


def dumps(obj, indent=False):
    """Serialize ``obj``; compact unless ``indent`` (two spaces, as runc prints)."""
    if not indent:
        return "".join(_encode(obj, 0))
    out = []
    _pretty(obj, out, "\n")
    return "".join(out)


def _pretty(obj, out, nl):
    if isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        inner = nl + "  "
        sep = "{"
        for key, value in obj.items():
            out.append(sep + inner + _string(str(key)) + ": ")
            _pretty(value, out, inner)
            sep = ","
        out.append(nl + "}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        inner = nl + "  "
        sep = "["
        for value in obj:
            out.append(sep + inner)
            _pretty(value, out, inner)
            sep = ","
        out.append(nl + "]")
    else:
        out.append("".join(_encode(obj, 0)))
