"""Validates every deployment file of the repository without Envoy, Kubernetes or Docker.

Run by scripts/validate-configs.sh (which installs the pinned validators into a venv). It must
never pass a file it could not check: an unknown kind, type or file is an error, not a skip.

What is checked (docs/deployment.md "How the files are validated" says what is not):
- envoy/*.yaml and every `envoy.yaml` in a Kubernetes ConfigMap: parsed into Envoy's v3
  `Bootstrap` message with envoy-data-plane's generated types (unknown fields, wrong types and
  enum values refused; every `typed_config` Any resolved to its registered type and checked the
  same way), then cross-checked: referenced clusters exist, the router is the last HTTP filter,
  the lightning-wall filter fails closed and its plugin JSON follows the filter's rules.
- examples/kubernetes/*.yaml: built-in kinds against the Kubernetes OpenAPI schemas
  (kubernetes-validate, strict); Istio, Envoy Gateway and Gateway API kinds against the schemas
  in scripts/schemas/ (transcribed from upstream, cited there); the plugin configuration inside
  WasmPlugin/EnvoyExtensionPolicy; Envoy resources inside EnvoyPatchPolicy; every ConfigMap's
  `lightning-wall.yaml`, examples/lightning-wall.yaml, examples/wordpress.yaml and
  examples/demo/lightning-wall.yaml by
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
        name = config.get("sidecar_cluster")
        if name not in clusters:
            report.error(where, f"plugin configuration: sidecar_cluster {name!r} is not a cluster of this config")


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


def check_kubernetes_object(doc: dict, where: str, report: Report, lw_bin: str) -> None:
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
            cluster = (spec.get("pluginConfig") or {}).get("sidecar_cluster", "")
            if not re.fullmatch(r"outbound\|\d+\|\|[a-z0-9.-]+", str(cluster)):
                report.error(where, "in Istio, sidecar_cluster must be outbound|<port>||<service fqdn>")
        elif key[1] == "EnvoyExtensionPolicy":
            for i, wasm in enumerate(spec.get("wasm") or []):
                check_plugin_config(wasm.get("config"), f"{where} wasm[{i}]", report, None)
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


def check_kubernetes_file(docs: list[Any], where: str, report: Report, lw_bin: str) -> None:
    if not docs:
        report.error(where, "no Kubernetes objects")
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            report.error(f"{where} document {i}", "not a mapping")
            continue
        check_kubernetes_object(doc, where, report, lw_bin)


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


def read_inputs() -> Inputs:
    envoy = {str(p.relative_to(ROOT)): load_yaml_documents(p)[0] for p in sorted((ROOT / "envoy").glob("*.yaml"))}
    kubernetes = {str(p.relative_to(ROOT)): load_yaml_documents(p) for p in sorted((ROOT / "examples" / "kubernetes").glob("*.yaml"))}
    sidecar = {
        name: (ROOT / name).read_text(encoding="utf-8")
        for name in ("examples/lightning-wall.yaml", "examples/wordpress.yaml", "examples/demo/lightning-wall.yaml")
    }
    dockerfiles = {name: (ROOT / name).read_text(encoding="utf-8") for name in DOCKERFILES}
    if not envoy or not kubernetes:
        raise SystemExit("validate-configs: no envoy/*.yaml or examples/kubernetes/*.yaml found")
    return Inputs(envoy, kubernetes, sidecar, dockerfiles)


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
    return report


def find(docs: list[Any], kind: str) -> dict:
    return next(d for d in docs if d.get("kind") == kind)


def hcm(bootstrap: dict) -> dict:
    return bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def wasm_plugin(bootstrap: dict) -> dict:
    return next(f for f in hcm(bootstrap)["http_filters"] if f["name"] == WASM_FILTER)["typed_config"]["config"]


def set_plugin_json(bootstrap: dict, **changes: Any) -> None:
    plugin = wasm_plugin(bootstrap)
    config = json.loads(plugin["configuration"]["value"])
    config.update(changes)
    plugin["configuration"]["value"] = json.dumps(config)


def configmap_text(docs: list[Any], key: str) -> tuple[dict, str]:
    cm = next(d for d in docs if d.get("kind") == "ConfigMap" and key in (d.get("data") or {}))
    return cm, cm["data"][key]


# Each broken copy changes one thing that must be refused; (description, mutation).
Mutation = Callable[[Inputs], None]


def _mutations() -> list[tuple[str, Mutation]]:
    prod = "envoy/envoy-production.yaml"
    native = "examples/kubernetes/native-sidecar.yaml"

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

    return [(f.__name__, f) for f in (
        misspelt_hcm_field, unknown_cluster_enum, bad_duration, unknown_field_inside_any,
        fail_open_wasm, key_material_in_plugin_config, sidecar_cluster_missing,
        timeout_out_of_range, route_to_missing_cluster, admin_exposed, router_not_last,
        wall_filter_removed, k8s_misspelt_security_context,
        k8s_wrong_type, k8s_embedded_envoy_broken, k8s_embedded_sidecar_config_broken,
        internal_listener_exposed_without_token,
        sidecar_cluster_without_circuit_breakers, k8s_public_cluster_without_max_requests,
        k8s_unknown_kind, crd_without_name, istio_envoy_spelling, istio_plain_cluster_name,
        eg_image_type_without_image, eg_patched_cluster_broken, httproute_bad_match_type,
        dockerfile_missing_source, dockerfile_runs_as_root, dockerfile_member_not_copied,
        dockerfile_build_command_differs, dockerfile_unpinned_base, dockerfile_lint_finding,
        wasm_image_not_single_layer, wasm_image_wrong_file_name,
        sidecar_example_broken, wordpress_login_trapped,
    )]


def main() -> int:
    lw_bin = os.environ.get("LW_BIN")
    if not lw_bin or not os.access(lw_bin, os.X_OK):
        print("validate-configs: set LW_BIN to a built lightning-wall binary (for check-config)", file=sys.stderr)
        return 2
    inputs = read_inputs()
    report = validate(inputs, lw_bin)
    files = len(inputs.envoy) + len(inputs.kubernetes) + len(inputs.sidecar_configs) + len(inputs.dockerfiles)
    objects = sum(len(d) for d in inputs.kubernetes.values())
    if report.errors:
        for e in report.errors:
            print(f"INVALID {e}", file=sys.stderr)
        print(f"validate-configs: {len(report.errors)} problem(s) in {files} files", file=sys.stderr)
        return 1
    print(f"validate-configs: {files} files valid ({len(inputs.envoy)} Envoy, {objects} Kubernetes objects "
          f"in {len(inputs.kubernetes)} files, {len(inputs.dockerfiles)} Dockerfiles)")
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
