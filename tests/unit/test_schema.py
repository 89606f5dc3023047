"""runtime.schema against jsonschema: same verdict on every input, and our first
error at a path jsonschema also reports.

The inputs are real configs (runc, crun, podman- and containerd-like, one with
every field), every leaf of those replaced by edge-case probes, and
hypothesis-generated documents built from the schemas and then mutated.
"""

import copy
import json
import pathlib
import re
import subprocess
import sys

import jsonschema
import pytest
import referencing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from referencing.jsonschema import DRAFT202012

from runtime import schema

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "oci-schemas"
CONFIGS = pathlib.Path(__file__).resolve().parent / "configs"
DOCS = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
REGISTRY = referencing.Registry().with_resources(
    (name, DRAFT202012.create_resource(doc)) for name, doc in DOCS.items()
)
_VALIDATORS = {}


def reference(ref):
    """The jsonschema validator for `ref` ("file" or "file#pointer")."""
    if ref not in _VALIDATORS:
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": ref}
        _VALIDATORS[ref] = jsonschema.Draft202012Validator(root, registry=REGISTRY)
    return _VALIDATORS[ref]


def reported_paths(errors):
    paths = set()
    for e in errors:
        paths.add(tuple(e.absolute_path))
        paths |= reported_paths(e.context)
    return paths


def compare(instance, ref="config.json"):
    """Assert both validators agree on `instance`; return our failure."""
    ours = schema.check(instance, ref)
    theirs = list(reference(ref).iter_errors(instance))
    assert (ours is None) == (not theirs), (ours, [e.message for e in theirs][:3], instance)
    if ours is not None:
        assert tuple(ours.path) in reported_paths(theirs), (ours, sorted(map(str, reported_paths(theirs))))
    return ours


def fixture(name):
    return json.loads((CONFIGS / name).read_text())


CONFIG_FIXTURES = sorted(p.name for p in CONFIGS.glob("*.json") if "features" not in p.name)


# --- the schema files --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCS))
def test_schema_file_is_clean_json_schema(name):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys in {name}: {keys}"
        return dict(pairs)

    json.loads((SCHEMAS / name).read_text(), object_pairs_hook=no_duplicates)
    jsonschema.Draft202012Validator.check_schema(DOCS[name])
    assert DOCS[name]["$id"] == name


def test_every_node_is_supported():
    schema.vet_all()


@pytest.mark.parametrize("node", [
    {"type": "string", "maxLength": 3},  # a keyword the interpreter lacks
    {"format": "uri"},
    {"$ref": "defs.json#/$defs/uint32", "minimum": 5},  # $ref with a sibling
    {"enum": [1, 2]},  # non-string enum
    {"type": "int"},
    {"then": {"required": ["x"]}},
    ["not", "a", "schema"],
])
def test_unsupported_schema_is_refused(node):
    with pytest.raises(schema.SchemaError):
        schema._check({"x": 1}, node, "test.json", False)


def test_no_re_or_json_import():
    # -S: the venv's editable-install hook imports re at start-up
    code = (
        "import sys, runtime.schema as s\n"
        "assert not {'re', 'json'} & set(sys.modules), 'import'\n"
        "s.check({'ociVersion': '1.0.0', 'root': {'path': 'r'}, 'process': {'cwd': '/', 'args': ['x'],"
        " 'capabilities': {'bounding': ['CAP_KILL']}}})\n"
        "assert not {'re', 'json'} & set(sys.modules), 'validation'\n"
    )
    subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, check=True)


# --- fixtures and edge-case probes ----------------------------------------------


@pytest.mark.parametrize("name", CONFIG_FIXTURES)
def test_fixture_is_valid(name):
    assert compare(fixture(name)) is None


def test_features_and_state_fixtures():
    assert compare(fixture("runc-features.json"), "features.json") is None
    state = {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": 42, "bundle": "/b",
             "annotations": {"a": "b"}, "rootfs": "/b/rootfs", "created": "2024-01-01T00:00:00Z"}
    assert compare(state) is not None  # a state is not a config
    assert compare(state, "state.json") is None
    for broken in ({"status": "created", "pid": None}, {"bundle": "rel"}, {"id": ""}, {"ociVersion": "1"}):
        assert compare({**state, **broken}, "state.json") is not None
    assert compare({k: v for k, v in state.items() if k != "pid"}, "state.json") is not None
    stopped = {k: v for k, v in state.items() if k != "pid"}
    assert compare({**stopped, "status": "stopped"}, "state.json") is None


# values on the boundaries the schemas draw (the integer types, swappiness,
# ioPriority) and near the shapes of its patterns and enums
_INTS = [0, -1, 8, 101, 65536, 2**31, -2**31 - 1, 2**32 - 1, 2**32, 2**63, -2**63 - 1, 2**64 - 1, 2**64,
         3.0, 2.5, float("nan")]
_STRINGS = ["", "x", "/x", "x\n", "1.0.0\n", "01.0.0", "CAP_x", "0-", "MB:1\n", "2mB", "rwmx", "é"]
_ANY = [None, True, "s", 1, 1.5, [], {}]


def _paths(doc, path=()):
    """Every path in `doc`, but only the first two and the last item of a list."""
    yield path
    if type(doc) is dict:
        for k, v in doc.items():
            yield from _paths(v, path + (k,))
    elif type(doc) is list:
        for i in sorted({0, 1, len(doc) - 1} & set(range(len(doc)))):
            yield from _paths(doc[i], path + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _probes(value):
    if type(value) in (int, float):
        return _INTS + _ANY
    if type(value) is str:
        return _STRINGS + [value + "x", value[:-1], value + "\n"] + _ANY
    return _ANY


def _sections(config):
    """Small documents each holding one part of `config`, so that probing every
    leaf stays cheap for jsonschema."""
    minimal = {"ociVersion": config["ociVersion"], "root": config["root"]}
    for key, value in config.items():
        if key == "linux":
            for lkey, lvalue in value.items():
                yield {**minimal, "linux": {lkey: lvalue}}
        elif key not in minimal:
            yield {**minimal, key: value}
    yield minimal


@pytest.mark.parametrize("name", ["kitchen-sink.json", "podman-like.json"])
def test_every_leaf_probed(name):
    checked = 0
    for section in _sections(fixture(name)):
        for path in list(_paths(section)):
            if not path:
                continue
            parent, key = _get(section, path[:-1]), path[-1]
            original = parent[key]
            for probe in _probes(original):
                parent[key] = copy.deepcopy(probe)
                compare(section)
                checked += 1
            if type(parent) is dict:
                del parent[key]
                compare(section)
                parent[key] = original
            else:
                parent[key] = original
            if type(original) is dict:
                original["zz-unknown"] = 1
                compare(section)
                del original["zz-unknown"]
    assert checked > 1000


def test_features_leaves_probed():
    features = fixture("runc-features.json")
    for path in list(_paths(features)):
        if path:
            parent, key = _get(features, path[:-1]), path[-1]
            original = parent[key]
            for probe in _probes(original)[:12] + [None]:
                parent[key] = probe
                compare(features, "features.json")
            parent[key] = original
    features["linux"]["extra"] = True
    assert compare(features, "features.json").message == 'unknown property "extra"'


# --- behaviour beyond the verdict -----------------------------------------------------


def test_strict_int():
    config = fixture("runc-spec.json")
    config["process"]["user"]["uid"] = 1.0
    assert schema.check(config) is None  # JSON Schema: 1.0 is an integer
    failure = schema.check(config, strict_int=True)
    assert (schema.path_str(failure.path), failure.message) == \
        ("process.user.uid", "1.0 is not of type integer")
    config["process"]["user"]["uid"] = True
    assert schema.check(config).message == "true is not of type integer"


def test_first_error_in_document_order():
    config = fixture("runc-spec.json")
    config["process"]["cwd"] = "relative"
    config["linux"]["namespaces"][0]["type"] = "nope"
    assert schema.path_str(compare(config).path) == "process.cwd"
    reordered = {"linux": config.pop("linux"), **config}
    assert schema.path_str(compare(reordered).path) == "linux.namespaces[0].type"


@pytest.mark.parametrize("mutate, path, message", [
    (lambda c: c["linux"]["namespaces"].append({"type": "foo"}), "linux.namespaces[5].type",
     '"foo" is not one of pid, network, mount, ipc, uts, user, cgroup, time'),
    (lambda c: c["process"].pop("cwd"), "process", '"cwd" is required'),
    (lambda c: c["process"].update(args=[]), "process.args", "must not be empty"),
    (lambda c: c["process"].update(cwd="x"), "process.cwd", "must be an absolute path"),
    (lambda c: c.update(ociVersion="1.0"), "ociVersion", "must be a SemVer 2.0.0 version"),
    (lambda c: c["process"]["capabilities"]["bounding"].append("NET_ADMIN"),
     "process.capabilities.bounding[3]", "must be a capability name such as CAP_CHOWN"),
    (lambda c: c["process"]["user"].update(uid=-1), "process.user.uid", "-1 is less than the minimum of 0"),
    (lambda c: c["process"]["user"].update(gid=2**32), "process.user.gid",
     "4294967296 is greater than the maximum of 4294967295"),
    (lambda c: c["process"].update(env="PATH=/bin"), "process.env", '"PATH=/bin" is not of type array'),
    (lambda c: c.update(annotations={"": "x"}), "annotations", 'property name "": must not be empty'),
    (lambda c: c["linux"].update(sysctl={"net.ipv4.ip_forward": 1}), 'linux.sysctl["net.ipv4.ip_forward"]',
     "1 is not of type string"),
    (lambda c: c["mounts"][0].update(uidMappings=[]), "mounts[0]",
     '"gidMappings" is required when "uidMappings" is set'),
    (lambda c: c["linux"].update(resources={"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}}),
     "linux.resources.blockIO.weightDevice[0]", "must set weight or leafWeight"),
    (lambda c: c["linux"].update(devices=[{"type": "c", "path": "/dev/x", "major": 1}]), "linux.devices[0]",
     '"minor" is required'),
    (lambda c: c["linux"].update(devices=[{"type": "p", "path": "/dev/x"}]), None, None),
])
def test_messages(mutate, path, message):
    config = fixture("runc-spec.json")
    mutate(config)
    failure = compare(config)
    if message is None:
        assert failure is None
    else:
        assert (schema.path_str(failure.path), failure.message) == (path, message)


def test_fragment_reference():
    assert schema.check({"cwd": "/", "args": ["sh"]}, "config.json#/$defs/Process") is None
    failure = compare({"cwd": "/", "args": ["sh"], "user": {"uid": 0}}, "config.json#/$defs/Process")
    assert (schema.path_str(failure.path), failure.message) == ("user", '"gid" is required')


def test_path_str():
    assert schema.path_str(()) == ""
    assert schema.path_str(("linux", "namespaces", 2, "type")) == "linux.namespaces[2].type"
    assert schema.path_str(("linux", "sysctl", "net.core.x")) == 'linux.sysctl["net.core.x"]'
    assert schema.path_str(("a b", 0)) == '["a b"][0]'


# --- the regular-expression subset ----------------------------------------------


def _schema_patterns():
    found = set()

    def walk(node):
        if type(node) is dict:
            if type(node.get("pattern")) is str:
                found.add(node["pattern"])
            for v in node.values():
                walk(v)
        elif type(node) is list:
            for v in node:
                walk(v)

    walk(DOCS)
    return sorted(found)


PATTERNS = _schema_patterns() + [
    "a|b", "(ab|c)*d", "x{2,3}$", "^a{2}b?$", "[^a-c]+", "^(a|b)+c{1,}$", r"\.\-", "", "^$", "$", "^",
    "a.c$", r"[a\]]x", "(a|)+$", "x{0}y", "^(ab){1,2}$", "^x{2,}$", "^(a|ab)*c$", r"^[\t ]*$(?!\n)",
]


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_regex_agrees_with_re(pattern, data):
    alphabet = sorted(set(pattern + "0123456789aAbBcxMB:.,-+/\n\t é٣"))
    # (strings stay short: re, the reference, backtracks)
    generated = st.from_regex(pattern.replace("(?!\\n)", "")).map(lambda s: s[:30]) if pattern \
        else st.just("")
    s = data.draw(st.one_of(generated, st.text(alphabet, max_size=10), generated.map(lambda s: s + "\n"),
                            generated.map(lambda s: s[1:])))
    assert schema._Regex(pattern).search(s) == (re.search(pattern, s) is not None), s


@pytest.mark.parametrize("pattern", [
    r"\d", r"\w+", "(?=x)", "(?:x)", "a*?", "a++", "a**", "[[:alpha:]]", "a{,3}", "a{3,2}", "^a|b",
    "a|b$", r"(a)\1", "a{", "[]a]", "[a", "(a", "a)", "^*", "x$y", "[z-a]", "[]",
])
def test_regex_refuses_unsupported(pattern):
    with pytest.raises(schema.SchemaError):
        schema._Regex(pattern)


# --- generated documents -----------------------------------------------------------


class _Generator:
    """Hypothesis strategies for (mostly) valid instances of a schema node."""

    def __init__(self):
        self.memo = {}

    def ref(self, ref, base):
        name, _, pointer = ref.partition("#")
        name = name or base
        if (name, pointer) not in self.memo:
            node = DOCS[name]
            for part in pointer.split("/")[1:]:
                node = node[part]
            self.memo[name, pointer] = st.deferred(lambda: self.of(node, name))
        return self.memo[name, pointer]

    def of(self, node, base):
        if node is True:
            return _json_values
        if "$ref" in node:
            return self.ref(node["$ref"], base)
        if "enum" in node:
            return st.sampled_from(node["enum"])
        types = node.get("type")
        if types is None:
            return _json_values
        if type(types) is list:
            return st.one_of([self.typed(node, base, t) for t in types])
        return self.typed(node, base, types)

    def typed(self, node, base, t):
        if t == "null":
            return st.none()
        if t == "boolean":
            return st.booleans()
        if t == "integer":
            lo, hi = node.get("minimum"), node.get("maximum")
            return st.one_of(st.integers(lo, hi), st.sampled_from([x for x in (lo, hi, 0) if x is not None]))
        if t == "string":
            if "pattern" in node:
                return st.from_regex(node["pattern"].replace("(?!\\n)", ""))
            return st.text(min_size=node.get("minLength", 0), max_size=6)
        if t == "array":
            item = self.of(node["items"], base) if "items" in node else _json_values
            return st.lists(item, min_size=node.get("minItems", 0), max_size=3)
        assert t == "object", t
        props = node.get("properties", {})
        required = node.get("required", [])
        members = st.fixed_dictionaries(
            {k: self.of(props[k], base) for k in required if k in props},
            optional={k: self.of(v, base) for k, v in props.items() if k not in required},
        )
        extra = node.get("additionalProperties", True)
        if type(extra) is dict:
            return st.dictionaries(st.text(max_size=5), self.of(extra, base), max_size=3)
        return members


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
_GEN = _Generator()


def _mutate(doc, rnd):
    """Break `doc` a little: replace, delete or add a value, or nudge a leaf."""
    paths = list(_paths(doc))
    path = rnd.choice(paths)
    if not path:
        return _INTS[0] if rnd.random() < 0.05 else doc
    parent, key = _get(doc, path[:-1]), path[-1]
    value = parent[key]
    op = rnd.randrange(4)
    if op == 0:
        parent[key] = copy.deepcopy(rnd.choice(_probes(value)))
    elif op == 1:
        del parent[key]
    elif op == 2 and type(value) is dict:
        value[rnd.choice(["zz", "", "type", "path", "x.y"])] = copy.deepcopy(rnd.choice(_ANY))
    elif op == 2 and type(value) is list:
        value.append(copy.deepcopy(rnd.choice(value + _ANY)))
    elif type(value) is int:
        parent[key] = value + rnd.choice([-1, 1])
    elif type(value) is str:
        parent[key] = rnd.choice([value + "x", value[1:], value.lower(), value + "\n"])
    return doc


_HYPOTHESIS = settings(max_examples=120, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                              HealthCheck.filter_too_much])


@pytest.mark.parametrize("ref", [
    "config.json", "config.json#/$defs/Process", "config.json#/$defs/Mount",
    "config-linux.json", "config-linux.json#/$defs/Resources", "config-linux.json#/$defs/Seccomp",
    "config-linux.json#/$defs/Device", "state.json", "features.json",
])
@_HYPOTHESIS
@given(data=st.data(), mutations=st.integers(0, 3))
def test_generated(ref, data, mutations):
    doc = data.draw(_GEN.ref(ref, ref.partition("#")[0]))
    rnd = data.draw(st.randoms(use_true_random=False))
    for _ in range(mutations):
        doc = _mutate(doc, rnd)
    compare(doc, ref)
