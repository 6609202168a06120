"""Removing active content from graded notebooks before anyone renders them.

A submission's kernel is hostile: it can emit ``text/html`` with a ``<script>``
or an ``onerror=`` handler, ``application/javascript``, an SVG with a script,
a widget view, a stream whose name breaks out of an HTML attribute; and the
learner's markdown cells can hold raw HTML and ``javascript:`` links.
nbconvert renders all of that as it is (its ``sanitize_html`` is off, and
nbgrader's feedback template does not use it), so it would run in the browser
of whoever opens the feedback, or the autograded notebook in the formgrader.

:func:`sanitize_notebook` rewrites a graded notebook so that what the grader
writes (the autograded notebook, the HTML feedback made from it) holds no
active content:

* outputs keep only inert MIME types (``text/plain``, ``text/latex``,
  ``image/png``/``image/jpeg`` holding base64, and ``text/html`` cleaned with
  `bleach <https://bleach.readthedocs.io>`_ to an allow-list of formatting
  tags and attributes, links limited to ``http``/``https``/``mailto``);
  JavaScript, SVG, widget views and unknown types are dropped and named in a
  plain-text note; output fields are checked for type and form;
* a markdown or raw cell whose rendering (nbconvert's own markdown renderer)
  would contain anything but formatting (a script, an event handler, a
  ``javascript:`` or ``data:`` link, a frame, a style) is shown as plain
  text instead, with a note; attachments that are not images are dropped;
* cell ids, tags and the notebook's widget state are normalised or dropped.

Honest notebooks come out unchanged except for ``text/html`` outputs (cleaned,
so a pandas table loses its ``<style>``). Standard library plus ``bleach`` and
nbconvert's markdown renderer, both nbconvert dependencies.

Examples
--------
>>> import nbformat
>>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("**ok** <img src=x onerror=alert(1)>")])
>>> notes = sanitize_notebook(nb)
>>> "onerror" in nb.cells[0].source, "&lt;img" in nb.cells[0].source, len(notes)
(True, True, 1)
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import uuid
from html.parser import HTMLParser

__all__ = ["clean_html", "html_problem", "markdown_problem", "sanitize_notebook"]

#: Formatting tags allowed in rendered markdown and ``text/html`` outputs.
ALLOWED_TAGS = frozenset("""
    a abbr b blockquote br caption center code col colgroup dd del details div dl dt em
    h1 h2 h3 h4 h5 h6 hr i img ins kbd li ol p pre q s samp small span strike strong sub summary sup
    table tbody td tfoot th thead tr tt u ul var
""".split())
#: Attributes allowed on them (URLs are checked separately).
ALLOWED_ATTRIBUTES = frozenset("""
    href src alt title id class name align colspan rowspan width height start border open
""".split())
_URL_ATTRIBUTES = {"href", "src"}
_LINK_SCHEMES = {"http", "https", "mailto"}
_IMAGE_DATA = re.compile(r"^data:image/(png|jpeg|gif);base64,[a-z0-9+/=\s]*$", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_SAFE_OUTPUT_TYPES = ("text/plain", "text/latex", "image/png", "image/jpeg")
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TAG = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _url_ok(name: str, value: str) -> bool:
    compact = "".join(ch for ch in value if ord(ch) > 0x20)
    if name == "src" and _IMAGE_DATA.match(compact):
        return True
    match = _SCHEME.match(compact)
    head = re.split(r"[/?#]", compact, maxsplit=1)[0]
    if match is None:
        return ":" not in head  # relative, or a fragment
    return name == "href" and match.group(1).lower() in _LINK_SCHEMES


class _Checker(HTMLParser):
    """Finds the first thing in an HTML fragment that is not plain formatting."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.problem = None

    def _flag(self, why: str) -> None:
        if self.problem is None:
            self.problem = why

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self._flag(f"a <{tag}> element")
            return
        for name, value in attrs:
            name = name.lower()
            if name not in ALLOWED_ATTRIBUTES:
                self._flag(f"a {name}= attribute on <{tag}>")
            elif name in _URL_ATTRIBUTES and not _url_ok(name, value or ""):
                self._flag(f"a {name}= URL that is not a plain link ({(value or '')[:40]!r})")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag not in ALLOWED_TAGS:
            self._flag(f"a </{tag}> tag")

    def handle_data(self, data):
        if "<" in data:  # text the parser did not take for a tag: a browser might
            self._flag("malformed markup")

    def handle_decl(self, decl):
        self._flag("a markup declaration")

    def handle_pi(self, data):
        self._flag("a processing instruction")

    def unknown_decl(self, data):
        self._flag("a markup declaration")


def html_problem(fragment: str) -> str | None:
    """``None`` if an HTML fragment is plain formatting, else the first problem found.

    >>> html_problem('<p><a href="https://example.org">x</a></p>') is None
    True
    >>> html_problem('<a href="JaVa&#115;cript:alert(1)">x</a>')
    "a href= URL that is not a plain link ('JaVascript:alert(1)')"
    """
    checker = _Checker()
    try:
        checker.feed(fragment)
        checker.close()
    except Exception as exc:  # noqa: BLE001 - unparseable is unsafe
        return f"markup that cannot be parsed ({type(exc).__name__})"
    return checker.problem


def _render_markdown(source: str, attachments=None) -> str:
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=False, attachments=attachments or {})
    return MarkdownWithMath(renderer=renderer).render(source)


def markdown_problem(source: str, attachments=None) -> str | None:
    """``None`` if a markdown cell renders (as nbconvert renders it) to plain formatting, else why not.

    >>> markdown_problem("# Title\\n\\nSee [the docs](https://scikit-image.org) and *this*.") is None
    True
    >>> markdown_problem("[click](javascript:alert(1))")
    "a href= URL that is not a plain link ('javascript:alert(1)')"
    """
    if "<" not in source and "]" not in source:
        return None  # no raw HTML and no link or image: markdown alone makes only formatting
    try:
        rendered = _render_markdown(source, attachments)
    except Exception as exc:  # noqa: BLE001 - a missing attachment, a renderer error
        return f"markdown that cannot be rendered ({type(exc).__name__})"
    return html_problem(rendered)


def _url_filter(tag, name, value):
    if name in _URL_ATTRIBUTES:
        return _url_ok(name, value)
    return name in ALLOWED_ATTRIBUTES


_ACTIVE_ELEMENT = re.compile(r"<(script|style|template|iframe|object|embed|svg|math)\b.*?</\1\s*>",
                             re.IGNORECASE | re.DOTALL)


def clean_html(fragment: str) -> str:
    """An HTML fragment reduced to :data:`ALLOWED_TAGS` and plain links (bleach).

    >>> clean_html('<b onclick="x()">bold</b><script>alert(1)</script>')
    '<b>bold</b>'
    """
    import bleach

    fragment = _ACTIVE_ELEMENT.sub("", fragment)  # their text would show otherwise
    cleaned = bleach.clean(fragment, tags=ALLOWED_TAGS, attributes=_url_filter,
                           protocols=list(_LINK_SCHEMES) + ["data"], strip=True, strip_comments=True)
    return cleaned if html_problem(cleaned) is None else html.escape(cleaned)


def _text(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def _is_base64(value) -> bool:
    text = _text(value)
    if text is None:
        return False
    try:
        base64.b64decode("".join(text.split()), validate=True)
        return True
    except (binascii.Error, ValueError):
        return False


def _clean_output(out, removed: list):
    """A safe copy of one output, or None when nothing of it may be kept."""
    from nbformat.v4 import new_output

    kind = out.get("output_type")
    if kind == "stream":
        text = _text(out.get("text"))
        if text is None:
            removed.append("a malformed stream output")
            return None
        name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
        return new_output("stream", name=name, text=text)
    if kind == "error":
        trace = out.get("traceback")
        trace = [t for t in trace if isinstance(t, str)] if isinstance(trace, list) else []
        return new_output("error", ename=str(out.get("ename", "")), evalue=str(out.get("evalue", "")),
                          traceback=trace)
    if kind not in ("display_data", "execute_result"):
        removed.append(f"an output of unknown type {str(kind)[:40]!r}")
        return None
    data = out.get("data") if isinstance(out.get("data"), dict) else {}
    kept, dropped = {}, []
    for mime, value in data.items():
        if mime in ("image/png", "image/jpeg"):
            if _is_base64(value):
                kept[mime] = "".join(_text(value).split())
            else:
                dropped.append(f"{mime} that is not base64")
        elif mime in ("text/plain", "text/latex"):
            text = _text(value)
            if text is not None:
                kept[mime] = text
        elif mime == "text/html":
            text = _text(value)
            if text is not None:
                safe = clean_html(text)
                if safe != text:
                    dropped.append("scripts or other active parts of text/html")
                kept[mime] = safe
        else:
            dropped.append(str(mime)[:60])
    if dropped:
        removed.extend(dropped)
        note = "[removed by the grader: " + ", ".join(sorted(set(dropped))) + "]"
        kept["text/plain"] = (kept["text/plain"] + "\n" + note) if "text/plain" in kept else note
    metadata = {}
    meta = out.get("metadata") if isinstance(out.get("metadata"), dict) else {}
    for mime in ("image/png", "image/jpeg"):
        sizes = meta.get(mime) if isinstance(meta.get(mime), dict) else {}
        dims = {k: int(v) for k, v in sizes.items() if k in ("width", "height")
                and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 100_000}
        if mime in kept and dims:
            metadata[mime] = dims
    if kind == "execute_result":
        count = out.get("execution_count")
        count = count if isinstance(count, int) and not isinstance(count, bool) else None
        return new_output("execute_result", data=kept, metadata=metadata, execution_count=count)
    return new_output("display_data", data=kept, metadata=metadata)


def _plain_markdown(source: str, why: str) -> str:
    return (f"**[The grader shows this cell as plain text: it contained {html.escape(why)}.]**\n\n"
            f"<pre>{html.escape(source)}</pre>\n")


def sanitize_notebook(nb) -> list:
    """Remove active content from a notebook in place; returns notes on what was changed.

    Cells whose ids are missing, malformed or repeated get fresh ones (a notebook
    of format 4.5 or later must have them), tags that are not plain words are
    dropped, and so is the notebook's widget state.
    """
    notes = []
    seen_ids = set()
    if isinstance(nb.get("metadata"), dict):
        nb.metadata.pop("widgets", None)
    for index, cell in enumerate(nb.cells):
        where = f"cell {index + 1}"
        meta = cell.get("metadata", {})
        if isinstance(meta.get("tags"), list):
            tags = [t for t in meta["tags"] if isinstance(t, str) and _TAG.match(t)]
            if len(tags) != len(meta["tags"]):
                notes.append(f"{where}: tags that are not plain words were dropped")
            meta["tags"] = tags
        elif "tags" in meta:
            del meta["tags"]
        if nb.get("nbformat_minor", 0) >= 5 or "id" in cell:
            cid = cell.get("id")
            if not (isinstance(cid, str) and _CELL_ID.match(cid)) or cid in seen_ids:
                cell["id"] = uuid.uuid4().hex[:8]
                while cell["id"] in seen_ids:
                    cell["id"] = uuid.uuid4().hex[:8]
            seen_ids.add(cell["id"])
        if cell.get("cell_type") == "code":
            removed: list = []
            outputs = [_clean_output(o, removed) for o in cell.get("outputs", []) if isinstance(o, dict)]
            cell["outputs"] = [o for o in outputs if o is not None]
            if removed:
                notes.append(f"{where}: active content removed from its outputs ({', '.join(sorted(set(removed)))})")
        elif cell.get("cell_type") in ("markdown", "raw"):
            attachments = cell.get("attachments")
            if isinstance(attachments, dict):
                keep = {
                    name: {m: "".join(_text(v).split()) for m, v in bundle.items()
                           if m in ("image/png", "image/jpeg", "image/gif") and _is_base64(v)}
                    for name, bundle in attachments.items() if isinstance(bundle, dict) and isinstance(name, str)
                }
                keep = {k: v for k, v in keep.items() if v}
                if keep != attachments:
                    notes.append(f"{where}: attachments that are not images were dropped")
                cell["attachments"] = keep
                if not keep:
                    del cell["attachments"]
            source = _text(cell.get("source")) or ""
            if cell.get("cell_type") == "raw":
                # raw cells are copied into HTML as they are when they name an HTML format
                for key in ("format", "raw_mimetype"):
                    meta.pop(key, None)
                continue
            why = markdown_problem(source, cell.get("attachments"))
            if why is not None:
                cell["source"] = _plain_markdown(source, why)
                cell.pop("attachments", None)
                notes.append(f"{where}: markdown shown as plain text ({why})")
    return notes
