"""The README's and docs' command blocks, run as written against local sandboxes.

Every ```sh block of a walked document runs, in order, in one bash session in an empty
directory, with `kaspi` (and `swift run kaspi`) being the binary just built. A comment right
above a block changes how it runs:

    <!-- test: skip (why) -->            not run (it changes the machine, or is the test itself)
    <!-- test: background until REGEX -->  a command that holds its terminal: started in the
                                          background; the walk goes on once its output matches
    <!-- test: stop the background -->   the commands in the background are stopped first
                                          (as Ctrl-C would); directives combine with ";"

Where a document shows a value only the reader has (a password Kaspi sent, a database URL), the
walk replaces that text (SUBSTITUTIONS); a substitution whose text is gone from the document
fails the test, so the two cannot drift apart.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(?:<!-- test: ([^>]*?) -->\n)?```sh\n(.*?)```", re.S)


def kaspi_binary():
    for candidate in (ROOT / ".build/debug/kaspi", ROOT / ".build/release/kaspi"):
        if candidate.exists():
            return candidate
    pytest.fail("build kaspi first: swift build --product kaspi")


def blocks(document):
    return [(directive or "", code) for directive, code in BLOCK.findall((ROOT / document).read_text())]


def script(document, substitutions, workdir):
    """One bash script for the whole document."""
    found = blocks(document)
    text = "\n".join(code for _, code in found)
    for old, _ in substitutions:
        assert old in text, f"{document} no longer shows {old!r}: update the substitution"
    prelude = workdir / "prelude.sh"
    prelude.write_text(
        'kaspi() { "$KASPI_BIN" "$@"; }\n'
        'swift() { if [ "$1" = run ] && [ "$2" = kaspi ]; then shift 2; "$KASPI_BIN" "$@"; '
        'else echo "(not run here: swift $*)"; fi; }\n'
        "set -eo pipefail\n"
    )
    lines = [
        "source prelude.sh",
        "BACKGROUND=()",
        "stop_background() { for pid in \"${BACKGROUND[@]}\"; do kill -TERM -- -\"$pid\" 2>/dev/null || true; done;"
        " for pid in \"${BACKGROUND[@]}\"; do while kill -0 -- -\"$pid\" 2>/dev/null; do sleep 0.1; done; done; BACKGROUND=(); }",
        "trap stop_background EXIT",
        "wait_for() { for _ in $(seq 600); do grep -qE \"$1\" \"$2\" && return 0; sleep 0.1; done;"
        " echo \"never printed /$1/:\"; cat \"$2\"; return 1; }",
    ]
    for index, (directive, code) in enumerate(found):
        for old, new in substitutions:
            code = code.replace(old, new)
        lines.append(f"echo '### block {index + 1} of {document}'")
        directives = [part.strip() for part in directive.split(";") if part.strip()]
        if any(d.startswith("skip") for d in directives):
            continue
        if "stop the background" in directives:
            lines.append("stop_background")
        background = next((m for m in (re.fullmatch(r"background until (.+)", d) for d in directives) if m), None)
        if background:
            (workdir / f"background-{index}.sh").write_text("source prelude.sh\n" + code)
            log = f"background-{index}.log"
            lines.append(f"setsid bash background-{index}.sh > {log} 2>&1 & BACKGROUND+=($!)")
            lines.append(f"wait_for {shell_quote(background.group(1).strip())} {log}")
        else:
            lines.append(code)
    return "\n".join(lines) + "\n"


def shell_quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def walk(document, substitutions=(), environment=None, timeout=600):
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="docs-walk-"))
    try:
        (workdir / "walk.sh").write_text(script(document, substitutions, workdir))
        env = {key: value for key, value in os.environ.items() if not key.startswith("KASPI_")}
        env.update({"KASPI_BIN": str(kaspi_binary()), "HOME": str(workdir), "LOG_LEVEL": "warning"})
        env.update(environment or {})
        result = subprocess.run(
            ["bash", "walk.sh"], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
        logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("background-*.log")))
        assert result.returncode == 0, f"{document}: a command failed\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}{logs}"
        return result.stdout
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_readme():
    output = walk("README.md")
    assert "Processed" in output and "QR-1: APPROVED" in output


def test_no_document_cites_files_outside_the_repository():
    """What the product relies on is written in the repository; nothing cites the planning notes."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    private = re.compile(r"\.\./shared/|shared/(KASPI-QR-API|CONTRACT|STYLE)\.md|shared/(seed|reference)/")
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".md", ".swift", ".yaml", ".yml", ".py", ".mjs", ".js", ".sh", ".json", ""} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        assert not private.search(text), f"{name} cites a file outside the repository"


def test_getting_started():
    # The Swift code's purchase is made with the CLI here, as the code would make it.
    walk("Sources/KaspiPay/KaspiPay.docc/GettingStarted.md", [
        ("swift run kaspi trigger scan 12000000001", "swift run kaspi qr-api create --amount 1500 && swift run kaspi trigger scan 12000000001"),
    ])


def test_go_live():
    walk("docs/go-live.md", GO_LIVE)


# docs/go-live.md against the sandbox its rehearsal starts.
GO_LIVE = [
    ('-subj "/CN=<as the bank asks>"', '-subj "/CN=KaspiKit docs test"'),
    ("cat kbs_ca.crt kbs_root_ca.crt > kaspi-ca.pem", "cat certs/ca.pem > kaspi-ca.pem"),
    ("KASPI_ENV=test", "KASPI_BASE_URL=https://127.0.0.1:8545"),
    ("KASPI_QR_PKCS12=client.p12 KASPI_QR_PKCS12_PASSWORD=…", "KASPI_QR_PKCS12=certs/client.p12 KASPI_QR_PKCS12_PASSWORD=$(cat certs/client.p12.password)"),
    ("KASPI_GATEWAY_DATABASE=postgres://…", "KASPI_GATEWAY_DATABASE=gateway.sqlite"),
]


def test_deploy():
    url = os.environ.get("KASPI_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("KASPI_TEST_POSTGRES_URL is not set (CI sets it)")
        pytest.skip("KASPI_TEST_POSTGRES_URL is not set: the PostgreSQL backup commands need it")
    # Two databases: one the gateway's migrations made, to dump, and an empty one to restore into.
    suffix = os.urandom(4).hex()
    source, target = f"docs_dump_{suffix}", f"docs_restore_{suffix}"
    base = url.rsplit("/", 1)[0]
    for name in (source, target):
        subprocess.run(["psql", url, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    try:
        migrated = subprocess.run(
            [str(kaspi_binary()), "gateway", "migrate", "--database", f"{base}/{source}"], capture_output=True, text=True)
        assert migrated.returncode == 0, migrated.stderr
        walk("docs/deploy.md", DEPLOY, environment={"DOCS_PG_SOURCE": f"{base}/{source}", "DOCS_PG_RESTORE": f"{base}/{target}"})
        # The restored database is the gateway's, at the schema the source had.
        again = subprocess.run(
            [str(kaspi_binary()), "gateway", "migrate", "--database", f"{base}/{target}"], capture_output=True, text=True)
        assert again.returncode == 0 and "is up to date" in again.stdout, again.stdout + again.stderr
    finally:
        for name in (source, target):
            subprocess.run(["psql", url, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


# docs/deploy.md: the PostgreSQL commands get the two databases the test made.
DEPLOY = [
    ('pg_dump --format=custom --file=gateway.dump "$KASPI_GATEWAY_DATABASE"', 'pg_dump --format=custom --file=gateway.dump "$DOCS_PG_SOURCE"'),
    ('--dbname="$RESTORE_DATABASE"', '--dbname="$DOCS_PG_RESTORE"'),
]


def test_the_cli_reference_names_every_flag():
    """docs/cli.md names every long flag of every command (`kaspi --experimental-dump-help`)."""
    dump = subprocess.run([str(kaspi_binary()), "--experimental-dump-help"], capture_output=True, text=True, check=True)
    reference = (ROOT / "docs/cli.md").read_text()
    missing = []

    def visit(command, path):
        for argument in command.get("arguments", []):
            for name in argument.get("names", []):
                flag = "--" + name["name"]
                if name["kind"] == "long" and flag not in ("--help", "--version") and not re.search(re.escape(flag) + r"(?![a-z-])", reference):
                    missing.append(f"{' '.join(path)} {flag}")
        for sub in command.get("subcommands", []):
            visit(sub, path + [sub["commandName"]])

    visit(json.loads(dump.stdout)["command"], ["kaspi"])
    assert not missing, "docs/cli.md does not name: " + ", ".join(missing)


def test_no_command_swallows_a_flag_of_its_subcommands():
    """A parent's own flag of the same name as a subcommand's would take the subcommand's value
    (as `kaspi sandbox certs --host` once did): no command with subcommands shares a flag name
    with any command below it."""
    dump = subprocess.run([str(kaspi_binary()), "--experimental-dump-help"], capture_output=True, text=True, check=True)

    def own(command):
        return {
            name["name"] for argument in command.get("arguments", []) for name in argument.get("names", [])
            if name["kind"] == "long" and name["name"] not in ("help", "version")
        }

    def below(command):
        names = set()
        for sub in command.get("subcommands", []):
            names |= own(sub) | below(sub)
        return names

    clashes = []

    def visit(command, path):
        if command.get("subcommands"):
            shared = own(command) & below(command)
            if shared:
                clashes.append(f"{' '.join(path)}: {sorted(shared)}")
        for sub in command.get("subcommands", []):
            visit(sub, path + [sub["commandName"]])

    visit(json.loads(dump.stdout)["command"], ["kaspi"])
    assert not clashes, "flags a parent would swallow: " + "; ".join(clashes)
