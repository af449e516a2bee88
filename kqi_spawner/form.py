"""The hub's spawn form for notebooks: the guide's options, turned into the API's CreateInputModel.

People who start a server from /hub/home get this form; the hub passes what
they typed to ``options_from_form``, whose result the spawner sends to the
kqi service, which checks it exactly as ``POST /api/v2/notebook/run`` does
(so a bad value comes back as the service's message on the spawn page).
Lifetimes are typed in hours, as in the guide, and sent in seconds.

``render_options_form`` offers the user's tenants, the tenant's datasets, git
endpoints (the default preselected), registries and partitions by name, from
the kqi service's ``internal/spawn-options``; ``options_form_html`` is the
same form with plain inputs, for when the service cannot be asked.
"""

from __future__ import annotations

import html

options_form_html = """
<div class="form-group">
  <label for="kqi-tenant">Tenant id (empty: your default tenant)</label>
  <input class="form-control" id="kqi-tenant" name="tenantId" inputmode="numeric">
</div>
<div class="form-group row">
  <div class="col-sm-4"><label for="kqi-cpu">CPU cores</label>
    <input class="form-control" id="kqi-cpu" name="cpu" type="number" min="1" value="1" required></div>
  <div class="col-sm-4"><label for="kqi-memory">Memory (GB)</label>
    <input class="form-control" id="kqi-memory" name="memory" type="number" min="1" value="2" required></div>
  <div class="col-sm-4"><label for="kqi-gpu">GPUs</label>
    <input class="form-control" id="kqi-gpu" name="gpu" type="number" min="0" value="0" required></div>
</div>
<div class="form-group">
  <label for="kqi-lifetime">Lifetime (hours; 0 = unlimited where your tenant allows it)</label>
  <input class="form-control" id="kqi-lifetime" name="lifetimeHours" type="number" min="0" step="any" value="8">
</div>
<div class="form-group row">
  <div class="col-sm-6"><label for="kqi-image">Container image (registry/image:tag; empty: the default)</label>
    <input class="form-control" id="kqi-image" name="image"></div>
  <div class="col-sm-6"><label for="kqi-partition">Partition</label>
    <input class="form-control" id="kqi-partition" name="partition"></div>
</div>
<div class="form-group">
  <label for="kqi-dataset">Dataset id</label>
  <input class="form-control" id="kqi-dataset" name="dataSetId" inputmode="numeric">
</div>
<div class="form-group row">
  <div class="col-sm-3"><label for="kqi-git">Git endpoint id</label>
    <input class="form-control" id="kqi-git" name="gitId" inputmode="numeric"></div>
  <div class="col-sm-3"><label for="kqi-owner">Owner</label>
    <input class="form-control" id="kqi-owner" name="gitOwner"></div>
  <div class="col-sm-3"><label for="kqi-repository">Repository</label>
    <input class="form-control" id="kqi-repository" name="gitRepository"></div>
  <div class="col-sm-3"><label for="kqi-branch">Branch or commit</label>
    <input class="form-control" id="kqi-branch" name="gitBranch"></div>
</div>
<div class="form-group">
  <label for="kqi-parents">Parent training ids (comma separated)</label>
  <input class="form-control" id="kqi-parents" name="parentIds">
</div>
<div class="form-group">
  <label for="kqi-env">Environment variables (one NAME=value per line)</label>
  <textarea class="form-control" id="kqi-env" name="env" rows="3"></textarea>
</div>
<div class="form-group">
  <label for="kqi-entry">Startup script (runs before JupyterLab)</label>
  <textarea class="form-control" id="kqi-entry" name="entryPoint" rows="2"></textarea>
</div>
<div class="form-group">
  <label for="kqi-memo">Memo</label>
  <input class="form-control" id="kqi-memo" name="memo">
</div>
"""


def _select(name: str, field_id: str, choices: list[tuple[str, str]], selected: str = "", empty: str = "") -> str:
    """A <select> of (value, label) choices, ``empty`` as its first (blank) choice when given."""
    options = [f'<option value="">{html.escape(empty)}</option>'] if empty else []
    for value, label in choices:
        mark = " selected" if value == selected else ""
        options.append(f'<option value="{html.escape(value)}"{mark}>{html.escape(label)}</option>')
    return f'<select class="form-control" id="{field_id}" name="{name}">{"".join(options)}</select>'


def _named(item: dict) -> str:
    shown = item.get("displayName") or item["name"]
    return f"{shown} ({item['name']})" if shown != item["name"] else str(item["name"])


#: the plain inputs of ``options_form_html`` that ``render_options_form`` turns into pickers
PLAIN_INPUTS = {
    "tenantId": ('<label for="kqi-tenant">Tenant id (empty: your default tenant)</label>\n'
                 '  <input class="form-control" id="kqi-tenant" name="tenantId" inputmode="numeric">'),
    "partition": '<input class="form-control" id="kqi-partition" name="partition">',
    "dataSetId": ('<label for="kqi-dataset">Dataset id</label>\n'
                  '  <input class="form-control" id="kqi-dataset" name="dataSetId" inputmode="numeric">'),
    "gitId": ('<label for="kqi-git">Git endpoint id</label>\n'
              '    <input class="form-control" id="kqi-git" name="gitId" inputmode="numeric">'),
    "image": ('<div class="col-sm-6"><label for="kqi-image">Container image (registry/image:tag; empty: the default)'
              '</label>\n    <input class="form-control" id="kqi-image" name="image"></div>'),
}


def render_options_form(choices: dict) -> str:
    """The spawn form with pickers: the tenant's datasets, git endpoints, registries and partitions by name."""
    tenant = choices["tenant"]
    tenants = _select("tenantId", "kqi-tenant", [(str(t["id"]), _named(t)) for t in choices["tenants"]],
                      str(tenant["id"]))
    datasets = _select("dataSetId", "kqi-dataset", [(str(d["id"]), f"{d['id']}: {d['name']}")
                                                    for d in choices["datasets"]], empty="(none)")
    gits = _select("gitId", "kqi-git", [(str(g["id"]), g["name"]) for g in choices["gits"]],
                   str(choices.get("defaultGitId") or ""), empty="(none)")
    registries = _select("registryId", "kqi-registry", [(str(r["id"]), r["name"]) for r in choices["registries"]],
                         str(choices.get("defaultRegistryId") or ""), empty="(default)")
    partitions = _select("partition", "kqi-partition", [(p, p) for p in choices["partitions"]], empty="(any)")
    pickers = {
        "tenantId": f'<label for="kqi-tenant">Tenant (the lists below are {html.escape(_named(tenant))}\'s)</label>\n'
                    f'  {tenants}',
        "partition": partitions,
        "dataSetId": f'<label for="kqi-dataset">Dataset</label>\n  {datasets}',
        "gitId": f'<label for="kqi-git">Git endpoint</label>\n    {gits}',
        "image": (f'<div class="col-sm-3"><label for="kqi-registry">Registry</label>\n    {registries}</div>\n'
                  '  <div class="col-sm-3"><label for="kqi-image">Image:tag (empty: the default)</label>\n'
                  '    <input class="form-control" id="kqi-image" name="image"></div>'),
    }
    form = options_form_html
    for name, plain in PLAIN_INPUTS.items():
        if plain not in form:
            raise AssertionError(f"the spawn form's {name} input changed: update PLAIN_INPUTS")
        form = form.replace(plain, pickers[name])
    return form


def render_rerun_form(rerun: dict) -> str:
    """The form of a server whose notebook exists: it starts that notebook again, with its last settings."""
    return (f'<div class="form-group" id="kqi-rerun">Notebook {int(rerun["id"])} '
            f'<strong>{html.escape(str(rerun["name"]))}</strong> ({html.escape(str(rerun["status"]))}) is this '
            'server: start it again with its last settings (change them with Rerun in the KQI console).'
            '<input type="hidden" name="rerun" value="1"></div>')


class FormError(ValueError):
    """A value the form cannot turn into the API's model."""


def _one(formdata: dict, name: str) -> str:
    value = formdata.get(name) or [""]
    return (value[0] if isinstance(value, list) else value).strip()


def _number(formdata: dict, name: str, kind=int):
    text = _one(formdata, name)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise FormError(f"{name} must be a number, not {text!r}") from None


def options_from_form(formdata: dict) -> dict:
    """The CreateInputModel fields (plus ``tenantId``) of a submitted spawn form; none for a rerun's form."""
    options: dict = {}
    if _one(formdata, "rerun"):
        return options
    for name in ("cpu", "memory", "gpu", "dataSetId", "tenantId"):
        value = _number(formdata, name)
        if value is not None:
            options[name] = value
    hours = _number(formdata, "lifetimeHours", float)
    options["expiresIn"] = int(round((hours if hours is not None else 8) * 3600))
    for name in ("partition", "memo", "entryPoint"):
        if _one(formdata, name):
            options[name] = _one(formdata, name)
    image = _one(formdata, "image")
    if image:
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        options["containerImage"] = {"image": name, "tag": tag or "latest"}
        registry = _number(formdata, "registryId")
        if registry is not None:
            options["containerImage"]["registryId"] = registry
    if _one(formdata, "gitRepository"):
        ref = _one(formdata, "gitBranch")
        is_commit = len(ref) >= 7 and all(c in "0123456789abcdef" for c in ref.lower())
        options["gitModel"] = {"gitId": _number(formdata, "gitId"), "owner": _one(formdata, "gitOwner"),
                               "repository": _one(formdata, "gitRepository"),
                               "branch": None if is_commit else (ref or None), "commitId": ref if is_commit else None}
    parents = [p.strip() for p in _one(formdata, "parentIds").split(",") if p.strip()]
    if parents:
        try:
            options["parentIds"] = [int(p) for p in parents]
        except ValueError:
            raise FormError("parent ids must be numbers") from None
    env = {}
    for line in _one(formdata, "env").splitlines():
        if line.strip():
            key, sep, value = line.partition("=")
            if not sep:
                raise FormError(f"environment line {line!r} is not NAME=value")
            env[key.strip()] = value
    if env:
        options["options"] = env
    return options
