"""docs/deploy.md and deploy/ cannot rot: every ``mpreg`` command in them parses with the
real argument parser, and the shipped Kubernetes and systemd files have the shape the
docs describe."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mpreg.cli.parser import parse
from mpreg.node.seeds import split_seeds

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "deploy.md"
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "mpreg-node.service"
ENV_FILE = DEPLOY / "systemd" / "mpreg.env"
SBATCH = DEPLOY / "slurm" / "mpreg.sbatch"
KUBERNETES = DEPLOY / "kubernetes"

# What the shell (or systemd, or Kubernetes) would put in place of a variable.
PLACEHOLDERS = {
    "SEED": "node001",
    "PORT": "7773",
    "MODELS": "/work/models.py",
    "OTHERS": "3",
    "MPREG_TOKEN": "t0k3n",
    "POD_NAMESPACE": "default",
    "HOSTNAME": "mpreg-1",
}
OPERATORS = {"&", "&&", ";", "|", "||", ">", ">>", "<", "2>", "(", ")", "&>"}
COMMAND_STARTS = OPERATORS | {"then", "do", "else", "exec", "until", "while", "if", "!", "--"}
WRAPPERS = {"srun", "sudo"}  # run the command after their options


def env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``KEY=value`` lines as systemd's EnvironmentFile reads them (comments skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def logical_lines(text: str) -> Iterator[str]:
    """Lines with backslash continuations joined, comments and systemd's ``Exec*=`` cut."""
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        line = re.sub(r"^\s*Exec\w*=", "", line)
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


def mpreg_commands(text: str) -> list[tuple[dict[str, str], list[str]]]:
    """The argv after each ``mpreg`` the shell would run, with its ``VAR=value`` prefixes."""
    found: list[tuple[dict[str, str], list[str]]] = []
    for line in logical_lines(text):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        first = 0  # where the current simple command starts
        for i, token in enumerate(tokens):
            if token in OPERATORS:
                first = i + 1
                continue
            if Path(token).name != "mpreg":
                continue
            before = tokens[first:i]
            prefix = dict(t.split("=", 1) for t in before if re.fullmatch(r"\w+=.*", t))
            words = [t for t in before if not re.fullmatch(r"\w+=.*", t)]
            wrapped = (
                bool(words) and words[0] in WRAPPERS and all(w.startswith("-") for w in words[1:])
            )
            if not words or words[-1] in COMMAND_STARTS or wrapped:
                argv: list[str] = []
                for arg in tokens[i + 1 :]:
                    if arg in OPERATORS:
                        break
                    argv.append(arg)
                found.append((prefix, argv))
    return found


def expand(argv: list[str], values: dict[str, str]) -> list[list[str]]:
    """``argv`` with its variables replaced; ``"$@"`` gives one variant without, one with --head."""

    def one(token: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2) or match.group(3)
            return values[name]

        return re.sub(r"\$\((\w+)\)|\$\{(\w+)[^}]*\}|\$(\w+)", value, token)

    variants: list[list[str]] = [[]]
    for token in argv:
        if token == "$@":
            variants = [v + extra for v in variants for extra in ([], ["--head"])]
        elif re.fullmatch(r"\$\w+", token) and " " in values.get(token[1:], ""):
            variants = [v + values[token[1:]].split() for v in variants]  # systemd splits $VAR
        else:
            variants = [[*v, one(token)] for v in variants]
    return variants


def check(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Why ``mpreg argv`` would be refused by the real parser (with ``env`` set), or None."""
    with monkeypatch.context() as patch:
        for key, value in env.items():
            if key.startswith("MPREG_"):
                patch.setenv(key, value)
        try:
            ns = parse(argv)
        except SystemExit:
            return "the parser refused it"
    if ns.command == "start":
        if not (ns.head or ns.join or ns.config):
            return "start without --head, --join or --config"
        try:
            split_seeds(ns.join or "")
        except ValueError as exc:
            return f"bad seeds: {exc}"
    return None


def _refusals(
    source: str, text: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[str]]:
    values = {**PLACEHOLDERS, **env}
    count = 0
    refused = []
    for prefix, argv in mpreg_commands(text):
        for variant in expand(argv, values):
            count += 1
            why = check(variant, {**env, **prefix}, monkeypatch)
            if why:
                refused.append(f"{source}: mpreg {shlex.join(variant)}: {why}")
    return count, refused


def _code_blocks(markdown: str, *languages: str) -> str:
    pattern = rf"```(?:{'|'.join(languages)})\n(.*?)```"
    return "\n".join(re.findall(pattern, markdown, flags=re.DOTALL))


def _exec_lines(unit: str) -> str:
    return "\n".join(line for line in unit.splitlines() if re.match(r"Exec\w*=", line))


def _statefulset() -> dict[str, Any]:
    return yaml.safe_load((KUBERNETES / "statefulset.yaml").read_text())  # type: ignore[no-any-return]


def _container() -> dict[str, Any]:
    return _statefulset()["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def _container_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in container["env"]}


def test_the_extractor_finds_commands_where_the_shell_would_run_them() -> None:
    text = (
        "pip install mpreg\nkubectl exec mpreg-0 -- mpreg status\n"
        "X=1 mpreg start --head && mpreg stop  # mpreg demo\n"
        'srun --nodes=1 \\\n    mpreg start --join "$SEED:7773" &\n'
        "ExecStart=/opt/venv/bin/mpreg start $MPREG_START_OPTIONS\n"
    )
    assert mpreg_commands(text) == [
        ({}, ["status"]),
        ({"X": "1"}, ["start", "--head"]),
        ({}, ["stop"]),
        ({}, ["start", "--join", "$SEED:7773"]),
        ({}, ["start", "$MPREG_START_OPTIONS"]),
    ]


def test_every_mpreg_command_in_docs_and_deploy_files_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = _container()
    sources = [
        ("docs/deploy.md", _code_blocks(DOCS.read_text(), "bash", "sh"), {}, 12),
        # The unit's lines in the docs run with the environment file's values.
        ("docs/deploy.md", _code_blocks(DOCS.read_text(), "ini"), env_file(), 1),
        ("deploy/systemd/mpreg-node.service", _exec_lines(UNIT.read_text()), env_file(), 1),
        ("deploy/slurm/mpreg.sbatch", SBATCH.read_text(), {}, 3),
        (
            "deploy/kubernetes/statefulset.yaml",
            "\n".join(container["args"]),
            {**_container_env(container), "MPREG_ADVERTISE_HOST": "10.1.2.3"},
            2,
        ),
        (
            "deploy/kubernetes/statefulset.yaml readinessProbe",
            shlex.join(container["readinessProbe"]["exec"]["command"]),
            {},
            1,
        ),
    ]
    refused: list[str] = []
    for source, text, env, at_least in sources:
        found, bad = _refusals(source, text, env, monkeypatch)
        assert found >= at_least, f"{source}: only {found} mpreg commands found"
        refused += bad
    assert not refused, "\n".join(refused)


def test_yaml_shown_in_the_docs_is_what_the_shipped_statefulset_says() -> None:
    shipped = {line.strip() for line in (KUBERNETES / "statefulset.yaml").read_text().splitlines()}
    shown = _code_blocks(DOCS.read_text(), "yaml")
    assert shown.strip()
    for line in filter(str.strip, shown.splitlines()):
        assert line.strip() in shipped, line


def test_kubernetes_runs_a_statefulset_behind_a_headless_service_for_seeds() -> None:
    (service,) = list(yaml.safe_load_all((KUBERNETES / "service.yaml").read_text()))
    assert service["kind"] == "Service"
    assert service["spec"]["clusterIP"] == "None"
    assert [p["port"] for p in service["spec"]["ports"]] == [7773]

    statefulset = _statefulset()
    assert statefulset["kind"] == "StatefulSet"
    spec = statefulset["spec"]
    assert spec["serviceName"] == service["metadata"]["name"]
    assert spec["podManagementPolicy"] == "OrderedReady"  # only mpreg-0 may found
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    container = _container()
    env = {e["name"]: e for e in container["env"]}
    assert env["MPREG_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "mpreg-token"
    assert env["MPREG_ADVERTISE_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    seed = env["MPREG_JOIN"]["value"]
    assert seed.startswith(f"{service['metadata']['name']}.$(POD_NAMESPACE).svc.cluster.local")
    assert [p["containerPort"] for p in container["ports"]] == [7773]


def test_the_systemd_unit_reads_the_token_seeds_and_address_from_its_environment() -> None:
    unit = UNIT.read_text()
    assert "EnvironmentFile=/etc/mpreg/mpreg.env" in unit
    assert "Restart=on-failure" in unit
    assert "--block" in unit  # systemd supervises the foreground process
    assert {"MPREG_TOKEN", "MPREG_JOIN", "MPREG_ADVERTISE_HOST"} <= env_file().keys()


@pytest.mark.cluster
def test_the_slurm_script_is_valid_bash() -> None:
    proc = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert "scontrol show hostnames" in SBATCH.read_text()
