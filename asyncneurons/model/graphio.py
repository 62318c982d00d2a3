"""Reading and writing connectivity graphs: GraphML (``.graphml``) and node-link JSON (``.json``).

A graph file describes the units (nodes) and synapses (edges) with the attributes documented in
:mod:`asyncneurons.model.graph`. Edges may omit ``delay`` and ``retro_delay``: the scenario fills in
whatever a file leaves out, and keeps every delay the file sets. :func:`save_graph` exports a
built network so its delays can be edited by hand and loaded back.

Node-link JSON (NetworkX's ``node_link_data(g, edges="links")``)::

    {"directed": true, "multigraph": false, "graph": {},
     "nodes": [{"id": "in0", "role": "input", "kind": "input", "layer": 0, "index": 0}, ...],
     "links": [{"source": "in0", "target": "h1_0", "delay": 1.5, "retro_delay": 0.5}, ...]}

Safety: files are parsed as data only. JSON goes through :mod:`json`; GraphML through the
expat parser, and any ``<!DOCTYPE``/``<!ENTITY`` declaration is rejected before it can be
expanded (no entity expansion, no external resources). Nothing is ever unpickled or evaluated.

Every failure raises :class:`~asyncneurons.errors.GraphError` with a one-line message that
starts with the file name and names the problem, the node or the edge.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

import networkx as nx

from asyncneurons.errors import GraphError, did_you_mean

EXTENSIONS = (".graphml", ".json")

GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"

# Attributes whose type the simulator relies on: coerced whatever the file declares.
INT_NODE_ATTRS = ("layer", "index")
STR_NODE_ATTRS = ("role", "kind")
FLOAT_EDGE_ATTRS = ("delay", "retro_delay")
# A unit's position and its own timing values (asyncneurons.model.graph.TIMING_NODE_ATTRS)
FLOAT_NODE_ATTRS = ("x", "y", "z", "reward_delay", "refractory", "firing_period", "firing_phase",
                    "firing_jitter", "firing_rate")

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_GRAPHML_TYPES = ("boolean", "int", "long", "float", "double", "string")
#: What a key may be declared for; yEd adds ``graphml`` (its resources) and ``port`` keys.
_KEY_DOMAINS = ("node", "edge", "graph", "all", "graphml", "port", "endpoint", "hyperedge")


class _Fail(Exception):
    """A problem found while reading; turned into a GraphError prefixed with the file name."""


# --------------------------------------------------------------------------------------------
# Public API


def load_graph(path, unit_kinds=None) -> nx.DiGraph:
    """Read a ``.graphml`` or node-link ``.json`` graph file and validate it.

    Node ids become strings; ``layer`` and ``index`` become ints, and ``delay``, ``retro_delay``,
    a node's position ``x``, ``y``, ``z`` and its timing values floats, whatever type the file
    gives them. The graph is checked with
    :func:`asyncneurons.model.graph.validate` (``need_delays=False``: missing delays are filled in
    later by the scenario). ``unit_kinds`` defaults to :data:`asyncneurons.learning.units.UNIT_KINDS`.
    Raises :class:`GraphError` naming the file and the problem.
    """
    from asyncneurons.model.limits import check_graph_file

    name = str(path)
    fmt = _format_of(name)
    try:
        check_graph_file(name, os.path.getsize(path), fmt)
        data = Path(path).read_bytes()
    except OSError as e:
        raise GraphError(f"{name}: cannot read the graph file ({e.strerror or e})") from None
    return graph_from_bytes(data, fmt, name=name, unit_kinds=unit_kinds)


def graph_from_bytes(data: bytes, fmt: str, *, name: str = "<graph>",
                     unit_kinds=None) -> nx.DiGraph:
    """Like :func:`load_graph` for the contents of a file; ``fmt`` is ``"graphml"`` or ``"json"``."""
    from asyncneurons.model.graph import check_names, validate

    try:
        text = _decode_xml(data) if fmt == "graphml" else _decode(data)
        if not text.strip():
            raise _Fail("the file is empty")
        if fmt == "json":
            parts = _read_node_link(text)
        elif fmt == "graphml":
            parts = _read_graphml(text)
        else:
            raise _Fail(f"unknown graph format {fmt!r}; use graphml or json")
        g = _build(*parts)
        check_names(g)
        validate(g, unit_kinds, need_delays=False)
    except (_Fail, GraphError) as e:
        raise GraphError(f"{name}: {e}") from None
    return g


def save_graph(g: nx.DiGraph, path) -> None:
    """Write ``g`` as GraphML or node-link JSON, chosen by the extension of ``path``.

    Node ids are written as strings. The file is replaced atomically. Attribute values must be
    booleans, numbers or strings (lists and dicts are allowed in JSON only).
    """
    name = str(path)
    fmt = _format_of(name)
    if not isinstance(g, nx.DiGraph) or g.is_multigraph():
        raise GraphError(f"{name}: only a directed graph without parallel edges can be saved")
    ids = {}
    for n in g.nodes:
        s = str(n)
        if s in ids:
            raise GraphError(f"{name}: nodes {ids[s]!r} and {n!r} would both be saved as {s!r}")
        ids[s] = n
    try:
        text = _node_link_text(g) if fmt == "json" else _graphml_text(g)
    except _Fail as e:
        raise GraphError(f"{name}: {e}") from None
    tmp = f"{name}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, name)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise GraphError(f"{name}: cannot write the graph file ({e.strerror or e})") from None


# --------------------------------------------------------------------------------------------
# Shared: format, decoding, building and coercion


def _format_of(name: str) -> str:
    ext = os.path.splitext(name)[1]
    if ext.lower() in EXTENSIONS:
        return ext.lower()[1:]
    shown = repr(ext) if ext else "(none)"
    raise GraphError(f"{name}: unknown graph file extension {shown}"
                     f"{did_you_mean(ext.lower(), EXTENSIONS) if ext else ''}; "
                     "use .graphml or .json")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        col = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise _Fail(f"not UTF-8 text (byte 0x{data[start]:02x} at line {line}, column {col})") \
            from None


_XML_DECLARATION = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _decode_xml(data: bytes) -> str:
    """GraphML text in the encoding it declares (a byte-order mark, or ``encoding=`` in its XML
    declaration; UTF-8 otherwise), e.g. the ISO-8859-1 or UTF-16 some tools write."""
    import codecs
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom) and not (codec == "utf-16" and data.startswith(codecs.BOM_UTF32_LE)):
            return _decode_as(data, codec)
    m = _XML_DECLARATION.match(data[:400])
    if m is None or data.startswith(codecs.BOM_UTF8):
        return _decode(data)
    declared = m.group(1).decode("ascii")
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise _Fail(f"the XML declaration names an unknown encoding {declared!r}") from None
    text = _decode_as(data, codec)
    return text


def _decode_as(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as e:
        raise _Fail(f"not valid {codec} text (byte at offset {e.start})") from None


def _build(nodes, edges, graph_attrs) -> nx.DiGraph:
    """A DiGraph from ``[(id, attrs)]`` and ``[(u, v, attrs)]``, with structural checks."""
    g = nx.DiGraph()
    g.graph.update(graph_attrs)
    for n, attrs in nodes:
        if n in g:
            raise _Fail(f"node {n!r} is declared twice")
        g.add_node(n, **_coerce_node(n, attrs))
    for u, v, attrs in edges:
        for end in (u, v):
            if end not in g:
                raise _Fail(f"edge {u!r} -> {v!r}: node {end!r} is not declared"
                            f"{did_you_mean(end, g.nodes)}")
        if g.has_edge(u, v):
            raise _Fail(f"edge {u!r} -> {v!r} appears twice (parallel edges are not allowed)")
        g.add_edge(u, v, **_coerce_edge(u, v, attrs))
    return g


def _coerce_node(n: str, attrs: dict) -> dict:
    out = dict(attrs)
    for key in STR_NODE_ATTRS:
        if key in out and out[key] is not None and not isinstance(out[key], str):
            raise _Fail(f"node {n!r}: {key} {out[key]!r} is not a string")
    for key in INT_NODE_ATTRS:
        if key in out:
            out[key] = _as_int(out[key], f"node {n!r}: {key}")
    for key in FLOAT_NODE_ATTRS:
        if key in out:
            out[key] = _as_float(out[key], f"node {n!r}: {key}")
    return out


def _coerce_edge(u: str, v: str, attrs: dict) -> dict:
    out = dict(attrs)
    for key in FLOAT_EDGE_ATTRS:
        if key in out:
            out[key] = _as_float(out[key], f"edge {u!r} -> {v!r}: {key}")
    return out


def _as_int(value, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        try:
            return int(value.strip())
        except ValueError:  # more digits than int() accepts
            pass
    raise _Fail(f"{what} {value!r} is not an integer")


def _as_float(value, what: str) -> float:
    if isinstance(value, bool):
        raise _Fail(f"{what} {value!r} is not a number")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise _Fail(f"{what} {value!r} is out of range") from None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _Fail(f"{what} {value!r} is not a number")


def _node_id(value, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _Fail(f"{where}: id {_short(value)} must be a string or an integer")


def _short(value, limit: int = 60) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Node-link JSON


def _read_node_link(text: str):
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise _Fail(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise _Fail("invalid JSON: nested too deeply") from None
    except ValueError as e:  # e.g. an integer with too many digits
        raise _Fail(f"invalid JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise _Fail(f'node-link JSON must be an object with "nodes" and "links", '
                    f"not {type(doc).__name__ if doc is not None else 'null'}")
    if doc.get("multigraph", False) is not False:
        raise _Fail('"multigraph" must be false: parallel edges are not allowed')
    if doc.get("directed", True) is not True:
        raise _Fail('"directed" must be true: the connectivity is a directed graph')
    if "nodes" not in doc:
        raise _Fail('missing key "nodes"')
    if "links" in doc and "edges" in doc:
        raise _Fail('both "links" and "edges" are given; use "links"')
    links_key = "links" if "links" in doc else "edges" if "edges" in doc else None
    if links_key is None:
        raise _Fail(f'missing key "links"{did_you_mean("links", [k for k in doc])}')
    graph_attrs = doc.get("graph", {})
    if not isinstance(graph_attrs, dict):
        raise _Fail('"graph" must be an object')
    if not isinstance(doc["nodes"], list):
        raise _Fail('"nodes" must be a list')
    if not isinstance(doc[links_key], list):
        raise _Fail(f'"{links_key}" must be a list')
    nodes = []
    for i, entry in enumerate(doc["nodes"]):
        where = f"nodes[{i}]"
        if not isinstance(entry, dict):
            raise _Fail(f"{where} must be an object with an \"id\", not {_short(entry)}")
        if "id" not in entry:
            raise _Fail(f'{where}: no "id"')
        attrs = {k: v for k, v in entry.items() if k != "id"}
        nodes.append((_node_id(entry["id"], where), attrs))
    edges = []
    for i, entry in enumerate(doc[links_key]):
        where = f"{links_key}[{i}]"
        if not isinstance(entry, dict):
            raise _Fail(f'{where} must be an object with a "source" and a "target", '
                        f"not {_short(entry)}")
        for end in ("source", "target"):
            if end not in entry:
                raise _Fail(f'{where}: no "{end}"')
        u = _node_id(entry["source"], f"{where} source")
        v = _node_id(entry["target"], f"{where} target")
        attrs = {k: x for k, x in entry.items() if k not in ("source", "target", "key")}
        edges.append((u, v, attrs))
    return nodes, edges, graph_attrs


def _json_value(value):
    """Plain JSON-able values (NumPy scalars become Python numbers)."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    raise TypeError


def _node_link_text(g: nx.DiGraph) -> str:
    def dump(obj, what):
        try:
            return json.dumps(obj, ensure_ascii=False, default=_json_value)
        except (TypeError, ValueError):
            raise _Fail(f"{what}: an attribute cannot be written as JSON") from None

    lines = ["{", ' "directed": true,', ' "multigraph": false,',
             f' "graph": {dump(dict(g.graph), "graph attributes")},', ' "nodes": [']
    nodes = [dump({"id": str(n), **a}, f"node {str(n)!r}") for n, a in g.nodes(data=True)]
    lines += [f"  {s}," for s in nodes[:-1]] + [f"  {s}" for s in nodes[-1:]]
    lines += [" ],", ' "links": [']
    links = [dump({"source": str(u), "target": str(v), **a}, f"edge {str(u)!r} -> {str(v)!r}")
             for u, v, a in g.edges(data=True)]
    lines += [f"  {s}," for s in links[:-1]] + [f"  {s}" for s in links[-1:]]
    lines += [" ]", "}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# GraphML


class _Element:
    __slots__ = ("tag", "attrs", "children", "text", "line")

    def __init__(self, tag, attrs, line):
        self.tag, self.attrs, self.line = tag, attrs, line
        self.children, self.text = [], []


def _parse_xml(text: str) -> _Element:
    """A small element tree from expat; any DOCTYPE or ENTITY declaration is refused."""
    parser = expat.ParserCreate(namespace_separator=" ")
    root = _Element("", {}, 0)
    stack = [root]

    def refuse(*_):
        raise _Fail(f"line {parser.CurrentLineNumber}: DOCTYPE and ENTITY declarations are not "
                    "allowed in graph files")

    def start(tag, attrs):
        el = _Element(tag.rsplit(" ", 1)[-1], {k.rsplit(" ", 1)[-1]: v for k, v in attrs.items()},
                      parser.CurrentLineNumber)
        stack[-1].children.append(el)
        stack.append(el)

    def end(_tag):
        stack.pop()

    def chars(data):
        stack[-1].text.append(data)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.buffer_text = True
    try:
        parser.Parse(text, True)
    except expat.ExpatError as e:
        raise _Fail(f"invalid XML at line {e.lineno}, column {e.offset + 1}: "
                    f"{expat.ErrorString(e.code)}") from None
    except RecursionError:
        raise _Fail("invalid XML: nested too deeply") from None
    return root.children[0]


def _convert(text: str, typ: str, what: str):
    t = text.strip()
    try:
        if typ == "boolean":
            low = t.lower()
            if low in ("true", "1"):
                return True
            if low in ("false", "0"):
                return False
            raise ValueError
        if typ in ("int", "long"):
            if not _INT_TEXT.fullmatch(t):
                raise ValueError
            return int(t)
        if typ in ("float", "double"):
            return float(t)
    except ValueError:
        raise _Fail(f"{what} {text!r} is not a valid {typ}") from None
    return text


def _read_graphml(text: str):
    root = _parse_xml(text)
    if root.tag != "graphml":
        raise _Fail(f"line {root.line}: the root element is <{root.tag}>, not <graphml>")
    keys = {}
    for el in root.children:
        if el.tag != "key":
            continue
        kid = el.attrs.get("id")
        if kid is None:
            raise _Fail(f"line {el.line}: <key> without an id")
        if kid in keys:
            raise _Fail(f"line {el.line}: key {kid!r} is declared twice")
        domain = el.attrs.get("for", "all")
        if domain not in _KEY_DOMAINS:
            raise _Fail(f"line {el.line}: key {kid!r}: for={domain!r} is not one of "
                        f"{', '.join(_KEY_DOMAINS)}")
        typ = el.attrs.get("attr.type", "string")
        if typ not in _GRAPHML_TYPES:
            # a tool's own type name ("integer", a list type): the value is kept as its text (ours
            # are converted from their text whatever the type declared, with our messages)
            typ = "string"
        default = [c for c in el.children if c.tag == "default"]
        keys[kid] = (el.attrs.get("attr.name", kid), typ,
                     "".join(default[0].text) if default else None, domain)
    graphs = [el for el in root.children if el.tag == "graph"]
    if not graphs:
        raise _Fail("no <graph> element")
    if len(graphs) > 1:
        raise _Fail(f"line {graphs[1].line}: more than one <graph> (one graph per file)")
    graph = graphs[0]
    edgedefault = graph.attrs.get("edgedefault", "directed")
    if edgedefault != "directed":
        raise _Fail(f"line {graph.line}: edgedefault {edgedefault!r}: the connectivity must be "
                    'a directed graph (edgedefault="directed")')

    def attributes(el, what):
        out = {}
        for d in el.children:
            if d.tag != "data":
                continue
            kid = d.attrs.get("key")
            if kid is None:
                raise _Fail(f"line {d.line}: {what}: <data> without a key")
            if kid not in keys:
                raise _Fail(f"line {d.line}: {what}: data key {kid!r} is not declared"
                            f"{did_you_mean(kid, keys)}")
            if d.children:  # structured data (e.g. yEd graphics): not ours, skip
                continue
            attr, typ, _, _ = keys[kid]
            out[attr] = _data_value(attr, "".join(d.text), typ, what)
        return out

    nodes, edges = [], []
    for el in graph.children:
        if el.tag == "node":
            if "id" not in el.attrs:
                raise _Fail(f"line {el.line}: <node> without an id")
            n = el.attrs["id"]
            if any(c.tag == "graph" for c in el.children):
                raise _Fail(f"node {n!r}: nested graphs are not supported")
            nodes.append((n, _apply_defaults(attributes(el, f"node {n!r}"), keys, "node",
                                             f"node {n!r}")))
        elif el.tag == "edge":
            for end in ("source", "target"):
                if end not in el.attrs:
                    raise _Fail(f"line {el.line}: <edge> without a {end}")
            u, v = el.attrs["source"], el.attrs["target"]
            what = f"edge {u!r} -> {v!r}"
            if el.attrs.get("directed", "true") != "true":
                raise _Fail(f"{what}: directed {el.attrs['directed']!r}: undirected edges are "
                            "not allowed")
            edges.append((u, v, _apply_defaults(attributes(el, what), keys, "edge", what)))
        elif el.tag == "hyperedge":
            raise _Fail(f"line {el.line}: hyperedges are not supported")
    graph_attrs = _apply_defaults(attributes(graph, "graph"), keys, "graph", "graph")
    return nodes, edges, graph_attrs


def _data_value(attr: str, text: str, typ: str, what: str):
    """Our typed attributes keep their text (coerced later, with our messages); others follow
    the key's declared type."""
    if attr in INT_NODE_ATTRS or attr in STR_NODE_ATTRS or attr in FLOAT_EDGE_ATTRS or attr in FLOAT_NODE_ATTRS:
        return text
    return _convert(text, typ, f"{what}: {attr}")


def _apply_defaults(attrs: dict, keys: dict, domain: str, what: str) -> dict:
    """Fill in the ``<default>`` of every key declared for ``domain`` (or ``all``)."""
    for attr, typ, default, key_domain in keys.values():
        if default is not None and attr not in attrs and key_domain in ("all", domain):
            attrs[attr] = _data_value(attr, default, typ, what)
    return attrs


def _graphml_type(values, what: str) -> str:
    types = set()
    for x in values:
        if hasattr(x, "item") and callable(x.item) and not isinstance(x, (str, bytes)):
            try:
                x = x.item()
            except (TypeError, ValueError):
                pass
        if isinstance(x, bool):
            types.add("boolean")
        elif isinstance(x, int):
            types.add("long")
        elif isinstance(x, float):
            types.add("double")
        elif isinstance(x, str):
            types.add("string")
        else:
            raise _Fail(f"{what}: a {type(x).__name__} value cannot be written to GraphML")
    if len(types) == 1:
        return types.pop()
    if types == {"long", "double"}:
        return "double"
    return "string"


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(s: str, what: str) -> str:
    if _XML_INVALID.search(s):
        raise _Fail(f"{what}: {s!r} holds a control character XML cannot carry")
    return s


def _graphml_text_value(x, typ: str, what: str) -> str:
    if hasattr(x, "item") and callable(x.item) and not isinstance(x, (str, bytes)):
        x = x.item()
    if typ == "boolean":
        return "true" if x else "false"
    if typ == "double":
        return repr(float(x))
    return escape(_xml_text(str(x), what), {"\r": "&#13;"})


def _graphml_text(g: nx.DiGraph) -> str:
    domains = {
        "graph": [dict(g.graph)],
        "node": [a for _, a in g.nodes(data=True)],
        "edge": [a for _, _, a in g.edges(data=True)],
    }
    keys = {}  # (domain, attr) -> (id, type)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<graphml xmlns="{GRAPHML_NS}">']
    for domain, dicts in domains.items():
        names = []
        for a in dicts:
            names += [k for k in a if k not in names]
        for attr in names:
            if not isinstance(attr, str):
                raise _Fail(f"{domain} attribute name {attr!r} is not a string")
            typ = _graphml_type([a[attr] for a in dicts if attr in a],
                                f"{domain} attribute {attr!r}")
            kid = f"{domain}.{attr}"
            keys[domain, attr] = (kid, typ)
            lines.append(f"  <key id={quoteattr(kid)} for=\"{domain}\" "
                         f"attr.name={quoteattr(_xml_text(attr, domain))} "
                         f"attr.type=\"{typ}\"/>")

    def data(domain, attrs, indent):
        out = []
        for attr, x in attrs.items():
            kid, typ = keys[domain, attr]
            text = _graphml_text_value(x, typ, f"{domain} attribute {attr!r}")
            out.append(f"{indent}<data key={quoteattr(kid)}>{text}</data>")
        return out

    def xid(n):
        return quoteattr(_xml_text(str(n), "node id"))

    lines.append('  <graph edgedefault="directed">')
    lines += data("graph", g.graph, "    ")
    for n, a in g.nodes(data=True):
        if a:
            lines.append(f"    <node id={xid(n)}>")
            lines += data("node", a, "      ")
            lines.append("    </node>")
        else:
            lines.append(f"    <node id={xid(n)}/>")
    for u, v, a in g.edges(data=True):
        head = f"    <edge source={xid(u)} target={xid(v)}"
        if a:
            lines.append(head + ">")
            lines += data("edge", a, "      ")
            lines.append("    </edge>")
        else:
            lines.append(head + "/>")
    lines += ["  </graph>", "</graphml>", ""]
    return "\n".join(lines)
