# settle: runs Ansible action plugins (controller Python) for settle, one task on one host per
# request, with ansible-core's own TaskExecutor: the task's arguments and keywords as settle
# computed them, the host's variables (connection ones included, so Ansible's connection plugin
# reaches the host as settle would), check and diff mode. Started once per run with the
# controller's Python that has ansible-core; reads one JSON request a line on standard input and
# answers one JSON line on the standard output it was started with (anything the plugins print
# goes to standard error instead).
#
# settle keeps the task's loop, when, until/retries, register, changed_when, failed_when and
# notify: they are not given here, so a request is exactly one run of the action.
import json
import os
import sys

answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr


def answer(value):
    answers.write(json.dumps(value) + "\n")
    answers.flush()


try:
    from ansible import constants as C  # noqa: F401  (reads ansible.cfg first, as the CLI does)
    from ansible import context
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.inventory.host import Host
    from ansible.vars.manager import VariableManager
    from ansible.playbook.play import Play
    from ansible.playbook.block import Block
    from ansible.playbook.task import Task
    from ansible.playbook.play_context import PlayContext
    from ansible.executor.task_executor import TaskExecutor
    from ansible.plugins import loader as plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    from ansible.utils.display import Display
    from ansible._internal._templating._engine import TemplateEngine
    from ansible._internal._datatag._tags import TrustedAsTemplate
except Exception as e:  # pragma: no cover - reported to settle
    answer({"error": "cannot load ansible-core: %s: %s" % (type(e).__name__, e)})
    sys.exit(1)


class NoCallbacks:
    """The queue TaskExecutor reports retries and async polls to: settle keeps those."""

    def send_callback(self, *args, **kwargs):
        pass

    def send_task_result(self, *args, **kwargs):
        pass


started = False
plugin_dirs = set()
loader = None
variable_manager = None
display = Display()


def start(request):
    global started, loader, variable_manager
    context.CLIARGS = ImmutableDict(
        check=bool(request.get("check_mode")),
        diff=bool(request.get("diff")),
        verbosity=int(request.get("verbosity", 0)),
        connection="smart",
        become=False,
        forks=1,
    )
    display.verbosity = int(request.get("verbosity", 0))
    plugin_loader.init_plugin_loader([])
    loader = DataLoader()
    variable_manager = VariableManager(loader=loader)
    started = True


def trusted(value):
    """Variables as written in a playbook or inventory: templates Ansible renders when used."""
    if isinstance(value, str):
        return TrustedAsTemplate().tag(value)
    if isinstance(value, list):
        return [trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: trusted(v) for k, v in value.items()}
    return value


def plain(value):
    """The result as a playbook sees it (error and warning summaries as text), as JSON data."""
    value = TemplateEngine().transform(value)
    return json.loads(json.dumps(value, default=str))


def run(request):
    if not started:
        start(request)
    play_dir = request["play_dir"]
    loader.set_basedir(play_dir)
    AnsibleCollectionConfig.playbook_paths = [play_dir]
    for path in request.get("plugin_dirs", []):
        if path not in plugin_dirs and os.path.isdir(path):
            plugin_dirs.add(path)
            plugin_loader.add_all_plugin_dirs(path)

    task_in = request["task"]
    ds = {"name": task_in.get("name") or task_in["action"], "action": task_in["action"],
          "args": task_in.get("args") or {}}
    for keyword in ("check_mode", "diff", "no_log", "become", "become_user", "become_method",
                    "become_flags", "become_exe", "environment", "timeout", "collections",
                    "delegate_to"):
        if task_in.get(keyword) is not None:
            ds[keyword] = task_in[keyword]

    play = Play().load(
        {"name": "settle", "hosts": [request["host"]], "gather_facts": False},
        variable_manager=variable_manager, loader=loader)
    block = Block(play=play)
    task = Task.load(ds, block=block, variable_manager=variable_manager, loader=loader)
    search_path = request.get("search_path")
    if search_path:
        task.get_search_path = lambda: list(search_path)

    host = Host(request["host"])
    job_vars = dict(request.get("vars") or {})
    for name, value in (request.get("templates") or {}).items():
        job_vars[name] = trusted(value)
    play_context = PlayContext(play=play)
    executor = TaskExecutor(
        host=host, task=task, job_vars=job_vars, play_context=play_context, loader=loader,
        shared_loader_obj=plugin_loader, final_q=NoCallbacks(), variable_manager=variable_manager)
    result = executor.run()
    return {"result": plain(result)}


for line in sys.stdin:
    if not line.strip():
        continue
    try:
        request = json.loads(line)
        answer(run(request))
    except BaseException as e:  # keep serving: the next task may be fine
        import traceback
        answer({"error": "%s: %s" % (type(e).__name__, e), "traceback": traceback.format_exc()})
