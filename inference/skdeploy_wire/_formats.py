"""Content negotiation (Content-Type, charset, Accept) and the format tables behind it."""

import codecs
import contextlib
import functools
from http import HTTPStatus
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._carriers import Batch, Prediction, Rejection
from ._encoding import _encode_csv, _encode_json, _encode_jsonlines, _encode_npy
from ._limits import (
    _CHARSET_NAME,
    CHARSET_NAMES,
    CSV,
    CSV_CHARSETS,
    JSON,
    JSON_CHARSETS,
    JSONLINES,
    JSONLINES_ALIASES,
    NPY,
)
from ._parsing import _decode_csv, _parse_json, _parse_jsonlines, _parse_npy


def _split_media_type(value: str) -> Tuple[str, List[Tuple[str, str]]]:
    """``type/subtype; key=value; ...`` as the lower-cased type and its (key, value) pairs.

    Keys are lower-cased; a value loses the spaces and double quotes around it.
    """
    parts = value.split(";")
    pairs = []
    for part in parts[1:]:
        key, _, val = part.partition("=")
        pairs.append((key.strip().lower(), val.strip().strip('"')))
    return parts[0].strip().lower(), pairs


@functools.lru_cache(maxsize=256)
def _parse_media_type(value: str) -> Tuple[str, Dict[str, str]]:
    """Split ``type/subtype; key=value`` into a lower-cased type and its parameters.

    Cached per header value (clients send the same few); callers must not change the dict.
    """
    media_type, pairs = _split_media_type(value)
    return media_type, dict(pairs)


@functools.lru_cache(maxsize=256)
def _request_type(
    content_type: str,
) -> Union[Tuple[str, str, Optional[bool], Optional[bool]], Rejection]:
    """What a request Content-Type asks for: (media type, codec name, probabilities, header).

    The media type of JSON Lines is :data:`JSONLINES` for any of its names. ``probabilities``
    and ``header`` (CSV's ``header=present``/``absent``, RFC 4180) are None when not given.
    Or the Rejection for an unsupported type, charset or parameter. Cached per header value, so
    the common request pays one dictionary lookup for all of it; the Rejection is never changed.
    """
    media_type, pairs = _split_media_type(content_type)
    if media_type in JSONLINES_ALIASES:
        media_type = JSONLINES
    if media_type not in REQUEST_TYPES:
        return Rejection(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported Content-Type %r; send %s" % (content_type, ", ".join(REQUEST_TYPES)),
        )
    names = [key for key, _ in pairs]
    params = dict(pairs)
    checked = [
        ("charset", HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
        ("probabilities", HTTPStatus.BAD_REQUEST),
    ]
    if media_type == CSV:
        checked.append(("header", HTTPStatus.BAD_REQUEST))
    for name, status in checked:
        if names.count(name) > 1:
            return Rejection(
                status, "Content-Type parameter %s is given %d times" % (name, names.count(name))
            )
    probabilities = _flag(params["probabilities"]) if "probabilities" in params else None
    if probabilities is None and "probabilities" in params:
        return Rejection(
            HTTPStatus.BAD_REQUEST,
            "Content-Type parameter probabilities must be true or false, got %r"
            % params["probabilities"],
        )
    header = None
    if media_type == CSV and "header" in params:
        header = {"present": True, "absent": False}.get(params["header"].strip().lower())
        if header is None:
            return Rejection(
                HTTPStatus.BAD_REQUEST,
                "Content-Type parameter header must be present or absent, got %r"
                % params["header"],
            )
    encoding = "utf-8"
    if "charset" in params:
        charset = _charset(media_type, params["charset"])
        if isinstance(charset, Rejection):
            return charset
        encoding = charset
    return media_type, encoding, probabilities, header


def _charset(media_type: str, charset: str) -> Union[str, Rejection]:
    """The codec name for a charset parameter, if ``media_type`` may be sent in it."""
    if media_type == NPY:
        return Rejection(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "%s is binary and takes no charset, got charset %r" % (NPY, charset),
        )
    allowed = CSV_CHARSETS if media_type == CSV else JSON_CHARSETS
    name = None
    if _CHARSET_NAME.match(charset):  # Python's lookup would also take "'utf-8'" or "utf 8!"
        with contextlib.suppress(LookupError):
            name = codecs.lookup(charset).name  # one name for every alias: UTF8, latin-1, ...
    if name not in allowed:
        return Rejection(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported charset %r for %s; send %s"
            % (charset, media_type, " or ".join(CHARSET_NAMES[media_type])),
        )
    return name


def _flag(value: str) -> Optional[bool]:
    """``true``/``false`` (any case) as a bool; anything else is None."""
    return {"true": True, "false": False}.get(value.strip().lower())


@functools.lru_cache(maxsize=256)
def _negotiate(accept: Optional[str]) -> Optional[str]:
    """Pick the response type from an Accept header; None when nothing offered is supported.

    Entries are tried by descending q-value, then in the client's order; an unreadable q counts
    as 1. ``q=0`` refuses a type, also for wildcards: ``*/*`` (and ``application/*``) give the
    first of JSON, CSV, NPY, JSON Lines not refused, ``text/*`` gives CSV. A JSON Lines alias
    is answered as itself.
    """
    if accept is None or not accept.strip():
        return JSON
    offers = []
    refused = set()
    for position, entry in enumerate(accept.split(",")):
        media_type, params = _parse_media_type(entry)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality <= 0:
            refused.add(media_type)
        elif media_type:
            offers.append((-quality, position, media_type))
    for _, _, media_type in sorted(offers):
        candidates: Tuple[str, ...]
        if media_type in ("*/*", "*"):
            candidates = RESPONSE_TYPES
        elif media_type in JSONLINES_ALIASES:  # answered under the name the client used
            candidates = (media_type,)
        else:
            candidates = tuple(
                candidate
                for candidate in RESPONSE_TYPES
                if media_type in (candidate, candidate.split("/")[0] + "/*")
            )
        offered = {entry for _, _, entry in offers}
        for candidate in candidates:
            if not _refused(candidate, refused, offered):
                return candidate
    return None


def _refused(candidate: str, refused: "set[str]", offered: "set[str]") -> bool:
    """Whether the most specific Accept entry matching ``candidate`` has ``q=0`` (RFC 7231)."""
    for entry in (candidate, candidate.split("/")[0] + "/*", "*/*", "*"):
        if entry in refused:
            return True
        if entry in offered:
            return False
    return False


#: Request media type -> ``decoder(body, header)``, a :class:`Batch` or a :class:`Rejection`. The
#: body is text (decoded with the request's charset, never blank), or bytes for BINARY_TYPES;
#: ``header`` is CSV's ``header`` parameter (None when not given; other types ignore it). The
#: order of the keys is the order a 415 lists them. Adding a format is a function and an entry
#: here (for a text type, also its charsets: CSV_CHARSETS or JSON_CHARSETS, and CHARSET_NAMES).
DECODERS: Dict[str, Callable[[Any, Optional[bool]], Union[Batch, Rejection]]] = {
    JSON: _parse_json,
    CSV: _decode_csv,
    NPY: _parse_npy,
    JSONLINES: _parse_jsonlines,
}


#: Response media type -> ``encoder(prediction)``: the body (str or bytes), or a Rejection. The
#: order of the keys is the order a wildcard (``*/*``) prefers them.
ENCODERS: Dict[str, Callable[[Prediction], Union[str, bytes, Rejection]]] = {
    JSON: _encode_json,
    CSV: _encode_csv,
    NPY: _encode_npy,
    JSONLINES: _encode_jsonlines,
}


#: The request types, in the order a 415 lists them.
REQUEST_TYPES = tuple(DECODERS)


#: The response types, in the order a wildcard (``*/*``) prefers them.
RESPONSE_TYPES = tuple(ENCODERS)


#: An Accept naming a JSON Lines alias is encoded as JSON Lines and answered under that name.
_FORMAT_OF = {alias: JSONLINES for alias in JSONLINES_ALIASES}
