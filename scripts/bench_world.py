"""What every part of rotor's benchmark shares (scripts/bench.py, scripts/bench_latency.py): the
services' addresses (from scripts/services), HTTP and git helpers, OpenBao provisioning, the
sandbox (`World`), a scratch repository with an approved rotation pull request, and a
measured run of a command."""

import json
import os
import secrets
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
BAO = os.environ["ROTOR_TEST_BAO_ADDR"]
ROOT_TOKEN = os.environ["ROTOR_TEST_BAO_ROOT_TOKEN"]
AUDIT_LOG = Path(os.environ["ROTOR_TEST_BAO_AUDIT_LOG"])
BAO_BIN = os.environ["ROTOR_TEST_BAO_BIN"]
MOTO = os.environ["ROTOR_TEST_MOTO_URL"]
APP_TOKEN = "bench-app-token"
POLICY = 'path "secret/metadata/*" { capabilities = ["read", "create", "update"] }'
# rotor new lists and reads metadata, and changes nothing.
LIST_POLICY = 'path "secret/metadata/*" { capabilities = ["read", "list"] }'
NEW_REFS = 2000
CONCURRENCY = 16


def http(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
        return json.loads(text) if text else None


def bao(method, path, body=None, token=ROOT_TOKEN):
    return http(method, f"{BAO}/v1/{path}", body, {"X-Vault-Token": token})


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def token(name="rotor-metadata", policy=POLICY):
    bao("PUT", f"sys/policies/acl/{name}", {"policy": policy})
    t = bao("POST", "auth/token/create",
            {"policies": [name], "no_default_policy": True, "ttl": "4h"})["auth"]
    return t["client_token"], t["accessor"]


def provision(names):
    def one(name):
        for _ in range(2):
            bao("POST", f"secret/data/{name}", {"data": {"value": "bench-" + secrets.token_hex(8)}})
        bao("POST", f"secret/metadata/{name}", {"custom_metadata": {"current_version": "1"}})
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, names))


def audit_requests(accessor_hash, offset):
    """Requests by the token whose accessor hashes to `accessor_hash`, after byte `offset`."""
    count = 0
    with open(AUDIT_LOG, "rb") as f:
        f.seek(offset)
        for line in f:
            if accessor_hash.encode() in line and b'"type":"request"' in line:
                count += 1
    return count


def run_measured(cmd, env, cwd=None):
    """Runs cmd; returns (exit code, seconds, peak RSS in KiB, stdout, stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = [], []
    t_out = threading.Thread(target=lambda: out.append(proc.stdout.read()))
    t_err = threading.Thread(target=lambda: err.append(proc.stderr.read()))
    t_out.start()
    t_err.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    t_out.join()
    t_err.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, seconds, usage.ru_maxrss, out[0].decode(), err[0].decode()


class World:
    """The sandbox, rotor's token, and a scratch directory."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.sandbox = subprocess.Popen([str(TARGET / "rotor-sandbox")], stdout=subprocess.PIPE, text=True)
        self.url = self.sandbox.stdout.readline().strip()
        self.token, accessor = token()
        self.reader, _ = token()
        self.accessor_hash = bao("POST", "sys/audit-hash/file", {"input": accessor})["hash"]

    def close(self):
        self.sandbox.terminate()
        self.sandbox.wait()

    def app_scenario(self, names, failing=False):
        # Each measurement starts with an empty audit log, so that later runs do not page
        # through earlier runs' events.
        http("DELETE", f"{self.url}/_sandbox/app/events")
        http("PUT", f"{self.url}/_sandbox/app", {
            "token": APP_TOKEN,
            "bad_versions": ["2"] if failing else [],
            # A failing batch gives each tenant its own site, so that each ref's health check
            # asks about its own credential (a shared site would answer for one ref only).
            "refs": {n: {"tenant": n.split(".")[1], "provider": "supabase",
                         "site_ids": [f"site-{i:05}" if failing else "site-001"]}
                     for i, n in enumerate(names)},
            "backend": {"type": "vault", "address": BAO, "token": self.reader, "mount": "secret",
                        "pointer_key": "current_version"},
        })


def repository(world, run_id, names, staging="{}", rule=None, app_url=None):
    """A scratch origin with the config on main and an approved rotation PR of `names`;
    `staging` is the environment's policy (a rollout); `rule` the backend rule (OpenBao's by
    default)."""
    rule = rule or f"{{match: \"tenant.*.*.*\", type: vault, address: \"{BAO}\", mount: secret}}"
    base = world.scratch / run_id
    origin, work, checkout = base / "origin.git", base / "work", base / "checkout"
    base.mkdir(parents=True)
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(base, "init", "-q", "-b", "main", str(work))
    for k, v in (("user.name", "alice"), ("user.email", "alice@example.com")):
        git(work, "config", k, v)
    (work / ".github").mkdir()
    (work / ".github/rotor.yml").write_text(
        f"version: 1\nadmins: {{users: [alice, bob]}}\nenvironments: {{staging: {staging}}}\n"
        f"backends: [{rule}]\n"
        f"app: {{base_url: \"{app_url or world.url}\", audit_timeout: 60s}}\n"
        f"checks: {{settle_timeout: 60s}}\nconcurrency: {CONCURRENCY}\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "config")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    main_sha = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", "rotate")
    (work / "rotations").mkdir()
    rid = f"2026-11-25-{run_id}"
    request = f"rotations/{rid}.yaml"
    (work / request).write_text(
        f"version: 1\nid: {rid}\nenvironment: staging\nreason: benchmark\nrefs:\n"
        + "".join(f"  - ref: {n}\n" for n in names))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "request")
    head = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "HEAD:refs/heads/rotate", "HEAD:refs/pull/7/head")
    git(base, "clone", "-q", str(origin), str(checkout))
    http("PUT", f"{world.url}/_sandbox/github", {
        # A repository of its own: no comment left by the previous run's pull request.
        "owner": "my-org", "repo": "tenants", "default_branch": "main", "branches": {"main": main_sha},
        "comments": [],
        "pulls": {"7": {"author": "alice", "head_sha": head, "base": "main", "head_ref": "rotate",
                        "files": [{"filename": request, "status": "added"}],
                        "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": head}]}},
    })
    event = base / "review.json"
    event.write_text(json.dumps({
        "action": "submitted", "review": {"state": "approved", "user": {"login": "bob"}},
        "pull_request": {"number": 7, "head": {"sha": head}},
        "repository": {"full_name": "my-org/tenants", "default_branch": "main"}}))
    return checkout, event, base / request.split("/")[-1]


def sm(target, body):
    """A Secrets Manager call to moto, as the operator (moto does not check signatures)."""
    return http("POST", MOTO + "/", body, {
        "X-Amz-Target": f"secretsmanager.{target}", "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261125/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x"})
