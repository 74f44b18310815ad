# settle's bridge to Ansible's Python filter, test and lookup plugins: one process per run.
# Reads one JSON request a line on stdin, writes one JSON answer a line on stdout.
#
#   {"op": "has", "kind": "filter"|"test", "name": N, "dirs": [...]}
#       -> {"found": true} | {"found": false} | {"error": "The filter plugin 'N' failed to load: ..."}
#   {"op": "filter"|"test", "name": N, "value": V, "args": [...], "kwargs": {...}, "dirs": [...]}
#   {"op": "lookup", "name": N, "terms": [...], "kwargs": {...}, "variables": {...},
#    "basedir": D, "dirs": [...], "undefined": [indexes of undefined terms]}
#       -> {"value": ...} | {"error": "..."} | {"undefined": true} | {"not_found": true}
import json
import sys

_out = sys.stdout
# Plugins that print must not break the protocol.
sys.stdout = sys.stderr

from ansible.errors import AnsibleError  # noqa: E402
from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.plugins import loader as _loader  # noqa: E402
from ansible.template import Templar, trust_as_template  # noqa: E402

_loader.init_plugin_loader()
_seen_dirs = set()
_dataloader = DataLoader()


def _add_dirs(dirs):
    for d in dirs or ():
        if d not in _seen_dirs:
            _seen_dirs.add(d)
            _loader.add_all_plugin_dirs(d)


def _message(ex):
    # Ansible's way of showing a chain of causes: "outer: inner".
    parts = []
    seen = set()
    while ex is not None and id(ex) not in seen:
        seen.add(id(ex))
        text = getattr(ex, 'message', None) or str(ex)
        text = str(text).strip()
        if text and (not parts or text not in parts[-1]):
            parts.append(text)
        ex = ex.__cause__ or (None if ex.__suppress_context__ else ex.__context__)
    return ': '.join(p.rstrip('.') if i < len(parts) - 1 else p for i, p in enumerate(parts))


def _plain(value):
    """A plugin's result as JSON: sets and tuples as lists, other objects as text."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return str(value) if isinstance(value, str) else value
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if hasattr(value, 'items'):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, '__iter__') and not isinstance(value, (bytes, bytearray)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return value.decode('utf-8', 'surrogateescape')
    return str(value)


_plugins = {}


def _call(kind, name, value, args, kwargs):
    # The plugin's function called directly (compiling an expression per call costs ~100
    # times more); one that wants Jinja's context or environment goes through a templar.
    key = (kind, name)
    if key not in _plugins:
        plugin_loader = _loader.filter_loader if kind == 'filter' else _loader.test_loader
        plugin = plugin_loader.get(name)
        function = getattr(plugin, 'j2_function', None)
        if function is not None and getattr(function, 'jinja_pass_arg', None) is not None:
            function = None
        _plugins[key] = function
    function = _plugins[key]
    if function is None:
        return _jinja_call(kind, name, value, args, kwargs)
    try:
        result = function(value, *args, **kwargs)
        if kind == 'filter' and not isinstance(result, (str, bytes, dict, list)) and hasattr(result, '__iter__'):
            result = list(result)
    except Exception as ex:
        raise RuntimeError(f'The {kind} plugin {name!r} failed: {_message(ex)}') from None
    return bool(result) if kind == 'test' else result


def _missing_collection(ex):
    # An FQCN whose collection is not installed: Ansible says the plugin is not found.
    while ex is not None:
        if isinstance(ex, ModuleNotFoundError) and str(getattr(ex, 'name', '')).startswith('ansible_collections'):
            return True
        if 'unable to locate collection' in str(ex):
            return True
        ex = ex.__cause__ or ex.__context__
    return False


def _jinja_call(kind, name, value, args, kwargs, variables=None):
    templar = Templar(loader=_dataloader, variables=variables or {})
    op = '|' if kind == 'filter' else 'is'
    expr = f'__settle_value {op} {name}(*__settle_args, **__settle_kwargs)'
    return templar.evaluate_expression(
        trust_as_template(expr),
        local_variables={'__settle_value': value, '__settle_args': args, '__settle_kwargs': kwargs},
    )


def _has(kind, name):
    plugin_loader = _loader.filter_loader if kind == 'filter' else _loader.test_loader
    try:
        plugin = plugin_loader.get(name)
    except Exception as ex:
        if _missing_collection(ex):
            return {'found': False}
        return {'error': f'The {kind} plugin {name!r} failed to load: {_message(ex)}'}
    if plugin is None:
        return {'found': False}
    try:
        # What Ansible asks of a plugin before calling it: a broken one fails here.
        getattr(plugin, 'accept_args_markers', None)
        getattr(plugin, 'j2_function', None)
    except Exception as ex:
        return {'error': f'The {kind} plugin {name!r} failed to load: {_message(ex)}'}
    return {'found': True}


def _lookup(req):
    name = req['name']
    basedir = req.get('basedir')
    loader = DataLoader()
    if basedir:
        loader.set_basedir(basedir)
    variables = req.get('variables') or {}
    templar = Templar(loader=loader, variables=variables)
    try:
        instance = _loader.lookup_loader.get(name, loader=loader, templar=templar)
    except Exception as ex:
        if _missing_collection(ex):
            return {'not_found': True}
        return {'error': f'The lookup plugin {name!r} failed to load: {_message(ex)}'}
    if instance is None:
        return {'not_found': True}
    if req.get('undefined') and not getattr(instance, 'accept_args_markers', False):
        return {'undefined': True}
    terms = req.get('terms') or []
    try:
        result = instance.run(terms, variables=variables, **(req.get('kwargs') or {}))
        if isinstance(result, (str, bytes)) or not hasattr(result, '__len__'):
            raise TypeError(f'returned {type(result)} instead of {list}')
    except Exception as ex:
        return {'error': f'The lookup plugin {name!r} failed: {_message(ex)}'}
    return {'value': _plain(list(result))}


def _answer(req):
    op = req.get('op')
    _add_dirs(req.get('dirs'))
    if op == 'has':
        return _has(req['kind'], req['name'])
    if op in ('filter', 'test'):
        try:
            value = _call(op, req['name'], req.get('value'), req.get('args') or [], req.get('kwargs') or {})
        except Exception as ex:
            return {'error': _message(ex)}
        return {'value': _plain(value)}
    if op == 'lookup':
        return _lookup(req)
    return {'error': f'settle sent an unknown request {op!r}'}


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        answer = _answer(json.loads(line))
    except Exception as ex:  # the bridge itself must keep answering
        answer = {'error': _message(ex)}
    try:
        text = json.dumps(answer)
    except Exception as ex:
        text = json.dumps({'error': f'cannot send the result back to settle: {ex}'})
    _out.write(text + '\n')
    _out.flush()
