#!/usr/bin/env python3
"""A complete local rotation and rollback with rotor (run by scripts/quickstart).

Needs OpenBao started by `scripts/services run` (ROTOR_TEST_BAO_*), and the rotor and
rotor-sandbox binaries built. Everything else is made here, in a scratch directory: a demo
secret with two versions, a git remote holding the demo repository (examples/demo's config) and
a rotation pull request whose request `rotor new` writes, and the bundled GitHub and application
stand-ins. Then it runs `rotor plan`, `rotor apply`, `rotor rollback` and `rotor verify` as the
workflows would, and prints the artifact and the audit evidence. Any unexpected result stops the
demo with a non-zero exit.

With ROTOR_DEMO_BACKEND=gcp the secret lives in the sandbox's stand-in of Google Cloud Secret
Manager instead (versions 1 and 2, the alias `current` on 1), rotor authenticates with an access
token that may get, list and update secrets and list versions but never access a value, and the
stand-in's log of every call is the evidence that no value was read.
"""

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
ROTOR = TARGET / "debug" / "rotor"
SANDBOX = TARGET / "debug" / "rotor-sandbox"
BACKEND = os.environ.get("ROTOR_DEMO_BACKEND", "openbao")
BAO = os.environ["ROTOR_TEST_BAO_ADDR"]
ROOT_TOKEN = os.environ["ROTOR_TEST_BAO_ROOT_TOKEN"]
AUDIT_LOG = Path(os.environ["ROTOR_TEST_BAO_AUDIT_LOG"])
REF = "tenant.acme.supabase.service_role"
# The secret id of REF under the GCP rule's template `{slug}_{provider}_{key}`.
GCP_SECRET = "acme_supabase_service_role"
GCP_PROJECT = "rotor-test"
# The stand-in's tokens: rotor's may get, list and update secrets and list versions; the
# application's may only resolve a version (versions.get); neither may access a value.
GCP_ROTOR_TOKEN = "gcp-rotor"
GCP_APP_TOKEN = "gcp-app"
ROTATION = "2026-11-25-acme-supabase"
APP_TOKEN = "demo-app-" + secrets.token_hex(8)
# rotor may only read metadata; it never gets a policy on secret/data/.
ROTOR_POLICY = 'path "secret/metadata/*" { capabilities = ["read", "create", "update"] }'


def step(title):
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    print(f"\n{bold}==> {title}{plain}", flush=True)


def http(method, url, body=None, token=None, header="X-Vault-Token"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header(header, token if header == "X-Vault-Token" else f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
        return json.loads(text) if text else None


def bao(method, path, body=None, token=ROOT_TOKEN):
    return http(method, f"{BAO}/v1/{path}", body, token)


def git(cwd, *args):
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def rotor(args, env, expect):
    """Runs rotor as a workflow step would and shows what it printed."""
    print(f"$ rotor {shlex.join(args)}", flush=True)
    done = subprocess.run([str(ROTOR), *args], env=env, capture_output=True, text=True)
    for stream in (done.stdout, done.stderr):
        if stream.strip():
            print("  " + stream.strip().replace("\n", "\n  "), flush=True)
    print(f"  (exit code {done.returncode})")
    if done.returncode != expect:
        sys.exit(f"demo: expected exit code {expect}, got {done.returncode}")
    return done.stdout


def main():
    scratch = Path(tempfile.mkdtemp(prefix="rotor-demo."))
    sandbox = subprocess.Popen([str(SANDBOX)], stdout=subprocess.PIPE, text=True)
    try:
        run(scratch, sandbox.stdout.readline().strip())
    finally:
        sandbox.terminate()
        sandbox.wait()
        if os.environ.get("ROTOR_DEMO_KEEP"):
            # The services stop with the demo; the repository and its record stay to explore
            # offline (rotor verify --offline, rotor evidence, rotor report).
            print(
                f"kept the demo's world in {scratch}: `git clone {scratch / 'origin.git'}` to"
                " explore the record",
                flush=True,
            )
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def provision_openbao(values):
    """Versions 1 and 2 in OpenBao, the pointer on 1; rotor's and the app's metadata tokens."""
    step("the operator provisions the secret: version 1 (live) and version 2 (new), in OpenBao")
    for value in values:
        bao("POST", f"secret/data/{REF}", {"data": {"value": value}})
    bao("POST", f"secret/metadata/{REF}", {"custom_metadata": {"current_version": "1"}})
    bao("PUT", "sys/policies/acl/rotor-metadata", {"policy": ROTOR_POLICY})

    def token():
        created = bao(
            "POST",
            "auth/token/create",
            {"policies": ["rotor-metadata"], "no_default_policy": True, "ttl": "1h"},
        )
        return created["auth"]["client_token"], created["auth"]["accessor"]

    rotor_token, rotor_accessor = token()
    app_reader, _ = token()
    print(f"  {REF}: versions 1 and 2 written; pointer custom_metadata.current_version = 1")
    print("  rotor's token may read and write metadata only: it cannot read a value")
    backend_env = {"BAO_ADDR": BAO, "VAULT_TOKEN": rotor_token}
    app_backend = {
        "type": "vault",
        "address": BAO,
        "token": app_reader,
        "mount": "secret",
        "pointer_key": "current_version",
    }
    return backend_env, app_backend, rotor_accessor


def provision_gcp(values, sandbox_url):
    """Versions 1 and 2 in the Secret Manager stand-in, the alias `current` on 1."""
    step("the operator provisions the secret: version 1 (live) and version 2 (new), in Secret Manager")
    http(
        "POST",
        f"{sandbox_url}/_sandbox/gcp/secrets",
        {
            "project": GCP_PROJECT,
            "secret": GCP_SECRET,
            "versions": [{"payload": v} for v in values],
            "aliases": {"current": 1},
        },
    )
    print(f"  projects/{GCP_PROJECT}/secrets/{GCP_SECRET}: versions 1 and 2; alias current = 1")
    print("  rotor's token may get, list and update secrets and list versions: it cannot access a value")
    backend_env = {"GOOGLE_OAUTH_ACCESS_TOKEN": GCP_ROTOR_TOKEN}
    app_backend = {
        "type": "gcp",
        "endpoint": sandbox_url,
        "token": GCP_APP_TOKEN,
        "project": GCP_PROJECT,
    }
    return backend_env, app_backend, None


def run(scratch, sandbox_url):
    values = ["demo-secret-" + secrets.token_hex(16) for _ in range(2)]
    if BACKEND == "gcp":
        backend_env, app_backend, rotor_accessor = provision_gcp(values, sandbox_url)
    else:
        backend_env, app_backend, rotor_accessor = provision_openbao(values)

    step("the application knows the ref and the sites that use it (the stand-in)")
    http(
        "PUT",
        f"{sandbox_url}/_sandbox/app",
        {
            "token": APP_TOKEN,
            "refs": {
                REF: {
                    "tenant": "acme",
                    "provider": "supabase",
                    "site_ids": ["site-001", "site-002"],
                }
            },
            "backend": app_backend,
        },
    )
    print(f"  {REF}: sites site-001, site-002")

    step("a scratch repository: the demo config on main, a rotation pull request on `rotate`")
    origin = scratch / "origin.git"
    work = scratch / "work"
    git(scratch, "init", "-q", "--bare", "-b", "main", str(origin))
    git(scratch, "init", "-q", "-b", "main", str(work))
    for args in (("user.name", "alice"), ("user.email", "alice@example.com")):
        git(work, "config", *args)
    (work / ".github").mkdir()
    config = (ROOT / "examples/demo/.github/rotor.yml").read_text()
    config = config.replace("http://127.0.0.1:8080", sandbox_url)
    config = config.replace("settle_timeout: 120s", "settle_timeout: 10s")
    config = config.replace("audit_timeout: 60s", "audit_timeout: 10s")
    if BACKEND == "gcp":
        rule = config[config.index("backends:"):config.index("app:")]
        config = config.replace(
            rule,
            "backends:\n"
            '  - match: "tenant.*.*.*"\n'
            "    type: gcp-secret-manager\n"
            f"    project: {GCP_PROJECT}\n"
            '    name: "{slug}_{provider}_{key}"\n'
            "    alias: current\n"
            f'    endpoint: "{sandbox_url}"\n',
        )
    (work / ".github/rotor.yml").write_text(config)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "rotor config")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    main_sha = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", "rotate")
    request = f"rotations/{ROTATION}.yaml"
    print("  the requester writes the request with rotor new, from what the secret manager and the application say:")
    rotor(
        [
            "--repo", str(work), "new", ROTATION,
            "--environment", "production",
            "--reason", "Quarterly rotation of the Supabase service role key",
            "--ref", REF,
            "--rollout-note", "https://status.example.com/notes/123",
        ],
        {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(scratch)),
            "ROTOR_APP_TOKEN": APP_TOKEN,
            **backend_env,
        },
        expect=0,
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"Rotate {REF}")
    head = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "HEAD:refs/heads/rotate", "HEAD:refs/pull/7/head")
    # The workspace as actions/checkout makes it with its defaults: one commit deep.
    checkout = scratch / "checkout"
    git(scratch, "init", "-q", str(checkout))
    git(checkout, "remote", "add", "origin", str(origin))
    git(checkout, "-c", "protocol.version=2", "fetch", "-q", "--no-tags", "--depth=1",
        "origin", f"+{main_sha}:refs/remotes/origin/main")
    git(checkout, "checkout", "-q", "--force", "-B", "main", "refs/remotes/origin/main")
    print((work / request).read_text().rstrip())

    github = {
        "owner": "my-org",
        "repo": "tenants",
        "default_branch": "main",
        "branches": {"main": main_sha},
        "pulls": {
            "7": {
                "author": "alice",
                "head_sha": head,
                "base": "main",
                "head_ref": "rotate",
                "files": [{"filename": request, "status": "added"}],
                "reviews": [],
            }
        },
    }
    http("PUT", f"{sandbox_url}/_sandbox/github", github)
    print(f"  GitHub and application stand-ins at {sandbox_url}")

    repository = {"full_name": "my-org/tenants", "default_branch": "main"}
    pull = {"number": 7, "head": {"sha": head}}
    events = {
        "pull_request": {"action": "opened", "number": 7, "pull_request": pull},
        "pull_request_review": {
            "action": "submitted",
            "review": {"state": "approved", "user": {"login": "bob"}},
            "pull_request": pull,
        },
        "workflow_dispatch": {
            "inputs": {"rotation_id": ROTATION, "reason": "Supabase errors after the rotation"},
            "ref": "refs/heads/main",
        },
    }
    for name, event in events.items():
        event["repository"] = repository
        (scratch / f"{name}.json").write_text(json.dumps(event))

    def env(event, **extra):
        return {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(scratch)),
            "GITHUB_REPOSITORY": "my-org/tenants",
            "GITHUB_TOKEN": "demo-github-token",
            "GITHUB_API_URL": sandbox_url,
            "GITHUB_RUN_ID": "1",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(scratch / f"{event}.json"),
            "GITHUB_WORKSPACE": str(checkout),
            "GITHUB_STEP_SUMMARY": str(scratch / "summary.md"),
            "ROTOR_APP_TOKEN": APP_TOKEN,
            **backend_env,
            **extra,
        }

    step("rotor plan (pull_request opened): what apply would do, before anyone approved")
    rotor(["plan"], env("pull_request"), expect=0)

    step("bob approves; rotor apply (pull_request_review): rotate, verify, audit, commit")
    github["pulls"]["7"]["reviews"] = [{"user": "bob", "state": "APPROVED", "commit_id": head}]
    http("PUT", f"{sandbox_url}/_sandbox/github", github)
    rotor(["apply"], env("pull_request_review"), expect=0)
    rotor(["status", REF], env("pull_request_review"), expect=0)

    step("the sticky comment rotor keeps on the pull request")
    comments = http("GET", f"{sandbox_url}/_sandbox/github")["comments"]
    print("  " + comments[0]["body"].strip().replace("\n", "\n  "))

    step("the artifact rotor committed on the pull request's branch")
    print(git(origin, "show", f"rotate:docs/security/rotations/{ROTATION}.md"))

    step("the pull request is merged; an internal_admin dispatches a rollback from main")
    git(origin, "update-ref", "refs/heads/main", "refs/heads/rotate")
    github["branches"]["main"] = git(origin, "rev-parse", "main")
    github["pulls"]["7"].update({"state": "closed", "merged": True})
    http("PUT", f"{sandbox_url}/_sandbox/github", github)
    rotor(
        ["rollback"],
        env("workflow_dispatch", GITHUB_REF="refs/heads/main", GITHUB_TRIGGERING_ACTOR="bob"),
        expect=0,
    )
    rotor(["status", REF], env("workflow_dispatch"), expect=0)

    step("the same artifact on main, now with its rollback section")
    artifact = git(origin, "show", f"main:docs/security/rotations/{ROTATION}.md")
    print(artifact)

    step("the pull request's comment: the rotation's report stays, the rollback below it")
    comments = http("GET", f"{sandbox_url}/_sandbox/github")["comments"]
    print("  " + comments[0]["body"].strip().replace("\n", "\n  "))
    if "<!-- rotor:rollback -->" not in comments[0]["body"] or "### rotor apply" not in comments[0]["body"]:
        sys.exit("demo: the rollback did not add its section below the rotation's report")

    step("audit evidence: the application's audit events for this rotation")
    events = http(
        "GET",
        f"{sandbox_url}/api/v1/audit/events?action=secret_ref_upserted&limit=100",
        token=APP_TOKEN,
        header="Authorization",
    )
    for e in events.get("events", events if isinstance(events, list) else []):
        meta = e.get("metadata", {})
        print(
            f"  {e.get('id')} {e.get('createdAt', '')} {e.get('action')} by {e.get('actorRole')}:"
            f" {meta.get('operation')} {meta.get('ref')} -> version {meta.get('versionId')}"
            f" (rotation {meta.get('rotationId')})"
        )

    step("rotor verify (schedule): the record proves itself against git, the secret manager and the application")
    rotor(["verify"], env("schedule"), expect=0)

    if BACKEND == "gcp":
        step("audit evidence: the Secret Manager stand-in's log of every call")
        calls = http("GET", f"{sandbox_url}/_sandbox/gcp/log")["calls"]
        data_reads = [c for c in calls if c.get("api") == "secrets.versions.access"]
        print(f"  {len(calls)} calls, {len(data_reads)} to versions.access")
        apis = [f"{c['token']}: {c.get('api')}" for c in calls]
        for a in sorted(set(apis)):
            print(f"    {apis.count(a):3} x {a}")
    else:
        step("audit evidence: OpenBao's audit log of rotor's token")
        hashed = bao("POST", "sys/audit-hash/file", {"input": rotor_accessor})["hash"]
        paths = []
        for line in AUDIT_LOG.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("type") == "request" and entry.get("auth", {}).get("accessor") == hashed:
                paths.append(entry["request"]["path"])
        data_reads = [p for p in paths if p.startswith("secret/data/")]
        print(f"  {len(paths)} requests by rotor's token, {len(data_reads)} to secret/data/")
        for p in sorted(set(paths)):
            print(f"    {paths.count(p):3} x {p}")
    leaked = [v for v in values if v in artifact or any(v in c["body"] for c in comments)]
    if data_reads or leaked or "## Rollback" not in artifact:
        sys.exit("demo: rotor read a value, leaked one, or did not record the rollback")
    print("\nDone: rotated 1 -> 2, verified, audited, rolled back 2 -> 1; no value was read.")


if __name__ == "__main__":
    main()
