"""The Kubernetes manifests of distributed aiload (deploy/k8s/aiload): their
structure is checked field by field (no cluster here), and the command lines
they hold run for real on loopback: the Job's headless master and a worker
with the manifests' own arguments (host names, paths, run time and users
swapped for local, short ones)."""
import csv
import os
import re

import pytest
import yaml

from harness import ROOT, binary, free_port, wait_port

K8S = os.path.join(ROOT, "deploy", "k8s", "aiload")
HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def docs(name):
    with open(os.path.join(K8S, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def all_docs():
    return {f: docs(f) for f in sorted(os.listdir(K8S)) if f.endswith(".yaml")}


def pod_spec(d):
    return d["spec"]["template"]["spec"]


def test_required_fields_and_image():
    found = all_docs()
    assert set(found) == {"scenario.yaml", "master.yaml", "workers.yaml", "job.yaml"}
    kinds = []
    for f, ds in found.items():
        for d in ds:
            assert re.match(r"^([a-z.]+/)?v\d", d["apiVersion"]), (f, d["apiVersion"])
            assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", d["metadata"]["name"]), f
            kinds.append(d["kind"])
            if d["kind"] in ("Deployment", "Job"):
                spec = pod_spec(d)
                assert spec["securityContext"]["runAsNonRoot"] is True
                for c in spec["containers"]:
                    assert c["image"] == "aiload:latest"
                    assert c["resources"]["limits"]["cpu"]
                    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
                    vols = {v["name"]: v for v in spec["volumes"]}
                    assert mounts["scenario"] == "/etc/aiload"
                    assert vols["scenario"]["configMap"]["name"] == "aiload-scenario"
                    assert c["args"][:2] == ["-f", "/etc/aiload/locustfile.ini"]
    assert sorted(kinds) == ["ConfigMap", "Deployment", "Deployment", "Job", "Job", "Service",
                             "Service"]


def test_selectors_ports_and_master_names_fit():
    m = {d["kind"]: d for d in docs("master.yaml")}
    dep, svc = m["Deployment"], m["Service"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    c = pod_spec(dep)["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= set(ports)
    assert f"--master-bind-port={ports['zmq']}" in c["args"] and "--master" in c["args"]
    assert f"--web-port={ports['web']}" in c["args"]
    assert dep["spec"]["replicas"] == 1
    # the workers reach the master through its Service
    w = docs("workers.yaml")[0]
    wc = pod_spec(w)["containers"][0]
    assert f"--master-host={svc['metadata']['name']}" in wc["args"]
    zmq_port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "zmq")
    assert f"--master-port={zmq_port}" in wc["args"]
    # one load thread per CPU
    threads = int(next(a.split("=")[1] for a in wc["args"] if a.startswith("--threads=")))
    assert int(wc["resources"]["limits"]["cpu"]) == threads


def test_job_form_fits_together():
    j = docs("job.yaml")
    svc = next(d for d in j if d["kind"] == "Service")
    master = next(d for d in j if d["kind"] == "Job" and "--master" in pod_spec(d)["containers"][0]["args"])
    workers = next(d for d in j if d["kind"] == "Job" and d is not master)
    labels = master["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    margs = pod_spec(master)["containers"][0]["args"]
    wargs = pod_spec(workers)["containers"][0]["args"]
    assert "--headless" in margs
    expect = int(next(a.split("=")[1] for a in margs if a.startswith("--expect-workers=")))
    assert workers["spec"]["parallelism"] == workers["spec"]["completions"] == expect
    assert f"--master-host={svc['metadata']['name']}" in wargs
    assert pod_spec(master)["restartPolicy"] == "Never"
    assert pod_spec(workers)["restartPolicy"] == "OnFailure"
    assert master["spec"]["backoffLimit"] == 0


def localize(args, tmp, mport, srv, users=None):
    """The manifest's arguments with cluster names, paths and sizes made local."""
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        a = a.replace("/etc/aiload", str(tmp)).replace("/results", str(tmp))
        a = re.sub(r"--master-host=.*", "--master-host=127.0.0.1", a)
        a = re.sub(r"--master-(bind-)?port=\d+", lambda m: f"--master-{m.group(1) or ''}port={mport}", a)
        a = re.sub(r"--expect-workers=\d+", "--expect-workers=1", a)
        a = re.sub(r"--expect-workers-max-wait=\d+", "--expect-workers-max-wait=30", a)
        a = re.sub(r"--threads=\d+", "--threads=1", a)
        if a in ("-u", "-r", "-t", "-H"):
            out += [a, {"-u": "2", "-r": "2", "-t": "3s", "-H": f"http://127.0.0.1:{srv}"}[a]]
            skip = True
            continue
        out.append(a)
    return out


def test_the_job_command_lines_run(procs, tmp_path):
    cm = docs("scenario.yaml")[0]
    (tmp_path / "locustfile.ini").write_text(cm["data"]["locustfile.ini"])
    srv = free_port()
    p = procs.start([PY, os.path.join(HERE, "lgserver.py"), str(srv)])
    wait_port(srv, proc=p)
    j = docs("job.yaml")
    jobs = [d for d in j if d["kind"] == "Job"]
    margs = next(pod_spec(d)["containers"][0]["args"] for d in jobs
                 if "--master" in pod_spec(d)["containers"][0]["args"])
    wargs = next(pod_spec(d)["containers"][0]["args"] for d in jobs
                 if "--worker" in pod_spec(d)["containers"][0]["args"])
    mport = free_port()
    master = procs.start([binary("aiload"), *localize(margs, tmp_path, mport, srv)], cwd=tmp_path)
    worker = procs.start([binary("aiload"), *localize(wargs, tmp_path, mport, srv)], cwd=tmp_path)
    out, err = master.communicate(timeout=50)
    assert master.returncode == 0, err.decode()
    assert worker.wait(timeout=20) == 0
    with open(tmp_path / "run_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["Request Count"]) >= 2
    assert (tmp_path / "report.html").stat().st_size > 1000
    assert (tmp_path / "summary.json").exists()
