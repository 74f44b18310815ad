# settle: packs one of Ansible's Python modules into a zip, with the module_utils it imports,
# the way ansible-core's module_common finds them: every `import`/`from ... import` of
# `ansible.module_utils...` or `ansible_collections.<ns>.<coll>.plugins.module_utils...`
# (relative ones too), followed through the files found, each file's parent packages added.
# An import inside a `try:` that cannot be found is left out (an optional import); any other
# is an error. Run with the controller's Python that has ansible-core; reads a JSON request on
# standard input, writes the zip, prints JSON.
import ast
import datetime
import json
import os
import sys
import zipfile

request = json.load(sys.stdin)
module_path = request["module_path"]
module_name = request["python_name"]
utils_dirs = request["module_utils_dirs"]          # folders standing for ansible/module_utils
collection_roots = request["collection_roots"]    # folders holding ansible_collections/

import ansible
from ansible.release import __version__

ANSIBLE_UTILS = os.path.join(os.path.dirname(ansible.__file__), "module_utils")


def source_of(path):
    with open(path, "rb") as f:
        return f.read()


def imports(tree, package):
    """(dotted name, optional) for every import of the tree; `from a import b` gives a.b and a."""
    found = []

    def visit(node, optional):
        for child in ast.iter_child_nodes(node):
            inner = optional or isinstance(node, ast.Try) and child in node.body
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(([alias.name], inner))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - child.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in child.names:
                    names = [] if alias.name == "*" else [base + "." + alias.name]
                    found.append((names + [base], inner))
            visit(child, inner)

    visit(tree, False)
    return found


def locate(dotted):
    """The file of a module_utils module or package, or None."""
    parts = dotted.split(".")
    if parts[:2] == ["ansible", "module_utils"]:
        roots = utils_dirs + [ANSIBLE_UTILS]
        rest = parts[2:]
    elif parts[0] == "ansible_collections" and len(parts) > 5 and parts[3:5] == ["plugins", "module_utils"]:
        roots = [os.path.join(r, "ansible_collections", *parts[1:5]) for r in collection_roots]
        rest = parts[5:]
    else:
        return None
    for root in roots:
        base = os.path.join(root, *rest)
        for candidate in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(candidate):
                return candidate
    return None


def wanted(dotted):
    parts = dotted.split(".")
    return parts[:2] == ["ansible", "module_utils"] or (
        parts[0] == "ansible_collections" and parts[3:5] == ["plugins", "module_utils"])


files = {}   # path in the zip -> bytes
stubs = {
    "ansible/__init__.py": ("from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n"
                            "__version__ = %r\n" % __version__).encode(),
    "ansible/module_utils/__init__.py": b"from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n",
}


def add_parents(dotted):
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        init = "/".join(parts[:i]) + "/__init__.py"
        if init in files:
            continue
        if init in stubs:
            files[init] = stubs[init]
            continue
        package = ".".join(parts[:i])
        path = locate(package) if wanted(package) else None
        files[init] = source_of(path) if path and path.endswith("__init__.py") else b""
        if path and path.endswith("__init__.py"):
            pending.append((package, path, True))


module_source = source_of(module_path).replace(
    b"#<<INCLUDE_ANSIBLE_MODULE_COMMON>>", b"from ansible.module_utils.basic import *")
files["/".join(module_name.split(".")) + ".py"] = module_source
pending = []
add_parents(module_name)

seen = set()
queue = [(module_name, module_source, False)]
always = ["ansible.module_utils.basic", "ansible.module_utils._internal._ansiballz._loader"]
try:
    from ansible.module_utils._internal import _json as profiles
    always += [profiles.get_module_serialization_profile_module_name("legacy", True),
               profiles.get_module_serialization_profile_module_name("legacy", False)]
except Exception:
    pass
for name in always:
    path = locate(name)
    if path:
        queue.append((name, source_of(path), path.endswith("__init__.py")))
        seen.add(name)
        files["/".join(name.split(".")) + ("/__init__.py" if path.endswith("__init__.py") else ".py")] = source_of(path)
        add_parents(name)

while queue or pending:
    if pending:
        name, path, is_package = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        queue.append((name, source_of(path), is_package))
        continue
    name, source, is_package = queue.pop()
    package = name if is_package else name.rpartition(".")[0]
    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as e:
        print(json.dumps({"error": "cannot compile %s: %s" % (name, e)}))
        sys.exit(0)
    for candidates, optional in imports(tree, package):
        candidates = [c for c in candidates if wanted(c)]
        if not candidates:
            continue
        # `six.moves.x` and the like are no files: the nearest parent that is one stands in.
        floor = 3 if candidates[-1].startswith("ansible.") else 6
        parts = candidates[-1].split(".")
        candidates += [".".join(parts[:i]) for i in range(len(parts) - 1, floor - 1, -1)]
        hit = None
        for dotted in candidates:
            if dotted in seen:
                hit = dotted
                break
            path = locate(dotted)
            if path:
                hit = dotted
                seen.add(dotted)
                is_pkg = path.endswith("__init__.py")
                code = source_of(path)
                files["/".join(dotted.split(".")) + ("/__init__.py" if is_pkg else ".py")] = code
                add_parents(dotted)
                queue.append((dotted, code, is_pkg))
                break
        if hit is None and not optional:
            print(json.dumps({"error": "Could not find imported module support code for %s. Looked for (%s)"
                              % (module_name, ", ".join(candidates))}))
            sys.exit(0)

now = datetime.datetime.now(datetime.timezone.utc)
stamp = (max(now.year, 1980), now.month, now.day, now.hour, now.minute, now.second)
with zipfile.ZipFile(request["zip_path"], "w", compression=zipfile.ZIP_DEFLATED) as zf:
    for path in sorted(files):
        info = zipfile.ZipInfo(path, stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, files[path])
print(json.dumps({"files": sorted(files), "ansible_version": __version__}))
