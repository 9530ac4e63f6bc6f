#!/usr/bin/python3
"""Checks OCSF events (one JSON object per line) against the OCSF schema excerpt in
tests/data/ocsf (the ocsf-schema repository's own source files, not a JSON Schema).

    ocsf_schema_check.py --schema tests/data/ocsf --samples build/.../audit_ocsf_samples

It resolves what the OCSF schema server compiles: `extends` chains of classes and
objects, `$include` of includes and profiles, attribute types, arrays and enums from
dictionary.json, overridden per class or object. For each event it checks:
  - class_uid is a vendored class; category_uid is its category; type_uid is
    class_uid * 100 + activity_id;
  - every attribute exists in the class (or object); profile attributes only when the
    profile is named in metadata.profiles and the class takes it; `unmapped` and other
    free-form `object` values are not looked into;
  - required attributes are present (those of profiles in use included); `at_least_one`
    and `just_one` constraints hold;
  - types: string / integer (long, timestamp, port) / boolean / float / object / array;
  - integer enums: the value is one the enum defines; a `_id` with a sibling caption
    attribute (activity_id / activity_name excepted: the class's own), when not Other
    (99), has the enum's caption there. String enums (http_method) are open: not checked.
Exit status 1 and one line per problem when anything fails.
"""
import argparse
import json
import os
import subprocess
import sys

INT_TYPES = {"integer_t", "long_t", "timestamp_t", "port_t"}


class Schema:
    def __init__(self, root):
        self.root = root
        self.dictionary = self._load("dictionary.json")
        self.types = self.dictionary["types"]["attributes"]
        self.categories = {k: v["uid"] for k, v in self._load("categories.json")["attributes"].items()}
        self.version = self._load("version.json")["version"]
        self.events = {}  # name -> raw definition
        for dirpath, _, files in os.walk(os.path.join(root, "events")):
            for f in files:
                d = self._load(os.path.relpath(os.path.join(dirpath, f), root))
                self.events[d["name"]] = d
        self.objects = {}
        for f in os.listdir(os.path.join(root, "objects")):
            d = self._load(os.path.join("objects", f))
            self.objects[d["name"]] = d
        self._resolved = {}
        self.classes = {}  # class_uid -> name
        for name in self.events:
            c = self.resolve_event(name)
            if c["uid"] is not None:
                self.classes[c["uid"]] = name

    def _load(self, rel):
        with open(os.path.join(self.root, rel), encoding="utf-8") as f:
            return json.load(f)

    def base_type(self, t):
        while t in self.types and self.types[t].get("type"):
            t = self.types[t]["type"]
        return t

    def _merge(self, attrs, raw, profile):
        """Merges attribute definitions `raw` (with $include) into `attrs`."""
        for inc in raw.get("$include", []):
            d = self._load(inc)
            inc_profile = d["name"] if d.get("meta") == "profile" else None
            self._merge(attrs, d.get("attributes", {}), inc_profile or profile)
        for k, v in raw.items():
            if k == "$include":
                continue
            if k in attrs:
                merged = dict(attrs[k])
                for kk, vv in v.items():
                    if kk == "enum":
                        merged["enum"] = {**merged.get("enum", {}), **vv}
                    else:
                        merged[kk] = vv
                attrs[k] = merged
            else:
                attrs[k] = dict(v)
                if profile:
                    attrs[k]["_profile"] = profile

    def _finish(self, attrs):
        for k, a in attrs.items():
            d = self.dictionary["attributes"].get(k)
            if d is None:
                raise SystemExit(f"schema: attribute {k} not in dictionary.json")
            a.setdefault("type", d.get("type"))
            a.setdefault("is_array", d.get("is_array", False))
            if "enum" in d:
                a["enum"] = {**d["enum"], **a.get("enum", {})}
            if "sibling" in d:
                a.setdefault("sibling", d["sibling"])

    def resolve_event(self, name):
        key = ("event", name)
        if key in self._resolved:
            return self._resolved[key]
        d = self.events[name]
        if "extends" in d:
            parent = self.resolve_event(d["extends"])
            attrs = {k: dict(v) for k, v in parent["attrs"].items()}
            profiles = list(parent["profiles"])
            category = parent["category"]
            constraints = dict(parent["constraints"])
        else:
            attrs, profiles, category, constraints = {}, [], None, {}
        self._merge(attrs, d.get("attributes", {}), None)
        self._finish(attrs)
        profiles += [p for p in d.get("profiles", []) if p not in profiles]
        category = d.get("category", category)
        constraints.update(d.get("constraints", {}))
        cat_uid = self.categories.get(category, 0)
        uid = cat_uid * 1000 + d["uid"] if "uid" in d else (0 if name == "base_event" else None)
        r = {"name": name, "attrs": attrs, "profiles": profiles, "category_uid": cat_uid,
             "category": category, "uid": uid, "constraints": constraints}
        self._resolved[key] = r
        return r

    def resolve_object(self, name):
        key = ("object", name)
        if key in self._resolved:
            return self._resolved[key]
        if name not in self.objects:
            return None
        d = self.objects[name]
        if "extends" in d:
            parent = self.resolve_object(d["extends"])
            if parent is None:
                raise SystemExit(f"schema: object {d['extends']} (parent of {name}) not vendored")
            attrs = {k: dict(v) for k, v in parent["attrs"].items()}
            profiles = list(parent["profiles"])
            constraints = dict(parent["constraints"])
        else:
            attrs, profiles, constraints = {}, [], {}
        self._merge(attrs, d.get("attributes", {}), None)
        self._finish(attrs)
        profiles += [p for p in d.get("profiles", []) if p not in profiles]
        # A child's constraints replace its parent's (as the schema server does).
        if "constraints" in d:
            constraints = dict(d["constraints"])
        r = {"name": name, "attrs": attrs, "profiles": profiles, "constraints": constraints}
        self._resolved[key] = r
        return r


class Checker:
    def __init__(self, schema):
        self.s = schema
        self.problems = []

    def bad(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    def check_members(self, where, value, attrs, profiles_in_use, allowed_profiles, constraints,
                      skip_sibling=()):
        for k, v in value.items():
            a = attrs.get(k)
            if a is None:
                self.bad(where, f"attribute '{k}' is not defined here")
                continue
            p = a.get("_profile")
            if p and (p not in profiles_in_use or p not in allowed_profiles):
                self.bad(where, f"attribute '{k}' belongs to profile '{p}', not in use")
            if k in ("class_uid", "category_uid") and "." not in where.split(" (")[-1]:
                # Their dictionary enums list only Base Event / Uncategorized; the schema
                # server fills them per class. Checked against the class in check_event.
                a = {kk: vv for kk, vv in a.items() if kk != "enum"}
            self.check_value(f"{where}.{k}", v, a, profiles_in_use)
            sib = a.get("sibling")
            if sib and k not in skip_sibling and "enum" in a and sib in value and isinstance(v, int):
                caption = a["enum"].get(str(v), {}).get("caption")
                if v != 99 and caption is not None and value[sib] != caption:
                    self.bad(where, f"{sib} '{value[sib]}' is not the caption of {k} {v} ('{caption}')")
        for k, a in attrs.items():
            p = a.get("_profile")
            if p and (p not in profiles_in_use or p not in allowed_profiles):
                continue
            if a.get("requirement") == "required" and k not in value:
                self.bad(where, f"required attribute '{k}' is missing")
        for names in [constraints.get("at_least_one")]:
            if names and not any(n in value for n in names):
                self.bad(where, f"needs at least one of {names}")
        names = constraints.get("just_one")
        if names and sum(n in value for n in names) != 1:
            self.bad(where, f"needs exactly one of {names}")

    def check_value(self, where, v, a, profiles_in_use):
        if a.get("is_array"):
            if not isinstance(v, list):
                self.bad(where, "should be an array")
                return
            for i, x in enumerate(v):
                self.check_scalar(f"{where}[{i}]", x, a, profiles_in_use)
        else:
            self.check_scalar(where, v, a, profiles_in_use)

    def check_scalar(self, where, v, a, profiles_in_use):
        t = a["type"]
        base = self.s.base_type(t)
        if t in self.s.types or base in self.s.types:
            if base == "string_t":
                ok = isinstance(v, str)
            elif base in INT_TYPES or t in INT_TYPES:
                ok = isinstance(v, int) and not isinstance(v, bool)
            elif base == "boolean_t":
                ok = isinstance(v, bool)
            elif base == "float_t":
                ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            else:  # json_t
                ok = True
            if not ok:
                self.bad(where, f"{v!r} is not a {t}")
                return
            if "enum" in a and base != "string_t" and str(v) not in a["enum"]:
                self.bad(where, f"{v} is not in the enum {sorted(a['enum'], key=int)}")
            return
        if not isinstance(v, dict):
            self.bad(where, f"should be an object ({t})")
            return
        if t == "object":
            return  # free-form (unmapped, xattributes)
        o = self.s.resolve_object(t)
        if o is None:
            self.bad(where, f"object type '{t}' is not vendored in tests/data/ocsf/objects")
            return
        self.check_members(where, v, o["attrs"], profiles_in_use, o["profiles"],
                           o["constraints"])

    def check_event(self, where, ev):
        if not isinstance(ev, dict):
            self.bad(where, "not a JSON object")
            return
        uid = ev.get("class_uid")
        if uid not in self.s.classes:
            self.bad(where, f"class_uid {uid!r} is not a vendored class")
            return
        c = self.s.resolve_event(self.s.classes[uid])
        where = f"{where} ({c['name']})"
        if ev.get("category_uid") != c["category_uid"]:
            self.bad(where, f"category_uid {ev.get('category_uid')} != {c['category_uid']}")
        act = ev.get("activity_id")
        if isinstance(act, int) and ev.get("type_uid") != uid * 100 + act:
            self.bad(where, f"type_uid {ev.get('type_uid')} != class_uid * 100 + activity_id")
        md = ev.get("metadata", {})
        if md.get("version") != self.s.version:
            self.bad(where, f"metadata.version {md.get('version')!r} != schema {self.s.version}")
        in_use = md.get("profiles", [])
        for p in in_use:
            if p not in c["profiles"]:
                self.bad(where, f"profile '{p}' is not one this class takes ({c['profiles']})")
        self.check_members(where, ev, c["attrs"], in_use, c["profiles"], c["constraints"],
                           skip_sibling=("activity_id",))


# Broken copies of a good event, each of which the checker must refuse: a checker that
# passes everything would make the test above worthless.
MUTATIONS = [
    ("unknown attribute", lambda e: e.update(not_an_ocsf_attribute=1)),
    ("unknown nested attribute", lambda e: e["actor"].update(shoe_size=44)),
    ("required attribute missing", lambda e: e.pop("severity_id")),
    ("required object attribute missing", lambda e: e["metadata"]["product"].pop("vendor_name")),
    ("type_uid inconsistent", lambda e: e.update(type_uid=e["type_uid"] + 1)),
    ("category_uid wrong", lambda e: e.update(category_uid=2)),
    ("class_uid unknown", lambda e: e.update(class_uid=9999)),
    ("enum value undefined", lambda e: e.update(severity_id=42)),
    ("sibling caption wrong", lambda e: e.update(severity="Catastrophic")),
    ("string where integer", lambda e: e.update(time="yesterday")),
    ("integer where string", lambda e: e["metadata"].update(uid=7)),
    ("boolean where integer", lambda e: e.update(status_id=True)),
    ("object where array", lambda e: e["metadata"].update(profiles="host")),
    ("profile not in use", lambda e: e["metadata"].update(profiles=[])),
    ("object type not vendored", lambda e: e.update(cloud={"provider": "x"})),
    ("constraint at_least_one", lambda e: e["dst_endpoint"].clear()),
    ("metadata.version", lambda e: e["metadata"].update(version="1.0.0")),
]


def self_test(schema, good):
    failures = []
    c = Checker(schema)
    c.check_event("good", good)
    if c.problems:
        failures.append(f"the good event has problems: {c.problems}")
    for name, mutate in MUTATIONS:
        ev = json.loads(json.dumps(good))
        mutate(ev)
        c = Checker(schema)
        c.check_event(name, ev)
        if not c.problems:
            failures.append(f"not caught: {name}")
    for f in failures:
        print(f)
    print(f"self-test: {len(MUTATIONS)} mutations, {len(failures)} failures")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schema", required=True)
    ap.add_argument("--samples", required=True, help="program printing one OCSF event per line")
    ap.add_argument("--self-test", action="store_true",
                    help="check that broken copies of the first sample event are refused")
    args = ap.parse_args()
    schema = Schema(args.schema)
    raw = subprocess.run([args.samples], check=True, stdout=subprocess.PIPE).stdout
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        print("no events")
        return 1
    if args.self_test:
        return self_test(schema, json.loads(lines[0]))
    checker = Checker(schema)
    for n, line in enumerate(lines, 1):
        try:
            ev = json.loads(line.decode("utf-8"), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError as e:  # UnicodeDecodeError and JSONDecodeError included
            checker.bad(f"line {n}", f"not strict UTF-8 JSON: {e}")
            continue
        code = ev.get("metadata", {}).get("event_code", "?") if isinstance(ev, dict) else "?"
        checker.check_event(f"line {n} {code}", ev)
    for p in checker.problems:
        print(p)
    print(f"{len(lines)} events, {len(checker.problems)} problems, OCSF {schema.version}")
    return 1 if checker.problems else 0


if __name__ == "__main__":
    sys.exit(main())
