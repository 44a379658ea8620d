"""The Kubernetes and KServe manifests under deploy/k8s: their structure is
checked field by field (no cluster here, and kubectl is not packaged), and the
aiserve command lines they hold run for real, answering every probe path."""
import os
import re
import time

import yaml

from harness import ROOT, binary, free_port, wait_port
from srvutil import get

K8S = os.path.join(ROOT, "deploy", "k8s")


def docs(name):
    with open(os.path.join(K8S, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(ds):
    return {d["kind"]: d for d in ds}


def test_every_manifest_has_the_required_fields():
    for root, _, files in os.walk(K8S):
        for f in files:
            if not f.endswith(".yaml"):
                continue
            for d in docs(os.path.relpath(os.path.join(root, f), K8S)):
                assert re.match(r"^[a-z.]*/?v\d", d["apiVersion"]), (f, d["apiVersion"])
                assert d["kind"] and d["metadata"]["name"], f
                assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", d["metadata"]["name"]), f
                body = "data" if d["kind"] in ("ConfigMap", "Secret") else "spec"
                assert body in d, (f, d["kind"])


def test_deployment_service_hpa_and_pdb_fit_together():
    k = by_kind(docs("deployment.yaml"))
    dep, svc, hpa, pdb = (k["Deployment"], k["Service"], k["HorizontalPodAutoscaler"],
                          k["PodDisruptionBudget"])
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]
    assert sel.items() <= pod_labels.items()
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    c = dep["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in ports
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ports, probe
    # The HPA scales on CPU, which needs a CPU request; one process per CPU.
    procs = int(next(a.split("=")[1] for a in c["args"] if a.startswith("--processes=")))
    assert int(c["resources"]["limits"]["cpu"]) == procs
    assert c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]
    # The kubelet waits preStop + reload-mercy before SIGKILL.
    ini = open(os.path.join(ROOT, "deploy", "container", "container.ini")).read()
    mercy = int(re.search(r"^reload-mercy = (\d+)", ini, re.M).group(1))
    pre = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= mercy + pre
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def local_args(args, port_map):
    """The manifest's aiserve arguments, with the image's paths mapped onto the
    repository and the ports onto free ones."""
    out = []
    for a in args:
        a = a.replace("/usr/share/aiserve/container.ini",
                      os.path.join(ROOT, "deploy", "container", "container.ini"))
        a = a.replace("/usr/share/aiserve/", ROOT + "/")
        a = a.replace("/mnt/models/model.onnx", os.path.join(ROOT, "models", "digits.onnx"))
        a = a.replace("{{.Name}}", "digits")
        for old, new in port_map.items():
            a = re.sub(rf"(0\.0\.0\.0):{old}\b", rf"127.0.0.1:{new}", a)
        out.append(a)
    return out


def test_the_deployments_command_line_serves_every_probe(procs, tmp_path):
    dep = by_kind(docs("deployment.yaml"))["Deployment"]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    http, admin = free_port(), free_port()
    args = local_args(c["args"], {ports["admin"]: admin})
    # The ini's model paths are the image's: run from a directory laid out like it.
    share = tmp_path / "share"
    share.mkdir()
    os.symlink(os.path.join(ROOT, "models"), share / "models")
    ini = open(args[0]).read().replace("/usr/share/aiserve/", str(share) + "/")
    ini = re.sub(r"^http = .*$", f"http = 127.0.0.1:{http}", ini, flags=re.M)
    (tmp_path / "c.ini").write_text(ini)
    p = procs.start([binary("aiserve"), str(tmp_path / "c.ini"), *args[1:]])
    wait_port(admin, timeout=60, proc=p)
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        g = c[probe]["httpGet"]
        port = {"admin": admin, "http": http}[g["port"]]
        deadline = 60
        t = time.monotonic()
        while get(port, g["path"])[0] != 200:
            assert time.monotonic() - t < deadline, (probe, g)
            time.sleep(0.1)
    assert get(admin, "/metrics")[0] == 200
    assert get(http, "/")[2] == b"Hello, World!"


def test_kserve_runtime_declares_onnx_v2_and_its_args_serve_a_model(procs):
    rt = by_kind(docs("kserve/servingruntime.yaml"))["ClusterServingRuntime"]
    assert rt["apiVersion"] == "serving.kserve.io/v1alpha1"
    fmts = {f["name"]: f for f in rt["spec"]["supportedModelFormats"]}
    assert fmts["onnx"]["autoSelect"] is True
    assert "v2" in rt["spec"]["protocolVersions"]
    c = rt["spec"]["containers"][0]
    assert c["name"] == "kserve-container"  # KServe looks the container up by this name
    port = free_port()
    args = local_args(c["args"], {c["ports"][0]["containerPort"]: port})
    p = procs.start([binary("aiserve"), *args])
    wait_port(port, timeout=60, proc=p)
    t = time.monotonic()
    while get(port, c["readinessProbe"]["httpGet"]["path"])[0] != 200:
        assert time.monotonic() - t < 60
        time.sleep(0.1)
    assert get(port, c["livenessProbe"]["httpGet"]["path"])[0] == 200
    assert get(port, "/v2/models/digits/ready")[0] == 200

    isvc = by_kind(docs("kserve/inferenceservice.yaml"))["InferenceService"]
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == rt["metadata"]["name"]
    assert model["modelFormat"]["name"] in fmts
    assert model["protocolVersion"] in rt["spec"]["protocolVersions"]
