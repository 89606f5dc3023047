"""A small JSON Schema (draft 2020-12) validator for the schemas in ``oci-schemas/``.

Every ``create`` validates config.json, and ``import jsonschema`` alone costs more
than runc's whole create, so this module interprets just the keywords those
schemas use (`_KEYWORDS`).  A schema node using anything else is an error, raised
before the node is ever applied: no schema can rely on a check that is silently
skipped here.  Nodes are vetted when validation first reaches them, which saves
walking all of every file in every process; `vet_all` (run by the tests) vets
every node of every file.  tests/unit/test_schema.py checks that the verdicts
equal jsonschema's.

Each process validates one document, so the schema is interpreted directly
rather than compiled.  Validation stops at the first error in document order
(an object's required properties, then its members in the order they appear,
then the rules relating members: anyOf, if/then/else).
The failure path is built while unwinding, so a valid document costs no path
bookkeeping.

``re`` is not used at all: importing it costs several milliseconds, more than
the whole validation, so ``pattern`` runs on `_Regex`, which implements the
subset of Python's regular expressions the schemas need with ``re.search``
semantics.
"""

import os

_KEYWORDS = frozenset({
    "$schema", "$id", "$comment", "title", "description", "$defs", "$ref", "type", "enum",
    "const", "minimum", "maximum", "minLength", "pattern", "minItems", "items", "properties",
    "required", "additionalProperties", "propertyNames", "dependentRequired", "anyOf", "if",
    "then", "else",
})
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "$defs"})


class SchemaError(Exception):
    """A schema file is missing, malformed or uses something unsupported here."""


class Failure:
    """The first error found: ``path`` (keys and indexes from the root) and ``message``."""

    __slots__ = ("path", "message")

    def __init__(self, message):
        self.path = []  # reversed until `check` returns it
        self.message = message

    def __repr__(self):
        return f"Failure({path_str(self.path)!r}, {self.message!r})"


def check(instance, schema="config.json", strict_int=False):
    """Validate a decoded JSON document against a schema of ``oci-schemas/``.

    `schema` names a file, or a part of one as in ``config.json#/$defs/Process``
    (e.g. for the process.json of ``exec --process``).  Returns None if the
    document is valid, else the first `Failure`.  ``strict_int`` refuses floats
    where integers are expected (JSON Schema counts 1.0 as an integer; Go, and so
    runc, do not).
    """
    node, base = _target(schema, schema.partition("#")[0])
    failure = _check(instance, node, base, strict_int)
    if failure is not None:
        failure.path.reverse()
    return failure


def vet_all():
    """Vet every node of every schema file, resolve every ``$ref`` and parse
    every pattern (for tests: validation vets only the nodes it reaches)."""
    for name in sorted(f for f in os.listdir(_schema_dir()) if f.endswith(".json")):
        stack = [_document(name)]
        while stack:
            node = stack.pop()
            if type(node) is bool:
                continue
            _vet(node, name)
            if "$ref" in node:
                _target(node["$ref"], name)
            if "pattern" in node:
                _regex(node["pattern"])
            for key in ("items", "additionalProperties", "propertyNames", "if", "then", "else"):
                if key in node:
                    stack.append(node[key])
            for key in ("properties", "$defs"):
                stack.extend(node.get(key, {}).values())
            stack.extend(node.get("anyOf", ()))


def path_str(path):
    """``("linux", "namespaces", 2, "type")`` -> ``linux.namespaces[2].type``."""
    out = []
    for p in path:
        if type(p) is int:
            out.append(f"[{p}]")
        elif p.isidentifier():
            out.append("." + p if out else p)
        else:
            out.append(f"[{show(p)}]")
    return "".join(out)


def show(value, limit=60):
    """`value` as JSON text, shortened to `limit` characters."""
    from .jsonfast import dumps

    text = dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _schema_dir():
    """``<package>/oci-schemas`` when installed, else ``oci-schemas`` beside the package."""
    if not _DIR:
        here = os.path.dirname(os.path.abspath(__file__))
        dirs = (os.path.join(here, "oci-schemas"), os.path.join(os.path.dirname(here), "oci-schemas"))
        found = [d for d in dirs if os.path.isdir(d)]
        if not found:
            raise SchemaError("oci-schemas directory not found in " + " or ".join(dirs))
        _DIR.append(found[0])
    return _DIR[0]


_DIR = []
_DOCS = {}  # file name -> parsed schema
_TARGETS = {}  # (file, $ref) -> (node, file)
_VETTED = set()  # ids of nodes found well-formed (all kept alive by _DOCS)
_REGEXES = {}


def _document(name):
    doc = _DOCS.get(name)
    if doc is None:
        from .jsonfast import loads

        path = os.path.join(_schema_dir(), name)
        try:
            with open(path, "rb") as f:
                doc = loads(f.read())
        except (OSError, ValueError) as e:
            raise SchemaError(f"{path}: {e}") from None
        _DOCS[name] = doc
    return doc


def _target(ref, base):
    found = _TARGETS.get((base, ref))
    if found is None:
        name, _, pointer = ref.partition("#")
        name = name or base
        node = _document(name)
        for part in pointer.split("/")[1:]:
            try:
                node = node[part.replace("~1", "/").replace("~0", "~")]
            except (KeyError, TypeError):
                raise SchemaError(f"{base}: unresolvable $ref {ref!r}") from None
        found = _TARGETS[base, ref] = (node, name)
    return found


def _regex(source):
    regex = _REGEXES.get(source)
    if regex is None:
        regex = _REGEXES[source] = _Regex(source).search
    return regex


def _vet(node, base):
    """Refuse a node that uses anything this module does not implement."""
    if type(node) is not dict or not _KEYWORDS.issuperset(node):
        unknown = sorted(set(node) - _KEYWORDS) if type(node) is dict else node
        raise SchemaError(f"{base}: unsupported keyword or schema {unknown!r}")
    if "$ref" in node and len(node) > 1 and not _ANNOTATIONS.issuperset(k for k in node if k != "$ref"):
        # Siblings would make the order of errors depend on which applies first;
        # the schemas do not need them.
        raise SchemaError(f"{base}: $ref with sibling keywords")
    if "type" in node:
        names = node["type"]
        if names not in _TYPE_NAMES if type(names) is str else not _TYPE_NAMES.issuperset(names):
            raise SchemaError(f"{base}: unknown type {names!r}")
    if "enum" in node or "const" in node:
        values = node["enum"] if "enum" in node else [node["const"]]
        if "enum" in node and "const" in node or not values or any(type(x) is not str for x in values):
            # Equality of other JSON values has subtleties (1 == 1.0, true != 1)
            # the schemas do not need.
            raise SchemaError(f"{base}: unsupported enum/const {values!r}")
    if ("then" in node or "else" in node) and "if" not in node:
        raise SchemaError(f"{base}: then/else without if")
    _VETTED.add(id(node))


_TYPE_NAMES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_EXACT_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(v, t, name, strict):
    exact = _EXACT_TYPES.get(name)
    if exact is not None:
        return t is exact
    if t is int:  # bool is a distinct type(), so never counts as a number
        return True
    # JSON Schema counts 1.0 as an integer; strict callers do not.
    return t is float and (name == "number" or not strict and v.is_integer())


def _check(v, node, base, strict):
    """The first failure of `v` against schema `node` of file `base`, or None.

    Keywords apply in a fixed order: type and enum/const; then those of v's type,
    an object's members in document order; last anyOf and if/then/else, which
    relate members (so a bad member is reported as such, not as a failed
    condition).
    """
    if node is True:
        return None
    if node is False:
        return Failure("is not allowed")
    if id(node) not in _VETTED:
        _vet(node, base)
    while "$ref" in node:
        node, base = _target(node["$ref"], base)
        if id(node) not in _VETTED:
            _vet(node, base)
    t = type(v)
    names = node.get("type")
    if names is not None:
        if type(names) is str:
            exact = _EXACT_TYPES.get(names)
            ok = t is exact if exact is not None else _is(v, t, names, strict)
        else:
            ok = any(_is(v, t, n, strict) for n in names)
        if not ok:
            shown = names if type(names) is str else " or ".join(names)
            return Failure(f"{show(v)} is not of type {shown}")
    if "enum" in node or "const" in node:
        values = node["enum"] if "enum" in node else (node["const"],)
        if t is not str or v not in values:
            return Failure(f"{show(v)} is not one of {', '.join(values)}")
    if t is dict:
        failure = _check_object(v, node, base, strict)
        if failure is not None:
            return failure
    elif t is list:
        if "minItems" in node and len(v) < node["minItems"]:
            n = node["minItems"]
            return Failure("must not be empty" if n == 1 else f"must have at least {n} items")
        item = node.get("items")
        if item is not None:
            for i, x in enumerate(v):
                failure = _check(x, item, base, strict)
                if failure is not None:
                    failure.path.append(i)
                    return failure
    elif t is str:
        if "minLength" in node and len(v) < node["minLength"]:
            n = node["minLength"]
            return Failure("must not be empty" if n == 1 else f"must have at least {n} characters")
        if "pattern" in node and not _regex(node["pattern"])(v):
            return Failure(node.get("description") or f"{show(v)} does not match {show(node['pattern'])}")
    elif t is int or t is float:
        # the comparisons jsonschema makes, so NaN passes both
        if "minimum" in node and v < node["minimum"]:
            return Failure(f"{show(v)} is less than the minimum of {node['minimum']}")
        if "maximum" in node and v > node["maximum"]:
            return Failure(f"{show(v)} is greater than the maximum of {node['maximum']}")
    if "anyOf" in node:
        for sub in node["anyOf"]:
            if _check(v, sub, base, strict) is None:
                break
        else:
            return Failure(node.get("description") or "does not match any allowed form")
    if "if" in node:
        ok = _check(v, node["if"], base, strict) is None
        failure = _check(v, node.get("then" if ok else "else", True), base, strict)
        if failure is not None:
            return failure
    return None


def _check_object(v, node, base, strict):
    for name in node.get("required", ()):
        if name not in v:
            return Failure(f"{show(name)} is required")
    for name, needs in node.get("dependentRequired", {}).items():
        if name in v:
            for other in needs:
                if other not in v:
                    return Failure(f"{show(other)} is required when {show(name)} is set")
    props = node.get("properties", {})
    extra = node.get("additionalProperties", True)
    names = node.get("propertyNames")
    if not props and extra is True and names is None:
        return None
    for k, x in v.items():
        if names is not None:
            failure = _check(k, names, base, strict)
            if failure is not None:
                # reported at the object, where jsonschema reports it
                failure.message = f"property name {show(k)}: {failure.message}"
                return failure
        sub = props.get(k, extra)
        if sub is True:
            continue
        if sub is False:
            return Failure(f"unknown property {show(k)}")
        failure = _check(x, sub, base, strict)
        if failure is not None:
            failure.path.append(k)
            return failure
    return None


class _Regex:
    """``re.search(source, s) is not None`` for a subset of Python regular expressions.

    Supported: literals, ``.``, escaped punctuation and ``\\n``/``\\t``, classes
    ``[...]``/``[^...]`` with ranges, groups with ``|``, the greedy quantifiers
    ``* + ? {m} {m,} {m,n}``, a leading ``^``, and a trailing ``$`` (the end, or
    just before a final newline, as in ``re``) or ``$(?!\\n)`` (the end only).
    Anything else raises SchemaError rather than risk a different answer from
    ``re``.

    The pattern becomes a Thompson NFA that is turned into a DFA lazily, one
    (state, character) transition at a time.
    """

    def __init__(self, source):
        body, self.anchored, self.end = source, False, None
        if body.startswith("^"):
            body, self.anchored = body[1:], True
        for suffix, end in (("$(?!\\n)", "string"), ("$", "line")):
            head = body[: -len(suffix)]
            # an anchor unless the "$" is escaped by an odd run of backslashes
            if body.endswith(suffix) and (len(head) - len(head.rstrip("\\"))) % 2 == 0:
                body, self.end = head, end
                break
        tree = self._parse(body)
        if tree[0] == "alt" and (self.anchored or self.end):
            # an anchor would bind to one branch only
            raise SchemaError(f"pattern {source!r}: anchors around a top-level alternation")
        # NFA state i has at most one character edge, edges[i] = (test, next),
        # and any number of empty moves, eps[i]; state 0 accepts.
        self.edges, self.eps = [None], [()]
        self.final = 0
        self.start = self._closure((self._build(tree, 0),))
        self.steps = {}  # (DFA state, character) -> DFA state

    def search(self, s):
        state, final, end, steps = self.start, self.final, self.end, self.steps
        if end is None and final in state:
            return True
        last = len(s) - 1
        for i, ch in enumerate(s):
            if end == "line" and i == last and ch == "\n" and final in state:
                return True
            nxt = steps.get((state, ch))
            if nxt is None:
                nxt = steps[state, ch] = self._move(state, ch)
            state = nxt
            if end is None and final in state:
                return True
            if not state:
                return False
        return final in state

    def _move(self, state, ch):
        edges = self.edges
        reached = self._closure([e[1] for e in map(edges.__getitem__, state) if e and e[0](ch)])
        return reached if self.anchored else reached | self.start

    def _closure(self, states):
        eps = self.eps
        stack, seen = list(states), set(states)
        while stack:
            for t in eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    def _build(self, tree, nxt):
        """Add states matching `tree` then continuing at `nxt`; return the entry."""
        edges, eps = self.edges, self.eps

        def state(edge=None, moves=()):
            edges.append(edge)
            eps.append(moves)
            return len(edges) - 1

        def build(tree, nxt):
            kind = tree[0]
            if kind == "char":
                return state((tree[1], nxt))
            if kind == "seq":
                for item in reversed(tree[1]):
                    nxt = build(item, nxt)
                return nxt
            if kind == "alt":
                return state(moves=tuple(build(b, nxt) for b in tree[1]))
            _, sub, lo, hi = tree  # "rep"
            if hi is None:
                # a loop through one copy of `sub`, entered after `lo` copies
                loop = state()
                entry = build(sub, loop)
                eps[loop] = (entry, nxt)
                tail = loop
                if lo:
                    tail, lo = entry, lo - 1
            else:
                tail = nxt
                for _ in range(hi - lo):
                    tail = state(moves=(build(sub, tail), nxt))
            for _ in range(lo):
                tail = build(sub, tail)
            return tail

        return build(tree, nxt)

    def _parse(self, body):
        """The syntax tree of `body`: ("char", test), ("seq", items),
        ("alt", branches) or ("rep", tree, min, max)."""
        chars = list(body)
        chars.append("")  # end marker, in no set below
        pos = 0

        def fail():
            raise SchemaError(f"pattern {body!r}: unsupported syntax at offset {pos}")

        def alternation():
            nonlocal pos
            branches = [sequence()]
            while chars[pos] == "|":
                pos += 1
                branches.append(sequence())
            return ("alt", branches) if len(branches) > 1 else branches[0]

        def sequence():
            nonlocal pos
            items = []
            while True:
                c = chars[pos]
                if c in _SEQUENCE_END:
                    return ("seq", items)
                pos += 1
                if c == "(":
                    if chars[pos] == "?":
                        fail()
                    tree = alternation()
                    if chars[pos] != ")":
                        fail()
                    pos += 1
                elif c == "[":
                    tree = ("char", char_class())
                elif c == ".":
                    tree = ("char", _not_newline)
                elif c in _SPECIAL:
                    pos -= 1
                    fail()
                else:
                    tree = ("char", (escape() if c == "\\" else c).__eq__)
                if chars[pos] in _QUANTIFIERS:
                    tree = quantified(tree)
                items.append(tree)

        def escape():
            nonlocal pos
            c = chars[pos]
            if c in _ESCAPES:
                pos += 1
                return _ESCAPES[c]
            if c and c.isascii() and not c.isalnum() and c != "_":
                pos += 1
                return c
            fail()

        def char_class():
            nonlocal pos
            negate = chars[pos] == "^"
            pos += negate
            singles, ranges = set(), []
            if chars[pos] == "]":
                fail()  # a literal "]" first: not needed, so not supported
            while True:
                c = chars[pos]
                pos += 1
                if c == "]":
                    break
                if c == "" or c == "[":
                    pos -= 1
                    fail()  # unterminated, or a nested-set look-alike
                if c == "\\":
                    c = escape()
                if chars[pos] == "-" and chars[pos + 1] not in ("]", ""):
                    pos += 1
                    hi = chars[pos]
                    pos += 1
                    if hi == "\\":
                        hi = escape()
                    if hi < c:
                        fail()
                    ranges.append((c, hi))
                else:
                    singles.add(c)
            singles = frozenset(singles)
            ranges = tuple(ranges)
            if not ranges:
                return (lambda ch: ch not in singles) if negate else singles.__contains__
            return lambda ch: (ch in singles or any(lo <= ch <= hi for lo, hi in ranges)) is not negate

        def quantified(tree):
            nonlocal pos
            c = chars[pos]
            if c == "{":
                close = body.find("}", pos)
                lo, comma, hi = body[pos + 1: close].partition(",")
                digits = lo.isascii() and lo.isdigit() and (not hi or hi.isascii() and hi.isdigit())
                if close < 0 or not digits:
                    fail()
                lo = int(lo)
                hi = int(hi) if hi else None if comma else lo
                if hi is not None and hi < lo:
                    fail()
                pos = close + 1
            else:
                pos += 1
                lo, hi = (0, None) if c == "*" else (1, None) if c == "+" else (0, 1)
            if chars[pos] in _QUANTIFIERS:
                fail()  # lazy, possessive or repeated quantifiers
            return ("rep", tree, lo, hi)

        tree = alternation()
        if pos != len(body):
            fail()
        return tree


_SEQUENCE_END = frozenset(("", "|", ")"))
_SPECIAL = frozenset("^$*+?{")
_QUANTIFIERS = frozenset("*+?{")
_ESCAPES = {"n": "\n", "t": "\t"}


def _not_newline(ch):
    return ch != "\n"
