"""Validates every deployment file of the repository without Envoy, Kubernetes or Docker.

Run by scripts/validate-configs.sh (which installs the pinned validators into a venv). It must
never pass a file it could not check: an unknown kind, type or file is an error, not a skip.

What is checked (docs/deployment.md "How the files are validated" says what is not):
- envoy/*.yaml and every `envoy.yaml` in a Kubernetes ConfigMap: parsed into Envoy's v3
  `Bootstrap` message with envoy-data-plane's generated types (unknown fields, wrong types and
  enum values refused; every `typed_config` Any resolved to its registered type and checked the
  same way), then cross-checked: referenced clusters exist, the router is the last HTTP filter,
  the lightning-wall filter fails closed and its plugin JSON follows the filter's rules.
- deploy/kubernetes/overlays/*: rendered with kustomize (`kubectl kustomize`, kustomize v5
  as kubectl embeds it), then checked like the examples below, plus the layout's rules: the
  .wasm copied by an init container into an emptyDir (no image volumes), configuration mounted
  as directories (never subPath), ClusterIP Services only, every image resolved by the
  kustomization's `images:`, one .wasm file name, Envoy trusting the ingress's X-Forwarded-For
  hop, and the store deciding the rollout (SQLite: one replica, Recreate; PostgreSQL: RollingUpdate
  with maxUnavailable 0, a readiness probe on the sidecar and a PodDisruptionBudget).
- deploy/systemd/*.service: `systemd-analyze verify`, the hardening options every unit keeps,
  and secrets only through LoadCredential= (deploy/systemd/lightning-wall.yaml reads each from
  the unit's credentials directory).
- examples/kubernetes/*.yaml: built-in kinds against the Kubernetes OpenAPI schemas
  (kubernetes-validate, strict); Istio, Envoy Gateway and Gateway API kinds against the schemas
  in scripts/schemas/ (transcribed from upstream, cited there); the plugin configuration inside
  WasmPlugin/EnvoyExtensionPolicy; Envoy resources inside EnvoyPatchPolicy; every ConfigMap's
  `lightning-wall.yaml`, examples/lightning-wall.yaml, examples/wordpress.yaml,
  deploy/systemd/lightning-wall.yaml and examples/demo/lightning-wall.yaml by
  `lightning-wall check-config`.
- Dockerfile, deploy/wasm-image/Containerfile and deploy/nginx-image/Containerfile: linted by hadolint (every finding fails) and
  parsed (the `dockerfile` package wraps BuildKit's own parser); base images pinned, the sidecar image runs as non-root, every COPY
  source exists, every workspace member is copied, and the build commands are the Makefile's.
Then a set of deliberately broken copies must each be rejected (negative tests).
"""

from __future__ import annotations

import copy
import functools
import glob
import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import dockerfile
import envoy_data_plane
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
# The oldest Kubernetes the manifests target: native sidecars are stable from 1.33.
KUBERNETES_VERSION = "1.33.0"
SCHEMAS = ROOT / "scripts" / "schemas"
CRD_SCHEMAS = {
    ("extensions.istio.io/v1alpha1", "WasmPlugin"): "istio-wasmplugin-v1alpha1.yaml",
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"): "envoygateway-envoyextensionpolicy-v1alpha1.yaml",
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyPatchPolicy"): "envoygateway-envoypatchpolicy-v1alpha1.yaml",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "gatewayapi-httproute-v1.yaml",
}
WASM_FILTER = "envoy.filters.http.wasm"
# The filter's file name wherever a proxy loads it (what `make wasm` builds, what Kong derives the
# filter's name from). Only the OCI image for Istio and Envoy Gateway stores /plugin.wasm, the
# name their image fetchers look for.
WASM_FILE_NAME = "lightning_wall_filter.wasm"
KUSTOMIZE_OVERLAYS = ROOT / "deploy" / "kubernetes" / "overlays"
ROUTER_FILTER = "envoy.filters.http.router"


@dataclass
class Report:
    """Errors found, each prefixed with where (file and object)."""

    errors: list[str] = field(default_factory=list)

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")


def load_envoy_types() -> Any:
    """Imports every generated module so that Any type URLs resolve (the message pool is
    filled on import), and returns the Bootstrap class."""
    for module in pkgutil.walk_packages(envoy_data_plane.__path__, "envoy_data_plane."):
        importlib.import_module(module.name)
    from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap
    from envoy_data_plane.envoy.config.cluster.v3 import Cluster

    return Bootstrap, Cluster


BOOTSTRAP, CLUSTER = load_envoy_types()


# kubernetes-validate re-reads its (large) JSON schemas on every call; the negative tests
# validate every object two dozen times, so read each file once. The schemas are never mutated.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)


@functools.lru_cache(maxsize=None)
def schema(name: str) -> dict:
    with open(SCHEMAS / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


PLUGIN_SCHEMA = schema("lightning-wall-plugin-config.yaml")


def schema_errors(instance: Any, schema_doc: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema_doc)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    ]


# --- Envoy ---------------------------------------------------------------------------------


def walk(node: Any, key: str) -> list[Any]:
    """Every value stored under `key` anywhere in a parsed YAML tree."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found.extend(walk(v, key))
    elif isinstance(node, list):
        for v in node:
            found.extend(walk(v, key))
    return found


def check_envoy_message(message_cls: Any, doc: Any, where: str, report: Report) -> bool:
    try:
        message_cls.from_dict(doc)
    except Exception as e:  # betterproto2/pydantic raise KeyError, ValueError, TypeError, …
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        detail = " ".join(str(e).split())[:400]
        report.error(where, f"not a valid Envoy {message_cls.__name__}: {type(e).__name__}: {detail or first_line}")
        return False
    return True


def check_plugin_config(config: Any, where: str, report: Report, clusters: set[str] | None) -> None:
    """The lightning-wall filter's plugin JSON, as filter/src/engine/config.rs parses it."""
    for problem in schema_errors(config, PLUGIN_SCHEMA):
        report.error(where, f"plugin configuration: {problem}")
    if clusters is not None and isinstance(config, dict):
        # Without wall_cluster a program's deposit credential with an empty proof is refused
        # (401 proof_missing): every shipped Envoy config names the public listener's cluster.
        for key in ("sidecar_cluster", "wall_cluster"):
            name = config.get(key)
            if name not in clusters:
                report.error(where, f"plugin configuration: {key} {name!r} is not a cluster of this config")


CIRCUIT_BREAKER_FIELDS = ("max_connections", "max_pending_requests", "max_requests")


def check_circuit_breakers(cluster: Any, where: str, report: Report) -> None:
    """The sidecar's clusters carry explicit circuit breakers: Envoy's defaults (1,024 each)
    would let a long-poll flood crowd out the wall page, or queue call-outs without bound."""
    if not isinstance(cluster, dict) or not str(cluster.get("name", "")).startswith("lightning_wall"):
        return
    thresholds = (cluster.get("circuit_breakers") or {}).get("thresholds") or []
    default = [t for t in thresholds if t.get("priority", "DEFAULT") == "DEFAULT"]
    missing = [f for f in CIRCUIT_BREAKER_FIELDS if not default or f not in default[0]]
    if missing:
        report.error(where, f"cluster {cluster.get('name')!r}: set circuit_breakers.thresholds "
                            f"{', '.join(missing)} explicitly (docs/deployment.md)")


def check_envoy_bootstrap(doc: Any, where: str, report: Report) -> None:
    if not check_envoy_message(BOOTSTRAP, doc, where, report):
        return
    resources = doc.get("static_resources", {}) or {}
    clusters = {c.get("name") for c in resources.get("clusters", []) or []}
    for cluster in resources.get("clusters", []) or []:
        check_circuit_breakers(cluster, where, report)
    for name in walk(resources.get("listeners", []), "cluster"):
        if name not in clusters:
            report.error(where, f"a route names cluster {name!r}, which is not defined")
    if "admin" in doc:
        address = walk(doc["admin"], "address")
        hosts = [a for a in address if isinstance(a, str)]
        if any(h not in ("127.0.0.1", "::1") for h in hosts):
            report.error(where, "admin must listen on loopback only (config_dump shows every secret)")
    wasm_filters = 0
    for chain in walk(resources.get("listeners", []), "http_filters"):
        names = [f.get("name") for f in chain]
        if names and names[-1] != ROUTER_FILTER:
            report.error(where, f"the last HTTP filter must be the router (got {names[-1]!r})")
        for f in chain:
            if f.get("name") != WASM_FILTER:
                continue
            wasm_filters += 1
            plugin = f.get("typed_config", {}).get("config", {})
            filename = ((plugin.get("vm_config") or {}).get("code") or {}).get("local", {}).get("filename", "")
            if Path(str(filename)).name != WASM_FILE_NAME:
                report.error(where, f"the filter is loaded from {filename!r}: name the file {WASM_FILE_NAME} everywhere")
            if plugin.get("failure_policy") != "FAIL_CLOSED":
                report.error(where, "the lightning-wall filter must have failure_policy: FAIL_CLOSED")
            value = plugin.get("configuration", {}).get("value")
            try:
                config = json.loads(value)
            except (TypeError, json.JSONDecodeError) as e:
                report.error(where, f"plugin configuration is not JSON: {e}")
                continue
            check_plugin_config(config, where, report, clusters)
    if wasm_filters == 0:
        report.error(where, "no lightning-wall filter (envoy.filters.http.wasm) in any listener")


# --- Kubernetes -----------------------------------------------------------------------------


def check_sidecar_config(text: str, where: str, report: Report, lw_bin: str) -> None:
    """`lightning-wall check-config`: the sidecar's own validation, every field and bound."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lightning-wall.yaml"
        path.write_text(text, encoding="utf-8")
        run = subprocess.run([lw_bin, "check-config", "--config", str(path)], capture_output=True, text=True)
    if run.returncode != 0:
        message = " ".join((run.stderr or run.stdout).split()).replace(str(path), "lightning-wall.yaml")
        report.error(where, f"lightning-wall check-config: {message}")
    # A shipped config is what operators copy: it must not carry a trap the check warns about.
    for line in (run.stdout + run.stderr).splitlines():
        if ": warning: " in line:
            warning = line.split(": warning: ", 1)[1]
            report.error(where, f"lightning-wall check-config warns: {warning}")
    check_no_application_trap(text, where, report)


# Pages of common applications that honest users request; a recipe must never make one a trap
# (a trap forfeits the deposit of whoever requests it: on WordPress, every administrator).
APPLICATION_PAGES = ("/wp-login.php", "/wp-admin", "/user/login", "/administrator")


def check_no_application_trap(text: str, where: str, report: Report) -> None:
    if where.startswith("examples/demo/"):
        return  # the demo site is not WordPress; its trap is its own choice
    doc = yaml.safe_load(text) or {}
    for i, route in enumerate(doc.get("routes") or []):
        for trap in ((route.get("deposit") or {}).get("trap_paths") or []):
            if trap.startswith(APPLICATION_PAGES):
                report.error(where, f"routes[{i}].deposit.trap_paths: {trap} is a page honest users request; never a trap")


def patched_clusters(docs: list[Any]) -> set[str]:
    """The names of the clusters a file's EnvoyPatchPolicies add (Envoy Gateway creates
    clusters only for route backends: the filter's call-out clusters are patched in)."""
    names = set()
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "EnvoyPatchPolicy":
            for patch in (doc.get("spec") or {}).get("jsonPatches") or []:
                if patch.get("type", "").endswith(".Cluster"):
                    names.add(patch.get("name"))
    return names


def check_kubernetes_object(doc: dict, where: str, report: Report, lw_bin: str, patched: set[str]) -> None:
    key = (doc.get("apiVersion"), doc.get("kind"))
    where = f"{where} {key[1]}/{(doc.get('metadata') or {}).get('name')}"
    if key in CRD_SCHEMAS:
        if not (doc.get("metadata") or {}).get("name"):
            report.error(where, "metadata.name is required")
        extra = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
        if extra:
            report.error(where, f"unexpected top-level fields {sorted(extra)}")
        for problem in schema_errors(doc.get("spec"), schema(CRD_SCHEMAS[key])):
            report.error(where, f"spec/{problem}")
        spec = doc.get("spec") or {}
        if key[1] == "WasmPlugin":
            check_plugin_config(spec.get("pluginConfig"), where, report, None)
            # wall_cluster: the sidecar's public port.
            for key in ("sidecar_cluster", "wall_cluster"):
                cluster = (spec.get("pluginConfig") or {}).get(key, "")
                if not re.fullmatch(r"outbound\|\d+\|\|[a-z0-9.-]+", str(cluster)):
                    report.error(where, f"in Istio, {key} must be outbound|<port>||<service fqdn>")
        elif key[1] == "EnvoyExtensionPolicy":
            for i, wasm in enumerate(spec.get("wasm") or []):
                check_plugin_config(wasm.get("config"), f"{where} wasm[{i}]", report, patched)
        elif key[1] == "EnvoyPatchPolicy":
            for i, patch in enumerate(spec.get("jsonPatches") or []):
                op = patch.get("operation") or {}
                if patch.get("type", "").endswith(".Cluster") and op.get("path") == "":
                    check_envoy_message(CLUSTER, op.get("value"), f"{where} jsonPatches[{i}]", report)
                    check_circuit_breakers(op.get("value"), f"{where} jsonPatches[{i}]", report)
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        report.error(where, f"no schema for {key} in Kubernetes {KUBERNETES_VERSION} nor in scripts/schemas")
        return
    except kubernetes_validate.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path) or "(root)"
        report.error(where, f"{path}: {e.message[:300]}")
        return
    if key == ("v1", "ConfigMap"):
        for name, text in (doc.get("data") or {}).items():
            if name.endswith("envoy.yaml"):
                check_envoy_bootstrap(yaml.safe_load(text), f"{where} data.{name}", report)
            elif name == "lightning-wall.yaml":
                check_sidecar_config(text, f"{where} data.{name}", report, lw_bin)


def pod_specs(docs: list[Any]) -> list[tuple[dict, dict]]:
    """(Deployment, its pod spec) for every Deployment of a file."""
    return [(d, ((d.get("spec") or {}).get("template") or {}).get("spec") or {})
            for d in docs if isinstance(d, dict) and d.get("kind") == "Deployment"]


def containers_of(pod: dict) -> list[dict]:
    return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


def configmap_data(docs: list[Any], name: str) -> dict:
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "ConfigMap" and (d.get("metadata") or {}).get("name") == name:
            return d.get("data") or {}
    return {}


def check_config_mounts(docs: list[Any], where: str, report: Report) -> None:
    """A ConfigMap mounted with subPath is a copy taken when the container starts: an updated
    ConfigMap never reaches it. Mount the directory."""
    for deploy, pod in pod_specs(docs):
        configmaps = {v.get("name") for v in pod.get("volumes") or [] if "configMap" in v}
        for c in containers_of(pod):
            for m in c.get("volumeMounts") or []:
                if m.get("name") in configmaps and m.get("subPath"):
                    report.error(f"{where} Deployment/{deploy['metadata'].get('name')}",
                                 f"container {c.get('name')}: ConfigMap volume {m['name']} mounted with subPath "
                                 "(never updated in the pod): mount the directory")


def check_rollout(docs: list[Any], where: str, report: Report) -> None:
    """The store decides how pods may be replaced. SQLite has one writer: one replica and
    Recreate, so an old and a new pod never run the deposit engine on one file. PostgreSQL:
    RollingUpdate that never goes below the wanted replicas, a readiness probe on the sidecar
    (the new pod takes traffic only when it answers) and, with several replicas, a
    PodDisruptionBudget."""
    for deploy, pod in pod_specs(docs):
        here = f"{where} Deployment/{deploy['metadata'].get('name')}"
        spec = deploy.get("spec") or {}
        volumes = {v.get("name"): (v.get("configMap") or {}).get("name") for v in pod.get("volumes") or []}
        for c in containers_of(pod):
            configs = [configmap_data(docs, volumes[m.get("name")]).get("lightning-wall.yaml")
                       for m in c.get("volumeMounts") or [] if volumes.get(m.get("name"))]
            configs = [text for text in configs if text]
            if not configs:
                continue
            store = str(((yaml.safe_load(configs[0]) or {}).get("store") or {}).get("url") or "sqlite:")
            replicas = spec.get("replicas", 1)
            strategy = spec.get("strategy") or {}
            if store.startswith(("postgres://", "postgresql://")):
                rolling = strategy.get("rollingUpdate") or {}
                if strategy.get("type", "RollingUpdate") != "RollingUpdate" or rolling.get("maxUnavailable") not in (0, "0%"):
                    report.error(here, "PostgreSQL store: use strategy RollingUpdate with rollingUpdate.maxUnavailable: 0 "
                                       "(a new pod ready before an old one stops)")
                if not c.get("readinessProbe"):
                    report.error(here, f"container {c.get('name')}: a readinessProbe on the sidecar's /healthz is required "
                                       "(a rolling update must wait for it)")
                labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
                pdbs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "PodDisruptionBudget"
                        and ((d.get("spec") or {}).get("selector") or {}).get("matchLabels")
                        and ((d["spec"]["selector"]["matchLabels"]).items() <= labels.items())]
                if isinstance(replicas, int) and replicas > 1 and not pdbs:
                    report.error(here, "several replicas: add a PodDisruptionBudget selecting the pods")
            elif replicas != 1 or strategy.get("type") != "Recreate":
                report.error(here, f"SQLite store ({store}): replicas must be 1 and strategy Recreate "
                                   "(two pods on one database file); use PostgreSQL for rolling updates")


def image_resolved(image: str) -> bool:
    """A full reference (registry host first), i.e. set by the kustomization's `images:`."""
    first = image.split("/", 1)[0]
    return "/" in image and ("." in first or ":" in first or first == "localhost")


def check_kustomize_layout(docs: list[Any], where: str, report: Report) -> None:
    """deploy/kubernetes: behind the shop's existing ingress, on any cluster (no image volumes),
    images from one `images:` list, the .wasm under one name."""
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "Service" and (d.get("spec") or {}).get("type", "ClusterIP") != "ClusterIP":
            report.error(f"{where} Service/{d['metadata'].get('name')}",
                         f"type {d['spec']['type']}: the site sits behind the cluster's existing ingress; use ClusterIP")
    for deploy, pod in pod_specs(docs):
        here = f"{where} Deployment/{deploy['metadata'].get('name')}"
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for name, v in volumes.items():
            if "image" in v:
                report.error(here, f"volume {name} is an image volume (a feature gate most clusters lack): "
                                   "copy the .wasm with an init container into an emptyDir")
        for c in containers_of(pod):
            if not image_resolved(str(c.get("image", ""))):
                report.error(here, f"container {c.get('name')}: image {c.get('image')!r} is not a full reference "
                                   "(missing from the kustomization's images:)")
        # Where Envoy loads the .wasm from must be an emptyDir an init container fills.
        for c in pod.get("containers") or []:
            mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
            for m in c.get("volumeMounts") or []:
                bootstrap_text = configmap_data(docs, (volumes.get(m.get("name"), {}).get("configMap") or {}).get("name")).get("envoy.yaml")
                if not bootstrap_text:
                    continue
                bootstrap = yaml.safe_load(bootstrap_text)
                hcms = [t for t in walk(bootstrap, "typed_config")
                        if isinstance(t, dict) and str(t.get("@type", "")).endswith("HttpConnectionManager")
                        and any(f.get("name") == WASM_FILTER for f in t.get("http_filters") or [])]
                for hcm_config in hcms:
                    if int(hcm_config.get("xff_num_trusted_hops", 0)) < 1:
                        report.error(here, "Envoy behind the ingress: set xff_num_trusted_hops to the ingress's hop (1), "
                                           "or every visitor is the ingress pod to the wall's per-address limits")
                for filename in walk(bootstrap, "filename"):
                    if not str(filename).endswith(".wasm"):
                        continue
                    directory = str(Path(filename).parent)
                    volume = mounts.get(directory)
                    if volume is None or "emptyDir" not in volumes.get(volume, {}):
                        report.error(here, f"Envoy loads {filename}, which is not in an emptyDir mounted at {directory}")
                        continue
                    fillers = []
                    for init in pod.get("initContainers") or []:
                        if init.get("restartPolicy") == "Always":
                            continue
                        for im in init.get("volumeMounts") or []:
                            target = str(Path(im.get("mountPath", "")) / WASM_FILE_NAME)
                            command = [str(a) for a in (init.get("command") or []) + (init.get("args") or [])]
                            if im.get("name") == volume and command and command[-1] == target:
                                fillers.append(init.get("name"))
                    if not fillers:
                        report.error(here, f"no init container copies {WASM_FILE_NAME} into volume {volume} "
                                           f"(Envoy loads {filename})")


def check_kubernetes_file(docs: list[Any], where: str, report: Report, lw_bin: str) -> None:
    if not docs:
        report.error(where, "no Kubernetes objects")
    patched = patched_clusters(docs)
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            report.error(f"{where} document {i}", "not a mapping")
            continue
        check_kubernetes_object(doc, where, report, lw_bin, patched)
    check_config_mounts(docs, where, report)
    check_rollout(docs, where, report)
    if where.startswith("deploy/kubernetes/"):
        check_kustomize_layout(docs, where, report)


# --- Dockerfiles ----------------------------------------------------------------------------


def makefile_command(pattern: str) -> str:
    """The first Makefile recipe line matching `pattern`, with make variables expanded the
    way this Makefile sets them ($(CARGO) = cargo)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("\t") and re.search(pattern, line):
            command = line.strip().lstrip("@").replace("$(CARGO)", "cargo")
            return re.sub(r"\s+\$@$", "", command)
    raise SystemExit(f"validate-configs: no Makefile recipe matches {pattern!r}")


def check_dockerfile(commands: list[Any], where: str, report: Report, *, runs_code: bool,
                     build_command: str, copy_members: bool) -> None:
    stages = [c for c in commands if c.cmd.lower() == "from"]
    if not stages:
        report.error(where, "no FROM")
        return
    stage_names = {c.value[2].lower() for c in stages if len(c.value) >= 3 and c.value[1].lower() == "as"}
    for c in stages:
        image = c.value[0]
        if image == "scratch" or image.lower() in stage_names:
            continue
        if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            report.error(where, f"line {c.start_line}: base image {image} must be pinned (tag or digest, not latest)")
    copied: set[str] = set()
    for c in commands:
        if c.cmd.lower() not in ("copy", "add"):
            continue
        if c.cmd.lower() == "add":
            report.error(where, f"line {c.start_line}: use COPY, not ADD (no remote fetches or auto-extraction)")
        if any(f.startswith("--from") for f in c.flags):
            continue
        for source in c.value[:-1]:
            copied.add(source.rstrip("/"))
            if not glob.glob(str(ROOT / source)):
                report.error(where, f"line {c.start_line}: COPY source {source} does not exist in the repository")
    runs = " ".join(" ".join(c.value) for c in commands if c.cmd.lower() == "run")
    if " ".join(build_command.split()) not in " ".join(runs.split()):
        report.error(where, f"does not build with the Makefile's command `{build_command}`")
    if copy_members:
        manifest = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
        for member in manifest["workspace"]["members"]:
            if not any(member == c or member.startswith(c + "/") for c in copied):
                report.error(where, f"workspace member {member} is not copied (cargo cannot load the workspace)")
    last_stage = max(i for i, c in enumerate(commands) if c.cmd.lower() == "from")
    users = [c.value[0] for c in commands[last_stage:] if c.cmd.lower() == "user"]
    if runs_code:
        if not users or users[-1].split(":")[0] in ("0", "root"):
            report.error(where, "the final stage must run as a non-root USER")
    else:
        final = commands[last_stage:]
        if final[0].value[0] != "scratch":
            report.error(where, "the .wasm image must be FROM scratch")
        if [c.cmd.lower() for c in final[1:] if c.cmd.lower() not in ("label", "arg")] != ["copy"]:
            report.error(where, "the .wasm image's final stage must be exactly one COPY (one layer: Istio and Envoy Gateway read a single-layer image)")
        elif final[-1].value[-1] not in ("/plugin.wasm", "plugin.wasm", "./plugin.wasm"):
            report.error(where, "the .wasm must be stored as /plugin.wasm (the name Istio and Envoy Gateway look for)")


DOCKERFILES = {
    "Dockerfile": dict(runs_code=True, build_pattern=r"\$\(CARGO\) build --locked --release -p lightning-wall", copy_members=True),
    "deploy/wasm-image/Containerfile": dict(runs_code=False, build_pattern=r"scripts/build-wasm.sh lightning-wall-filter ", copy_members=True),
    "deploy/nginx-image/Containerfile": dict(runs_code=True, build_pattern=r"^\t@?scripts/build-nginx.sh", copy_members=True),
}


HADOLINT = Path(sys.executable).parent / "hadolint"


def check_dockerfile_text(text: str, where: str, report: Report, options: dict) -> None:
    lint = subprocess.run([str(HADOLINT), "--no-color", "-"], input=text, capture_output=True, text=True)
    if lint.returncode != 0:
        findings = [line.removeprefix("-:") for line in (lint.stdout + lint.stderr).splitlines() if line.strip()]
        report.error(where, "hadolint: " + "; ".join(findings))
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as e:
        report.error(where, f"does not parse: {e}")
        return
    check_dockerfile(list(commands), where, report, runs_code=options["runs_code"],
                     build_command=makefile_command(options["build_pattern"]),
                     copy_members=options["copy_members"])


# --- systemd --------------------------------------------------------------------------------

SYSTEMD_DIR = ROOT / "deploy" / "systemd"
# What every unit keeps (docs/deployment.md "One VM with systemd"); exact settings.
SYSTEMD_HARDENING = (
    "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
    "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "RestrictNamespaces=yes",
    "RestrictRealtime=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes",
    "SystemCallArchitectures=native", "UMask=0077",
)
# Settings that must be present with some value.
SYSTEMD_REQUIRED_KEYS = ("CapabilityBoundingSet", "RestrictAddressFamilies", "SystemCallFilter")
SECRET_WORDS = re.compile(r"token|key|macaroon|password|secret|cert", re.IGNORECASE)
# The path a unit's --config names on the VM -> the file in this repository.
INSTALLED_CONFIGS = {"/etc/lightning-wall/lightning-wall.yaml": "deploy/systemd/lightning-wall.yaml"}


def unit_settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, in order."""
    section, settings = "", []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line:
            key, value = line.split("=", 1)
            settings.append((section, key.strip(), value.strip()))
    return settings


def systemd_analyze_verify(units: dict[str, str], lw_bin: str) -> dict[str, str]:
    return dict(_systemd_analyze_verify(tuple(sorted(units.items())), lw_bin))


@functools.lru_cache(maxsize=None)  # the negative tests validate the same units many times
def _systemd_analyze_verify(units_items: tuple[tuple[str, str], ...], lw_bin: str) -> tuple[tuple[str, str], ...]:
    """`systemd-analyze verify` on copies of the units, every one beside the others. It refuses a
    unit whose ExecStart program does not exist here, and neither program is installed at its
    production path on this machine: the copies run the built lightning-wall binary, and Envoy
    (not installed here) as /bin/true. Nothing else is changed. Returns its output per unit."""
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, text in units_items:
            text = text.replace("ExecStart=/usr/local/bin/lightning-wall ", f"ExecStart={os.path.abspath(lw_bin)} ")
            text = re.sub(r"(?m)^ExecStart=/usr/local/bin/envoy ", f"ExecStart={shutil.which('envoy') or '/bin/true'} ", text)
            path = Path(tmp) / Path(name).name
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        for path in paths:
            run = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True)
            output = " ".join((run.stdout + run.stderr).replace(tmp + "/", "").split())
            if run.returncode != 0 or output:
                found[str(path.relative_to(tmp))] = output or f"exit {run.returncode}"
    return tuple(found.items())


def sysusers(files: dict[str, str], report: Report) -> set[str]:
    """The users the sysusers.d files create, each file parsed by `systemd-sysusers --dry-run`
    into an empty root (nothing is written)."""
    users = set()
    for name, text in files.items():
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "etc").mkdir()
            path = Path(tmp) / Path(name).name
            path.write_text(text, encoding="utf-8")
            run = subprocess.run(["systemd-sysusers", f"--root={tmp}", "--dry-run", str(path)],
                                 capture_output=True, text=True)
        if run.returncode != 0:
            report.error(name, "systemd-sysusers: " + " ".join(run.stderr.replace(str(path), Path(name).name).split()))
        users |= {line.split()[1] for line in text.splitlines() if line.strip().startswith("u ") and len(line.split()) > 1}
    return users


def check_systemd_units(files: dict[str, str], sidecar_configs: dict[str, str], report: Report, lw_bin: str) -> None:
    units = {name: text for name, text in files.items() if name.endswith(".service")}
    users = sysusers({name: text for name, text in files.items() if name.endswith(".sysusers.conf")}, report)
    for unit, problem in systemd_analyze_verify(units, lw_bin).items():
        report.error(f"deploy/systemd/{unit}", f"systemd-analyze verify: {problem}")
    for name, text in units.items():
        settings = unit_settings(text)
        service = [(k, v) for section, k, v in settings if section == "Service"]
        present = {f"{k}={v}" for k, v in service}
        for wanted in SYSTEMD_HARDENING:
            if wanted not in present:
                report.error(name, f"[Service] needs {wanted} (docs/deployment.md \"One VM with systemd\")")
        keys = {k for k, _ in service}
        user = next((v for k, v in service if k == "User"), None)
        if "DynamicUser=yes" not in present and user not in users:
            report.error(name, f"User={user}: not created by a deploy/systemd/*.sysusers.conf (or use DynamicUser=yes); "
                               "a service never runs as root")
        for key in SYSTEMD_REQUIRED_KEYS:
            if key not in keys:
                report.error(name, f"[Service] needs {key}=")
        for k, v in service:
            if k == "EnvironmentFile" or (k == "Environment" and SECRET_WORDS.search(v.split("=", 1)[0])):
                report.error(name, f"{k}={v}: secrets go through LoadCredential=, never the environment "
                                   "(visible in `systemctl show` and /proc)")
        exec_start = next((v for k, v in service if k == "ExecStart"), "")
        if "/lightning-wall " not in exec_start + " ":
            continue
        unit_name = Path(name).name
        credentials = {v.split(":", 1)[0] for k, v in service if k == "LoadCredential"}
        config_path = re.search(r"--config\s+(\S+)", exec_start)
        config_name = INSTALLED_CONFIGS.get(config_path.group(1) if config_path else "")
        if config_name not in sidecar_configs:
            report.error(name, f"ExecStart's --config is not a configuration of this repository ({sorted(INSTALLED_CONFIGS)})")
            continue
        config = yaml.safe_load(sidecar_configs[config_name]) or {}
        prefix = f"/run/credentials/{unit_name}/"
        for ref in walk(config, "env"):
            report.error(config_name, f"secret from environment variable {ref}: under systemd use a file from {prefix} (LoadCredential=)")
        for path in walk(config, "file") + walk(config, "tls_cert_file"):
            if not str(path).startswith(prefix):
                report.error(config_name, f"{path}: under systemd, secrets are read from {prefix} (LoadCredential= in {unit_name})")
            elif str(path)[len(prefix):] not in credentials:
                report.error(config_name, f"{path}: {unit_name} loads no credential {str(path)[len(prefix):]!r}")


# --- the run ---------------------------------------------------------------------------------


def load_yaml_documents(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


@dataclass
class Inputs:
    envoy: dict[str, Any]
    kubernetes: dict[str, list[Any]]
    sidecar_configs: dict[str, str]
    dockerfiles: dict[str, str]
    systemd: dict[str, str]


def kubectl() -> str:
    """kubectl, whose `kustomize` is kustomize itself (v5.5.0 in kubectl 1.32, on the project's
    machine images). No registry we install from ships a current kustomize: Debian 12's
    kubernetes-client (kubectl 1.20) embeds kustomize v2.0.3, which cannot read `labels:` or
    `patches:`; PyPI's `kustomize` is a reimplementation and `pykustomize` needs Python 3.14."""
    path = shutil.which("kubectl")
    if not path:
        raise SystemExit("validate-configs: kubectl not found; deploy/kubernetes is rendered with `kubectl kustomize` "
                         "(kustomize v5; docs/deployment.md \"How the files are validated\")")
    run = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True)
    version = str(json.loads(run.stdout or "{}").get("kustomizeVersion", "")) if run.returncode == 0 else ""
    if not re.match(r"v([5-9]|\d\d)\.", version):
        raise SystemExit(f"validate-configs: {path} embeds kustomize {version or 'unknown'}; v5 or later is needed")
    return path


def render_kustomization(directory: Path) -> list[Any]:
    run = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    if run.returncode != 0:
        raise KustomizeError(" ".join(run.stderr.split())[:600])
    return [d for d in yaml.safe_load_all(run.stdout) if d is not None]


class KustomizeError(Exception):
    pass


def read_inputs() -> Inputs:
    envoy = {str(p.relative_to(ROOT)): load_yaml_documents(p)[0] for p in sorted((ROOT / "envoy").glob("*.yaml"))}
    kubernetes = {str(p.relative_to(ROOT)): load_yaml_documents(p) for p in sorted((ROOT / "examples" / "kubernetes").glob("*.yaml"))}
    overlays = sorted(p for p in KUSTOMIZE_OVERLAYS.iterdir() if (p / "kustomization.yaml").exists())
    if not overlays:
        raise SystemExit(f"validate-configs: no kustomization in {KUSTOMIZE_OVERLAYS.relative_to(ROOT)}")
    for overlay in overlays:
        try:
            kubernetes[str(overlay.relative_to(ROOT))] = render_kustomization(overlay)
        except KustomizeError as e:
            raise SystemExit(f"validate-configs: kustomize cannot render {overlay.relative_to(ROOT)}: {e}")
    sidecar = {
        name: (ROOT / name).read_text(encoding="utf-8")
        for name in ("examples/lightning-wall.yaml", "examples/wordpress.yaml", "examples/demo/lightning-wall.yaml",
                     "deploy/systemd/lightning-wall.yaml")
    }
    dockerfiles = {name: (ROOT / name).read_text(encoding="utf-8") for name in DOCKERFILES}
    systemd = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
               for p in sorted([*SYSTEMD_DIR.glob("*.service"), *SYSTEMD_DIR.glob("*.sysusers.conf")])}
    if not envoy or not kubernetes or not systemd:
        raise SystemExit("validate-configs: no envoy/*.yaml, examples/kubernetes/*.yaml or deploy/systemd/*.service found")
    return Inputs(envoy, kubernetes, sidecar, dockerfiles, systemd)


def validate(inputs: Inputs, lw_bin: str) -> Report:
    report = Report()
    for name, doc in inputs.envoy.items():
        check_envoy_bootstrap(doc, name, report)
    for name, docs in inputs.kubernetes.items():
        check_kubernetes_file(docs, name, report, lw_bin)
    for name, text in inputs.sidecar_configs.items():
        check_sidecar_config(text, name, report, lw_bin)
    for name, text in inputs.dockerfiles.items():
        check_dockerfile_text(text, name, report, DOCKERFILES[name])
    check_systemd_units(inputs.systemd, inputs.sidecar_configs, report, lw_bin)
    return report


def find(docs: list[Any], kind: str) -> dict:
    return next(d for d in docs if d.get("kind") == kind)


def hcm(bootstrap: dict) -> dict:
    return bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def wasm_plugin(bootstrap: dict) -> dict:
    return next(f for f in hcm(bootstrap)["http_filters"] if f["name"] == WASM_FILTER)["typed_config"]["config"]


def set_plugin_json(bootstrap: dict, **changes: Any) -> None:
    """Sets fields of the plugin JSON; a field given as None is removed."""
    plugin = wasm_plugin(bootstrap)
    config = json.loads(plugin["configuration"]["value"])
    for name, value in changes.items():
        if value is None:
            config.pop(name, None)
        else:
            config[name] = value
    plugin["configuration"]["value"] = json.dumps(config)


def configmap_text(docs: list[Any], key: str) -> tuple[dict, str]:
    cm = next(d for d in docs if d.get("kind") == "ConfigMap" and key in (d.get("data") or {}))
    return cm, cm["data"][key]


# Each broken copy changes one thing that must be refused; (description, mutation).
Mutation = Callable[[Inputs], None]


def _mutations() -> list[tuple[str, Mutation]]:
    prod = "envoy/envoy-production.yaml"
    native = "deploy/kubernetes/overlays/sqlite-single"
    postgres = "deploy/kubernetes/overlays/postgres"

    def misspelt_hcm_field(i: Inputs) -> None:
        hcm(i.envoy[prod])["normalise_path"] = True

    def unknown_cluster_enum(i: Inputs) -> None:
        i.envoy[prod]["static_resources"]["clusters"][0]["type"] = "STATIK"

    def bad_duration(i: Inputs) -> None:
        i.envoy["envoy/envoy.yaml"]["static_resources"]["clusters"][0]["connect_timeout"] = "quarter second"

    def unknown_field_inside_any(i: Inputs) -> None:
        wasm_plugin(i.envoy[prod])["vm_config"]["fail_open"] = True

    def fail_open_wasm(i: Inputs) -> None:
        wasm_plugin(i.envoy[prod])["failure_policy"] = "FAIL_OPEN"

    def key_material_in_plugin_config(i: Inputs) -> None:
        set_plugin_json(i.envoy[prod], master_key="00" * 32)

    def sidecar_cluster_missing(i: Inputs) -> None:
        set_plugin_json(i.envoy[prod], sidecar_cluster="lightning_wall")

    def wall_cluster_missing(i: Inputs) -> None:
        set_plugin_json(i.envoy[prod], wall_cluster=None)

    def timeout_out_of_range(i: Inputs) -> None:
        set_plugin_json(i.envoy["envoy/envoy.yaml"], timeout_ms=0)

    def route_to_missing_cluster(i: Inputs) -> None:
        hcm(i.envoy[prod])["route_config"]["virtual_hosts"][0]["routes"][-1]["route"]["cluster"] = "upstream"

    def admin_exposed(i: Inputs) -> None:
        i.envoy[prod]["admin"]["address"]["socket_address"]["address"] = "0.0.0.0"

    def router_not_last(i: Inputs) -> None:
        hcm(i.envoy[prod])["http_filters"].reverse()

    def wall_filter_removed(i: Inputs) -> None:
        config = hcm(i.envoy["envoy/envoy.yaml"])
        config["http_filters"] = [f for f in config["http_filters"] if f["name"] != WASM_FILTER]

    def k8s_misspelt_security_context(i: Inputs) -> None:
        deploy = find(i.kubernetes[native], "Deployment")
        deploy["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True

    def k8s_wrong_type(i: Inputs) -> None:
        find(i.kubernetes[native], "Deployment")["spec"]["replicas"] = "one"

    def k8s_embedded_envoy_broken(i: Inputs) -> None:
        cm, text = configmap_text(i.kubernetes[native], "envoy.yaml")
        cm["data"]["envoy.yaml"] = text.replace("failure_policy: FAIL_CLOSED", "failure_policy: FAIL_CLOSE")

    def k8s_embedded_sidecar_config_broken(i: Inputs) -> None:
        cm, text = configmap_text(i.kubernetes[native], "lightning-wall.yaml")
        cm["data"]["lightning-wall.yaml"] = text.replace("amount_sat: 1000\n", "amount_sat: 0\n")

    def internal_listener_exposed_without_token(i: Inputs) -> None:
        docs = i.kubernetes["examples/kubernetes/gateway-sidecar.yaml"]
        cm, text = configmap_text(docs, "lightning-wall.yaml")
        cm["data"]["lightning-wall.yaml"] = text.replace("token: { env: LW_INTERNAL_TOKEN }", "")

    def sidecar_cluster_without_circuit_breakers(i: Inputs) -> None:
        del i.envoy["envoy/envoy.yaml"]["static_resources"]["clusters"][1]["circuit_breakers"]

    def k8s_public_cluster_without_max_requests(i: Inputs) -> None:
        cm, text = configmap_text(i.kubernetes[native], "envoy.yaml")
        cm["data"]["envoy.yaml"] = text.replace("max_requests: 11000", "max_retries: 1", 1)

    def k8s_unknown_kind(i: Inputs) -> None:
        i.kubernetes[native].append({"apiVersion": "example.com/v1", "kind": "Wall", "metadata": {"name": "x"}})

    def crd_without_name(i: Inputs) -> None:
        del find(i.kubernetes["examples/kubernetes/envoy-gateway.yaml"], "EnvoyPatchPolicy")["metadata"]["name"]

    def istio_envoy_spelling(i: Inputs) -> None:
        find(i.kubernetes["examples/kubernetes/istio-wasmplugin.yaml"], "WasmPlugin")["spec"]["failStrategy"] = "FAIL_CLOSED"

    def istio_plain_cluster_name(i: Inputs) -> None:
        spec = find(i.kubernetes["examples/kubernetes/istio-wasmplugin.yaml"], "WasmPlugin")["spec"]
        spec["pluginConfig"]["sidecar_cluster"] = "lightning_wall_sidecar"

    def eg_wall_cluster_missing(i: Inputs) -> None:
        spec = find(i.kubernetes["examples/kubernetes/envoy-gateway.yaml"], "EnvoyExtensionPolicy")["spec"]
        del spec["wasm"][0]["config"]["wall_cluster"]

    def eg_image_type_without_image(i: Inputs) -> None:
        spec = find(i.kubernetes["examples/kubernetes/envoy-gateway.yaml"], "EnvoyExtensionPolicy")["spec"]
        del spec["wasm"][0]["code"]["image"]

    def eg_patched_cluster_broken(i: Inputs) -> None:
        spec = find(i.kubernetes["examples/kubernetes/envoy-gateway.yaml"], "EnvoyPatchPolicy")["spec"]
        spec["jsonPatches"][0]["operation"]["value"]["lb_policy"] = "FASTEST"

    def httproute_bad_match_type(i: Inputs) -> None:
        route = find(i.kubernetes["examples/kubernetes/gateway-sidecar.yaml"], "HTTPRoute")
        route["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"

    def dockerfile_missing_source(i: Inputs) -> None:
        i.dockerfiles["Dockerfile"] = i.dockerfiles["Dockerfile"].replace("COPY sidecar sidecar", "COPY sidecars sidecar")

    def dockerfile_runs_as_root(i: Inputs) -> None:
        i.dockerfiles["Dockerfile"] = re.sub(r"(?m)^USER .*$", "USER root", i.dockerfiles["Dockerfile"])

    def wasm_image_not_single_layer(i: Inputs) -> None:
        i.dockerfiles["deploy/wasm-image/Containerfile"] += "COPY README.md /README.md\n"

    def dockerfile_member_not_copied(i: Inputs) -> None:
        i.dockerfiles["Dockerfile"] = i.dockerfiles["Dockerfile"].replace("COPY fake-lnd fake-lnd\n", "")

    def dockerfile_build_command_differs(i: Inputs) -> None:
        i.dockerfiles["Dockerfile"] = i.dockerfiles["Dockerfile"].replace("--locked --release", "--release")

    def dockerfile_unpinned_base(i: Inputs) -> None:
        i.dockerfiles["Dockerfile"] = re.sub(r"rust:[^ ]+ AS build", "rust AS build", i.dockerfiles["Dockerfile"])

    def wasm_image_wrong_file_name(i: Inputs) -> None:
        text = i.dockerfiles["deploy/wasm-image/Containerfile"]
        i.dockerfiles["deploy/wasm-image/Containerfile"] = text.replace(" /plugin.wasm\n", " /filter.wasm\n")

    def dockerfile_lint_finding(i: Inputs) -> None:
        i.dockerfiles["Dockerfile"] = i.dockerfiles["Dockerfile"].replace(
            "WORKDIR /src\n", "RUN mkdir /src && cd /src\n", 1)

    def sidecar_example_broken(i: Inputs) -> None:
        i.sidecar_configs["examples/lightning-wall.yaml"] += "\nunknown_section: {}\n"

    def wordpress_login_trapped(i: Inputs) -> None:
        text = i.sidecar_configs["examples/lightning-wall.yaml"]
        i.sidecar_configs["examples/lightning-wall.yaml"] = text.replace(
            "trap_paths: [/.env, /.git/config]", "trap_paths: [/wp-login.php, /.env]", 1)

    def systemd_config_warned_about(i: Inputs) -> None:
        text = i.sidecar_configs["deploy/systemd/lightning-wall.yaml"]
        i.sidecar_configs["deploy/systemd/lightning-wall.yaml"] = re.sub(r"\nwall:\n  site_name: [^\n]*", "", text)

    def pod(docs: list[Any]) -> dict:
        return find(docs, "Deployment")["spec"]["template"]["spec"]

    def sidecar_container(docs: list[Any]) -> dict:
        return next(c for c in pod(docs)["initContainers"] if c["name"] == "lightning-wall")

    def k8s_config_mounted_with_subpath(i: Inputs) -> None:
        deploy = find(i.kubernetes["examples/kubernetes/gateway-sidecar.yaml"], "Deployment")
        mount = deploy["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
        mount.update(mountPath="/etc/lightning-wall/config/lightning-wall.yaml", subPath="lightning-wall.yaml")

    def k8s_envoy_config_mounted_with_subpath(i: Inputs) -> None:
        envoy = pod(i.kubernetes[postgres])["containers"][0]
        mount = next(m for m in envoy["volumeMounts"] if m["name"] == "envoy-config")
        mount.update(mountPath="/etc/envoy/config/envoy.yaml", subPath="envoy.yaml")

    def k8s_load_balancer_replaces_ingress(i: Inputs) -> None:
        find(i.kubernetes[native], "Service")["spec"]["type"] = "LoadBalancer"

    def k8s_image_volume_for_the_wasm(i: Inputs) -> None:
        volume = next(v for v in pod(i.kubernetes[native])["volumes"] if v["name"] == "filter-wasm")
        volume.pop("emptyDir")
        volume["image"] = {"reference": "registry.example.com/lightning-wall/lightning-wall-filter:0.1.0"}

    def k8s_image_not_resolved_by_kustomize(i: Inputs) -> None:
        sidecar_container(i.kubernetes[postgres])["image"] = "lightning-wall"

    def k8s_wasm_file_name_differs(i: Inputs) -> None:
        cm, text = configmap_text(i.kubernetes[native], "envoy.yaml")
        cm["data"]["envoy.yaml"] = text.replace("/etc/envoy/wasm/lightning_wall_filter.wasm", "/etc/envoy/wasm/plugin.wasm")

    def k8s_installer_copies_another_name(i: Inputs) -> None:
        installer = pod(i.kubernetes[native])["initContainers"][0]
        installer["command"] = installer["command"][:-1] + ["/wasm/plugin.wasm"]

    def k8s_no_init_container_fills_the_wasm_volume(i: Inputs) -> None:
        spec = pod(i.kubernetes[postgres])
        spec["initContainers"] = [c for c in spec["initContainers"] if c["name"] != "filter-installer"]

    def k8s_envoy_trusts_no_forwarded_hop(i: Inputs) -> None:
        cm, text = configmap_text(i.kubernetes[postgres], "envoy.yaml")
        cm["data"]["envoy.yaml"] = text.replace("xff_num_trusted_hops: 1", "xff_num_trusted_hops: 0")

    def k8s_sqlite_with_two_replicas(i: Inputs) -> None:
        find(i.kubernetes[native], "Deployment")["spec"]["replicas"] = 2

    def k8s_sqlite_rolling_update(i: Inputs) -> None:
        find(i.kubernetes["examples/kubernetes/gateway-sidecar.yaml"], "Deployment")["spec"]["strategy"] = {"type": "RollingUpdate"}

    def k8s_postgres_rollout_may_drop_a_pod(i: Inputs) -> None:
        find(i.kubernetes[postgres], "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 1

    def k8s_postgres_sidecar_without_readiness(i: Inputs) -> None:
        del sidecar_container(i.kubernetes[postgres])["readinessProbe"]

    def k8s_postgres_without_disruption_budget(i: Inputs) -> None:
        i.kubernetes[postgres][:] = [d for d in i.kubernetes[postgres] if d.get("kind") != "PodDisruptionBudget"]

    def kustomization_without_images(i: Inputs) -> None:
        # The real kustomization, copied and rendered without its images: list.
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(ROOT / "deploy" / "kubernetes", Path(tmp) / "kubernetes")
            base = Path(tmp) / "kubernetes" / "base" / "kustomization.yaml"
            text = base.read_text(encoding="utf-8")
            base.write_text(text[:text.index("\nimages:")] + "\n", encoding="utf-8")
            i.kubernetes[postgres] = render_kustomization(Path(tmp) / "kubernetes" / "overlays" / "postgres")

    def systemd_hardening_removed(i: Inputs) -> None:
        name = "deploy/systemd/lightning-wall.service"
        i.systemd[name] = i.systemd[name].replace("NoNewPrivileges=yes\n", "")

    def systemd_unknown_directive(i: Inputs) -> None:
        name = "deploy/systemd/envoy.service"
        i.systemd[name] = i.systemd[name].replace("ProtectHome=yes", "ProtectHome=yes\nProtectHomes=yes")

    def systemd_secret_in_environment(i: Inputs) -> None:
        name = "deploy/systemd/lightning-wall.service"
        i.systemd[name] = i.systemd[name].replace("Environment=RUST_LOG=info", "Environment=LW_ADMIN_TOKEN=abc")

    def systemd_config_reads_a_credential_not_loaded(i: Inputs) -> None:
        name = "deploy/systemd/lightning-wall.service"
        i.systemd[name] = re.sub(r"(?m)^LoadCredential=master-keys:.*\n", "", i.systemd[name])

    def systemd_user_not_created(i: Inputs) -> None:
        name = "deploy/systemd/envoy.service"
        i.systemd[name] = i.systemd[name].replace("User=envoy\n", "User=envoyd\n")

    def systemd_sysusers_broken(i: Inputs) -> None:
        name = "deploy/systemd/envoy.sysusers.conf"
        i.systemd[name] = i.systemd[name].replace('"Envoy proxy" - -', '"Envoy proxy" - - extra')

    def systemd_config_secret_outside_credentials(i: Inputs) -> None:
        name = "deploy/systemd/lightning-wall.yaml"
        i.sidecar_configs[name] = i.sidecar_configs[name].replace(
            "/run/credentials/lightning-wall.service/master-keys", "/etc/lightning-wall/master-keys")

    return [(f.__name__, f) for f in (
        misspelt_hcm_field, unknown_cluster_enum, bad_duration, unknown_field_inside_any,
        fail_open_wasm, key_material_in_plugin_config, sidecar_cluster_missing, wall_cluster_missing,
        timeout_out_of_range, route_to_missing_cluster, admin_exposed, router_not_last,
        wall_filter_removed, k8s_misspelt_security_context,
        k8s_wrong_type, k8s_embedded_envoy_broken, k8s_embedded_sidecar_config_broken,
        internal_listener_exposed_without_token,
        sidecar_cluster_without_circuit_breakers, k8s_public_cluster_without_max_requests,
        k8s_unknown_kind, crd_without_name, istio_envoy_spelling, istio_plain_cluster_name,
        eg_wall_cluster_missing, eg_image_type_without_image, eg_patched_cluster_broken, httproute_bad_match_type,
        dockerfile_missing_source, dockerfile_runs_as_root, dockerfile_member_not_copied,
        dockerfile_build_command_differs, dockerfile_unpinned_base, dockerfile_lint_finding,
        wasm_image_not_single_layer, wasm_image_wrong_file_name,
        sidecar_example_broken, wordpress_login_trapped, systemd_config_warned_about,
        k8s_config_mounted_with_subpath, k8s_envoy_config_mounted_with_subpath,
        k8s_load_balancer_replaces_ingress, k8s_image_volume_for_the_wasm,
        k8s_image_not_resolved_by_kustomize, k8s_wasm_file_name_differs,
        k8s_installer_copies_another_name, k8s_no_init_container_fills_the_wasm_volume,
        k8s_envoy_trusts_no_forwarded_hop, k8s_sqlite_with_two_replicas, k8s_sqlite_rolling_update,
        k8s_postgres_rollout_may_drop_a_pod, k8s_postgres_sidecar_without_readiness,
        k8s_postgres_without_disruption_budget, kustomization_without_images,
        systemd_hardening_removed, systemd_unknown_directive, systemd_secret_in_environment,
        systemd_config_reads_a_credential_not_loaded, systemd_config_secret_outside_credentials,
        systemd_user_not_created, systemd_sysusers_broken,
    )]


def main() -> int:
    lw_bin = os.environ.get("LW_BIN")
    if not lw_bin or not os.access(lw_bin, os.X_OK):
        print("validate-configs: set LW_BIN to a built lightning-wall binary (for check-config)", file=sys.stderr)
        return 2
    inputs = read_inputs()
    report = validate(inputs, lw_bin)
    files = (len(inputs.envoy) + len(inputs.kubernetes) + len(inputs.sidecar_configs) + len(inputs.dockerfiles)
             + len(inputs.systemd))
    units = sum(1 for name in inputs.systemd if name.endswith(".service"))
    objects = sum(len(d) for d in inputs.kubernetes.values())
    if report.errors:
        for e in report.errors:
            print(f"INVALID {e}", file=sys.stderr)
        print(f"validate-configs: {len(report.errors)} problem(s) in {files} files", file=sys.stderr)
        return 1
    print(f"validate-configs: {files} files valid ({len(inputs.envoy)} Envoy, {objects} Kubernetes objects "
          f"in {len(inputs.kubernetes)} files and kustomize renders, {len(inputs.dockerfiles)} Dockerfiles, "
          f"{units} systemd units)")
    # Negative tests: each broken copy must be refused, or the validator has a blind spot.
    passed = failed = 0
    for name, mutate in _mutations():
        broken = copy.deepcopy(inputs)
        mutate(broken)
        errors = validate(broken, lw_bin).errors
        if errors:
            passed += 1
            print(f"  rejected as expected: {name}: {errors[0][:160]}")
        else:
            failed += 1
            print(f"  NOT REJECTED: {name}", file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
