"""rotor's benchmark under network latency (part of scripts/bench; `--only latency` runs it alone).

Real secret managers, applications and GitHub are milliseconds away, so a ref's time is the
length of its chain of dependent requests times the latency. This part puts a latency proxy
(`rotor-sandbox --proxy-to URL --delay-ms D`) in front of each service rotor talks to over HTTP
(OpenBao or moto, the application, GitHub), and measures, for each delay D (0, 5 and 20 ms) and batch
size N (100, 500, 2,000), in one run:

- `rotor apply` of N refs, each with a pending version and a site of its own;
- the floor (`rotor-floor`): the same minimal request set from a bare async client at the same
  concurrency, through the same proxies.

and, on AWS Secrets Manager (moto behind its own proxy) at 20 ms, rotor and the floor on 100 and
500 refs, with rotor's write rate limit lifted (AWS's own write quota, about 50 a second a
region, sets the pace of a real batch long before latency does).

From the proxies' logs it reports requests per ref (OpenBao and the application, the shared
audit pages included), the chain per ref (the longest sequence of a ref's own requests in which
each begins after the one before it answered: its dependent steps), wall time and the ratio to
the floor, and the time to the first lock (process start to the first write reaching OpenBao:
the fixed cost of GitHub and git, then the preconditions of every ref), with the part before the
first precondition read (GitHub and git alone). The git remote is a local path: no
latency there.

Targets (checked by scripts/bench): at 20 ms, rotor within 1.3x of the floor at N=500, and time
linear in N (the cost of each ref past 500 at most 1.2x that of each ref from 100 to 500).
"""

import json
import os
import secrets
import statistics
import subprocess
import time

import bench_world as b

DELAYS = (0, 5, 20)
SIZES = (100, 500, 2000)
GOAL_RATIO = 1.3
GOAL_SLOPE = 1.2


class Proxy:
    """A latency proxy to `upstream`, delaying each request by `delay_ms`."""

    def __init__(self, upstream, delay_ms):
        self.proc = subprocess.Popen(
            [str(b.TARGET / "rotor-sandbox"), "--proxy-to", upstream, "--delay-ms", str(delay_ms)],
            stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()

    def log(self):
        return b.http("GET", f"{self.url}/_latency/log")

    def clear(self):
        b.http("DELETE", f"{self.url}/_latency/log")

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def scenario(world, names):
    """The application knows each ref, each with a site of its own, so that a health check
    belongs to one ref."""
    b.http("DELETE", f"{world.url}/_sandbox/app/events")
    b.http("PUT", f"{world.url}/_sandbox/app", {
        "token": b.APP_TOKEN, "bad_versions": [],
        "refs": {n: {"tenant": n.split(".")[1], "provider": "supabase", "site_ids": [site(i)]}
                 for i, n in enumerate(names)},
        "backend": {"type": "vault", "address": b.BAO, "token": world.reader, "mount": "secret",
                    "pointer_key": "current_version"},
    })


def site(i):
    return f"site-{i:05}"


def owner(entry, names, sites):
    """The ref a logged request belongs to, if it belongs to one (audit pages belong to all)."""
    path = entry["path"]
    for prefix in ("/v1/secret/metadata/", "/api/v1/secret-refs/"):
        if path.startswith(prefix):
            name = path[len(prefix):].split("/")[0]
            return name if name in names else None
    if path.startswith("/api/v1/sites/"):
        return sites.get(path.split("/")[4])
    return None


def chain(requests):
    """The longest sequence of requests each beginning after the one before it answered."""
    count, last_end = 0, -1
    for r in sorted(requests, key=lambda r: r["end_us"]):
        if r["start_us"] >= last_end:
            count += 1
            last_end = r["end_us"]
    return count


def measure(names, logs, started_us, belongs=None):
    """Requests per ref, the median chain per ref, and the time to the first lock; `belongs`
    says which ref a logged request is of (`owner` by default; AWS: `aws_owner`)."""
    belongs = belongs or owner
    index = set(names)
    sites = {site(i): n for i, n in enumerate(names)}
    per_ref = {n: [] for n in names}
    for entry in logs:
        who = belongs(entry, index, sites)
        if who:
            per_ref[who].append(entry)
    of_bao = lambda e: e["path"].startswith("/v1/secret/metadata/")
    written = lambda e: of_bao(e) and e["method"] in ("POST", "PUT")
    writes = [e["start_us"] for e in logs if written(e)]
    reads = [e["start_us"] for e in logs if of_bao(e)]

    def lock_to_marker(requests):
        mine = sorted((r for r in requests if written(r)), key=lambda r: r["start_us"])
        return (mine[-1]["end_us"] - mine[0]["start_us"]) / 1000 if mine else float("nan")

    return {
        "lock_to_marker": statistics.median(lock_to_marker(r) for r in per_ref.values()),
        "requests": len(logs) / len(names),
        "chain": statistics.median(chain(r) for r in per_ref.values()),
        "first_lock": (min(writes) - started_us) / 1e6 if writes else float("nan"),
        "first_read": (min(reads) - started_us) / 1e6 if reads else float("nan"),
        "audit_pages": sum(1 for e in logs if e["path"] == "/api/v1/audit/events"),
    }


def rotor_run(world, proxies, n, rep):
    run_id = f"l{n}r{rep}{secrets.token_hex(3)}"
    names = [f"tenant.{run_id}-{i}.supabase.service_role" for i in range(n)]
    b.provision(names)
    scenario(world, names)
    rule = f"{{match: \"tenant.*.*.*\", type: vault, address: \"{proxies['bao'].url}\", mount: secret}}"
    checkout, event, _ = b.repository(world, run_id, names, rule=rule, app_url=proxies["app"].url)
    for p in proxies.values():
        p.clear()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "GITHUB_REPOSITORY": "my-org/tenants", "GITHUB_TOKEN": "bench",
           "GITHUB_API_URL": proxies["github"].url,
           "GITHUB_EVENT_NAME": "pull_request_review", "GITHUB_EVENT_PATH": str(event),
           "GITHUB_WORKSPACE": str(checkout), "VAULT_TOKEN": world.token, "ROTOR_APP_TOKEN": b.APP_TOKEN}
    started_us = time.time() * 1e6
    code, seconds, _, out, err = b.run_measured([str(b.TARGET / "rotor"), "apply", "--format", "json"], env)
    if code != 0:
        raise SystemExit(f"bench: rotor apply (latency) exited {code}\n{err[-3000:]}")
    report = json.loads(out)
    assert report["result"] == "success" and len(report["refs"]) == n, report["result"]
    logs = proxies["bao"].log() + proxies["app"].log()
    m = measure(names, logs, started_us)
    m["seconds"] = seconds
    m["github"] = len(proxies["github"].log())
    return m


def floor_run(world, proxies, n, rep):
    run_id = f"lf{n}r{rep}{secrets.token_hex(3)}"
    names = [f"tenant.{run_id}-{i}.supabase.service_role" for i in range(n)]
    b.provision(names)
    scenario(world, names)
    refs = world.scratch / f"{run_id}.txt"
    refs.write_text("\n".join(names))
    for p in proxies.values():
        p.clear()
    env = {"PATH": os.environ["PATH"], "FLOOR_BAO_TOKEN": world.token, "FLOOR_APP_TOKEN": b.APP_TOKEN}
    started_us = time.time() * 1e6
    code, seconds, _, _, err = b.run_measured(
        [str(b.TARGET / "rotor-floor"), "--bao", proxies["bao"].url, "--app", proxies["app"].url,
         "--refs", str(refs), "--concurrency", str(b.CONCURRENCY), "--rotation-id", run_id], env)
    if code != 0:
        raise SystemExit(f"bench: rotor-floor (latency) exited {code}\n{err}")
    m = measure(names, proxies["bao"].log() + proxies["app"].log(), started_us)
    m["seconds"] = seconds
    return m


AWS_SIZES = (100, 500)
AWS_DELAY = 20
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def aws_seed(world, names):
    """Each name's secret on moto, `v1` current and `v2` labelled AWSPENDING; the application
    resolves through the AWSCURRENT label, each ref with a site of its own."""
    for name in names:
        # One after another: moto answers concurrent writes with 500s now and then.
        b.sm("CreateSecret", {"Name": name, "SecretString": "v1-" + secrets.token_hex(6)})
        b.sm("PutSecretValue", {"SecretId": name, "SecretString": "v2-" + secrets.token_hex(6),
                                "VersionStages": ["AWSPENDING"]})
    b.http("DELETE", f"{world.url}/_sandbox/app/events")
    b.http("PUT", f"{world.url}/_sandbox/app", {
        "token": b.APP_TOKEN, "bad_versions": [],
        "refs": {n: {"tenant": n.split(".")[1], "provider": "stripe", "site_ids": [site(i)]}
                 for i, n in enumerate(names)},
        "backend": {"type": "aws", "endpoint": b.MOTO, "region": "us-east-1", "stage": "AWSCURRENT"},
    })


def aws_owner(entry, names, sites):
    return entry.get("secret_id") if entry.get("secret_id") in names else owner(entry, names, sites)


def aws_run(world, proxies, n, rep, floor):
    """rotor apply (or the floor) of `n` refs on moto through the proxies, the write rate limit
    lifted (AWS's own quota, about 50 writes a second a region, would set the pace instead)."""
    run_id = f"la{'f' if floor else ''}{n}r{rep}{secrets.token_hex(3)}"
    names = [f"tenant.{run_id}-{i}.stripe.secret_key" for i in range(n)]
    aws_seed(world, names)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **AWS_ENV,
           "AWS_ENDPOINT_URL": proxies["moto"].url}
    if floor:
        refs = world.scratch / f"{run_id}.txt"
        refs.write_text("\n".join(names))
        cmd = [str(b.TARGET / "rotor-floor"), "--aws-endpoint", proxies["moto"].url, "--app",
               proxies["app"].url, "--refs", str(refs), "--concurrency", str(b.CONCURRENCY),
               "--rotation-id", run_id]
        env["FLOOR_APP_TOKEN"] = b.APP_TOKEN
        cwd = None
    else:
        rule = "{match: \"tenant.*.*.*\", type: aws-secrets-manager, region: us-east-1, rate_limit: 10000}"
        checkout, event, _ = b.repository(world, run_id, names, rule=rule, app_url=proxies["app"].url)
        env.update({"GITHUB_REPOSITORY": "my-org/tenants", "GITHUB_TOKEN": "bench",
                    "GITHUB_API_URL": proxies["github"].url, "GITHUB_EVENT_NAME": "pull_request_review",
                    "GITHUB_EVENT_PATH": str(event), "GITHUB_WORKSPACE": str(checkout),
                    "ROTOR_APP_TOKEN": b.APP_TOKEN})
        cmd = [str(b.TARGET / "rotor"), "apply", "--format", "json"]
        cwd = None
    for p in proxies.values():
        p.clear()
    started_us = time.time() * 1e6
    code, seconds, _, out, err = b.run_measured(cmd, env, cwd)
    if code != 0:
        raise SystemExit(f"bench: {'rotor-floor' if floor else 'rotor apply'} (AWS, latency) exited {code}\n{err[-3000:]}")
    m = measure(names, proxies["moto"].log() + proxies["app"].log(), started_us, aws_owner)
    m["seconds"] = seconds
    return m


def medians(rotor, floor, both, rotor_only=()):
    """The medians of rotor's runs and the floor's (`floor_<key>`; `seconds` is `floor`)."""
    med = lambda runs, key: statistics.median(r[key] for r in runs)
    out = {key: med(rotor, key) for key in both + rotor_only}
    out.update({("floor" if key == "seconds" else f"floor_{key}"): med(floor, key) for key in both})
    return out


def run_aws(world, repeat, sizes=AWS_SIZES, delay=AWS_DELAY):
    """rotor and the floor on moto at `delay`, medians of `repeat` runs."""
    results = {}
    proxies = {"moto": Proxy(b.MOTO, delay), "app": Proxy(world.url, delay),
               "github": Proxy(world.url, delay)}
    try:
        for n in sizes:
            rotor = [aws_run(world, proxies, n, rep, False) for rep in range(repeat)]
            floor = [aws_run(world, proxies, n, rep, True) for rep in range(repeat)]
            r = results[n] = medians(rotor, floor, ("seconds", "requests", "chain"))
            print(f"AWS (moto), latency {delay} ms, N={n}: rotor {r['seconds']:.2f} s, floor "
                  f"{r['floor']:.2f} s ({r['seconds'] / r['floor']:.2f}x); requests/ref "
                  f"{r['requests']:.2f} vs {r['floor_requests']:.2f}; chain {r['chain']:.0f} vs "
                  f"{r['floor_chain']:.0f}", flush=True)
    finally:
        for p in proxies.values():
            p.close()
    return results


def report_aws(results, delay=AWS_DELAY):
    print(f"\nAWS Secrets Manager (moto) at {delay} ms, write rate limit lifted")
    print("| N | rotor | floor | rotor / floor | requests/ref (rotor, floor) | chain/ref (rotor, floor) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, r in sorted(results.items()):
        print(f"| {n} | {r['seconds']:.2f} s | {r['floor']:.2f} s | {r['seconds'] / r['floor']:.2f}x | "
              f"{r['requests']:.2f}, {r['floor_requests']:.2f} | {r['chain']:.0f}, {r['floor_chain']:.0f} |")


def run(world, repeat, delays=DELAYS, sizes=SIZES):
    """Every delay and size, rotor and the floor `repeat` times each; medians."""
    results = {}
    for delay in delays:
        proxies = {"bao": Proxy(b.BAO, delay), "app": Proxy(world.url, delay),
                   "github": Proxy(world.url, delay)}
        try:
            for n in sizes:
                rotor = [rotor_run(world, proxies, n, rep) for rep in range(repeat)]
                floor = [floor_run(world, proxies, n, rep) for rep in range(repeat)]
                r = results[(delay, n)] = medians(
                    rotor, floor, ("seconds", "requests", "chain", "lock_to_marker", "first_lock"),
                    ("first_read", "audit_pages", "github"))
                print(f"latency {delay} ms, N={n}: rotor {r['seconds']:.2f} s, floor {r['floor']:.2f} s "
                      f"({r['seconds'] / r['floor']:.2f}x); requests/ref {r['requests']:.2f} vs "
                      f"{r['floor_requests']:.2f}; chain {r['chain']:.0f} vs {r['floor_chain']:.0f}; "
                      f"first lock {r['first_lock']:.2f} s vs {r['floor_first_lock']:.2f} s "
                      f"(first precondition read at {r['first_read']:.2f} s); "
                      f"audit pages {r['audit_pages']:.0f}; GitHub calls {r['github']:.0f}", flush=True)
        finally:
            for p in proxies.values():
                p.close()
    return results


def report(results, check):
    print("\nunder latency (a fixed delay per request to OpenBao, the application and GitHub)")
    print("| delay | N | rotor | floor | rotor / floor | requests/ref (rotor, floor) | chain/ref (rotor, floor) "
          "| lock to marker per ref (rotor, floor) | time to first lock (rotor, floor) | of which before the first precondition read | audit pages | GitHub calls |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (delay, n), r in sorted(results.items()):
        print(f"| {delay} ms | {n} | {r['seconds']:.2f} s | {r['floor']:.2f} s | "
              f"{r['seconds'] / r['floor']:.2f}x | {r['requests']:.2f}, {r['floor_requests']:.2f} | "
              f"{r['chain']:.0f}, {r['floor_chain']:.0f} | {r['lock_to_marker']:.0f} ms, "
              f"{r['floor_lock_to_marker']:.0f} ms | {r['first_lock']:.2f} s, "
              f"{r['floor_first_lock']:.2f} s | {r['first_read']:.2f} s | {r['audit_pages']:.0f} | {r['github']:.0f} |")
    if (20, 500) in results:
        r = results[(20, 500)]
        ratio = r["seconds"] / r["floor"]
        check(f"at 20 ms, N=500 within {GOAL_RATIO}x of the floor", ratio <= GOAL_RATIO, f"{ratio:.2f}x")
    if all((20, n) in results for n in SIZES):
        t = {n: results[(20, n)]["seconds"] for n in SIZES}
        early = (t[500] - t[100]) / 400
        late = (t[2000] - t[500]) / 1500
        check(f"at 20 ms, linear in N (each ref past 500 at most {GOAL_SLOPE}x the cost of each "
              f"from 100 to 500)", late <= GOAL_SLOPE * early,
              f"{late * 1000:.2f} ms vs {early * 1000:.2f} ms per ref ({late / early:.2f}x)")
