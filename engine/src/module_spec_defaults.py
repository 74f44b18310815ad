"""Makes module_spec_defaults.json (read by actions.rs for `invocation.module_args`) from the
argument specs of ansible-core's modules: each module's main() is run until it builds its
AnsibleModule, whose spec is taken (with the common file arguments where it adds them).

    /var/cache/settle-compat/venv/bin/python3 engine/src/module_spec_defaults.py MODULE... \
        > engine/src/module_spec_defaults.json

`shell` (Ansible's action for `command` with `_uses_shell: true`) is added as that.
"""
import importlib, json, sys
from ansible.module_utils import basic
FILE_COMMON_ARGUMENTS = basic.FILE_COMMON_ARGUMENTS

class Captured(Exception):
    pass

def capture(self, argument_spec, **kw):
    spec = dict(argument_spec)
    if kw.get('add_file_common_args'):
        for k, v in FILE_COMMON_ARGUMENTS.items():
            spec.setdefault(k, v)
    raise Captured(spec)

basic.AnsibleModule.__init__ = capture
out = {}
for name in sys.argv[1:]:
    try:
        mod = importlib.import_module('ansible.modules.' + name)
    except Exception as e:
        print(f"skip {name}: {e}", file=sys.stderr)
        continue
    # Some modules subclass AnsibleModule or check sys.argv; main() runs until AnsibleModule().
    sys.argv = ['x']
    try:
        mod.main()
        print(f"skip {name}: no AnsibleModule", file=sys.stderr)
        continue
    except Captured as c:
        spec = c.args[0]
    except BaseException as e:
        print(f"skip {name}: {type(e).__name__} {e}", file=sys.stderr)
        continue
    defaults = {k: v.get('default') for k, v in sorted(spec.items())}
    no_log = sorted(k for k, v in spec.items() if v.get('no_log'))
    aliases = {a: k for k, v in spec.items() for a in (v.get('aliases') or [])}
    types = {k: v['type'] for k, v in spec.items() if v.get('type') in ('int', 'bool', 'float')}
    out[name] = {"defaults": defaults, "no_log": no_log, "aliases": aliases, "types": types}
if 'command' in out:
    out['shell'] = json.loads(json.dumps(out['command']))
    out['shell']['defaults']['_uses_shell'] = True
print('{\n' + ',\n'.join('  %s: %s' % (json.dumps(k), json.dumps(out[k], sort_keys=True))
                          for k in sorted(out)) + '\n}')
