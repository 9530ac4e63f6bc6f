#!/usr/bin/python3
"""Checks ECS documents (one JSON object per line) against the ECS field reference in
tests/data/ecs/ecs_flat.yml.

    ecs_schema_check.py --fields tests/data/ecs/ecs_flat.yml --version 8.17.0 \
        --samples PROGRAM ecs [--self-test]

For each document:
  - every leaf, by its dotted name, is an ECS field, or lies under an `object` /
    `flattened` field, or under the custom field set `interlock` (not looked into);
  - types: keyword-like and text -> string; date -> string; ip -> an IPv4/IPv6 address;
    long/integer/short/byte/unsigned_long -> integer; float kinds -> number; boolean;
    arrays only where the field is normalised to an array (scalars are fine there too);
  - required fields (`@timestamp`, `ecs.version`) are present; ecs.version matches;
  - event.kind / event.category / event.type / event.outcome take allowed values, and
    every event.type is one some event.category of the document expects.
"""
import argparse
import ipaddress
import json
import subprocess
import sys

import yaml

STRING = {"keyword", "constant_keyword", "wildcard", "text", "match_only_text", "date", "ip", "version"}
INTEGER = {"long", "integer", "short", "byte", "unsigned_long"}
FLOAT = {"float", "double", "half_float", "scaled_float"}
CUSTOM = ("interlock",)


class Fields:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.f = yaml.safe_load(f)
        self.categories = {v["name"]: v.get("expected_event_types", [])
                           for v in self.f["event.category"]["allowed_values"]}
        self.allowed = {k: [v["name"] for v in self.f[k]["allowed_values"]]
                        for k in ("event.kind", "event.category", "event.type", "event.outcome")}
        self.containers = {k for k, v in self.f.items() if v["type"] in ("object", "flattened", "nested")}


def leaves(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            leaves(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out.append((prefix, value))


def check(fields, doc, version, where):
    problems = []
    if not isinstance(doc, dict):
        return [f"{where}: not a JSON object"]
    flat = []
    for k, v in doc.items():
        if k in CUSTOM:
            if not isinstance(v, dict):
                problems.append(f"{where}: {k} should be an object")
            continue
        if k in fields.containers and fields.f[k]["type"] in ("object", "flattened"):
            continue
        leaves(k, v, flat)
    for name, v in flat:
        # Leaves under an object/flattened field (labels.*) are free.
        parts = name.split(".")
        if any(".".join(parts[:i]) in fields.containers and
               fields.f[".".join(parts[:i])]["type"] in ("object", "flattened") for i in range(1, len(parts))):
            continue
        f = fields.f.get(name)
        if f is None:
            problems.append(f"{where}: '{name}' is not an ECS field")
            continue
        values = v if isinstance(v, list) else [v]
        if isinstance(v, list) and "array" not in f.get("normalize", []):
            problems.append(f"{where}: '{name}' is not an array field")
        t = f["type"]
        for x in values:
            ok = True
            if t in STRING:
                ok = isinstance(x, str)
                if ok and t == "ip":
                    try:
                        ipaddress.ip_address(x)
                    except ValueError:
                        ok = False
            elif t in INTEGER:
                ok = isinstance(x, int) and not isinstance(x, bool)
            elif t in FLOAT:
                ok = isinstance(x, (int, float)) and not isinstance(x, bool)
            elif t == "boolean":
                ok = isinstance(x, bool)
            if not ok:
                problems.append(f"{where}: '{name}' = {x!r} is not a {t}")
        if name in fields.allowed:
            for x in values:
                if x not in fields.allowed[name]:
                    problems.append(f"{where}: '{name}' = {x!r} is not an allowed value")
    for name, f in fields.f.items():
        if f.get("required"):
            node = doc
            for p in name.split("."):
                node = node.get(p) if isinstance(node, dict) and p in node else None
            if node is None and name not in doc:
                problems.append(f"{where}: required field '{name}' is missing")
    if doc.get("ecs", {}).get("version") != version:
        problems.append(f"{where}: ecs.version {doc.get('ecs', {}).get('version')!r} != {version}")
    ev = doc.get("event", {})
    cats = ev.get("category", [])
    cats = cats if isinstance(cats, list) else [cats]
    types = ev.get("type", [])
    for t in types if isinstance(types, list) else [types]:
        if not any(t in fields.categories.get(c, []) for c in cats):
            problems.append(f"{where}: event.type '{t}' is expected by none of the categories {cats}")
    return problems


MUTATIONS = [
    ("unknown field", lambda d: d.update(shoe_size=44)),
    ("unknown nested field", lambda d: d["event"].update(colour="red")),
    ("required field missing", lambda d: d.pop("@timestamp")),
    ("ecs.version wrong", lambda d: d["ecs"].update(version="1.0.0")),
    ("string where integer", lambda d: d["process"].update(pid="31337")),
    ("integer where string", lambda d: d["event"].update(id=7)),
    ("not an ip", lambda d: d["destination"].update(ip="db.internal")),
    ("array where scalar", lambda d: d["event"].update(id=["a", "b"])),
    ("category not allowed", lambda d: d["event"].update(category=["sql"])),
    ("type not allowed", lambda d: d["event"].update(type=["query"])),
    ("type not expected by category", lambda d: d["event"].update(type=["installation"])),
    ("outcome not allowed", lambda d: d["event"].update(outcome="ok")),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fields", required=True)
    ap.add_argument("--version", required=True, help="the ECS version ecs_flat.yml is (ecs.version)")
    ap.add_argument("--samples", required=True, nargs="+", help="program (and arguments) printing one document per line")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    fields = Fields(args.fields)
    version = args.version
    lines = subprocess.run(args.samples, check=True, stdout=subprocess.PIPE).stdout.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    docs, problems = [], []
    for n, line in enumerate(lines, 1):
        try:
            docs.append(json.loads(line.decode("utf-8"),
                                   parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))))
        except ValueError as e:
            problems.append(f"line {n}: not strict UTF-8 JSON: {e}")
    if not docs:
        print("no documents")
        return 1
    if args.self_test:
        failures = []
        if check(fields, docs[0], version, "good"):
            failures.append(f"the good document has problems: {check(fields, docs[0], version, 'good')}")
        for name, mutate in MUTATIONS:
            d = json.loads(json.dumps(docs[0]))
            mutate(d)
            if not check(fields, d, version, name):
                failures.append(f"not caught: {name}")
        for f in failures:
            print(f)
        print(f"self-test: {len(MUTATIONS)} mutations, {len(failures)} failures")
        return 1 if failures else 0
    for n, d in enumerate(docs, 1):
        problems += check(fields, d, version, f"line {n} {d.get('event', {}).get('action', '?')}")
    for p in problems:
        print(p)
    print(f"{len(docs)} documents, {len(problems)} problems, ECS {version}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
