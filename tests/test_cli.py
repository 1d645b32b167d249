"""The nb-ops command: demo, fetch and serve, with clean one-line failures."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from nb_ops.cli import main

NB_OPS = shutil.which("nb-ops", path=str(Path(sys.executable).parent)) or "nb-ops"


def _all_text(folder: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in folder.iterdir())


def test_demo_prints_summary_and_writes_files(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "80"]) == 0
    printed = capsys.readouterr().out
    assert "Fetched 80 operations" in printed
    assert "Operations by type (rows) and status (columns)" in printed
    counts = re.search(r"^  total +(\d+ +)+(\d+)$", printed, flags=re.M)
    assert counts and counts.group(2) == "80"  # the grand total of the counts table
    assert "Time in queue and running" in printed and re.search(r"Fine-tuning: \d+ jobs", printed)
    names = sorted(p.name for p in out.iterdir())
    tables = [f"{t}.{f}" for t in ("operations", "sources", "destinations") for f in ("csv", "parquet")]
    assert names == sorted([*tables, "timeline.png", "durations.png", "training.png"])
    for chart in ("timeline.png", "durations.png", "training.png"):
        pixels = matplotlib.image.imread(out / chart)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600  # a real picture, not an empty canvas
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20
    assert "timeline.png" in printed and "training.png" in printed
    ops = pd.read_parquet(out / "operations.parquet")
    assert len(ops) == 80 and ops["created_at"].dtype == pd.DatetimeTZDtype("ns", "UTC")
    assert len(pd.read_csv(out / "sources.csv")) == len(pd.read_parquet(out / "sources.parquet")) > 0
    assert "simsecret-" not in _all_text(out) and "simsecret-" not in printed
    assert "***" in (out / "operations.csv").read_text()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_fetch_writes_each_format(sim, monkeypatch, tmp_path, capsys, fmt):
    monkeypatch.setenv("NEBIUS_API_KEY", sim.api_key)
    monkeypatch.setenv("NEBIUS_BASE_URL", sim.base_url)
    path = tmp_path / f"ops.{fmt}"
    ids = sim.operation_ids[:7]
    assert main(["fetch", *ids, f"--{fmt}", str(path)]) == 0
    assert f"wrote 7 operations to {path}" in capsys.readouterr().out
    if fmt == "json":
        rows = json.loads(path.read_text())
        assert [r["id"] for r in rows] == ids
    else:
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        assert frame["id"].tolist() == ids
    assert sim.api_key not in path.read_bytes().decode("latin-1")


def test_fetch_without_output_prints_a_table(sim, monkeypatch, capsys):
    monkeypatch.setenv("NEBIUS_API_KEY", sim.api_key)
    monkeypatch.setenv("NEBIUS_BASE_URL", sim.base_url)
    assert main(["fetch", *sim.operation_ids[:3]]) == 0
    out = capsys.readouterr().out
    assert all(i in out for i in sim.operation_ids[:3]) and "status" in out


def test_fetch_keeps_good_ids_when_one_fails(sim, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NEBIUS_API_KEY", sim.api_key)
    monkeypatch.setenv("NEBIUS_BASE_URL", sim.base_url)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# ids\n" + "\n".join(sim.operation_ids[:4]) + "\n" + "f" * 32 + "\n\n")
    path = tmp_path / "ops.csv"
    assert main(["fetch", "--ids-file", str(ids_file), "--csv", str(path)]) == 1
    err = capsys.readouterr().err
    assert "f" * 32 in err and "not found" in err and "1 of 5 operations" in err
    assert "Traceback" not in err
    assert pd.read_csv(path)["id"].tolist() == sim.operation_ids[:4]


def test_fetch_without_key_is_one_line(sim, monkeypatch, capsys):
    monkeypatch.setenv("NEBIUS_BASE_URL", sim.base_url)
    assert main(["fetch", *sim.operation_ids[:3]]) == 1
    err = capsys.readouterr().err
    assert "NEBIUS_API_KEY" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # said once, not once per id
    assert "api_key=" not in err  # advice for the command line, not for Python
    monkeypatch.setenv("NEBIUS_API_KEY", "   ")  # blank is no key either: the same advice
    assert main(["fetch", *sim.operation_ids[:3]]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "api_key=" not in err and "no API key" in err


def test_fetch_to_an_unwritable_place_is_one_line(sim, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NEBIUS_API_KEY", sim.api_key)
    monkeypatch.setenv("NEBIUS_BASE_URL", sim.base_url)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["fetch", sim.operation_ids[0], "--csv", str(blocker / "sub" / "ops.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nb-ops: error:") and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [["fetch"], ["demo", "--size", "0"], ["serve", "--port", "70000"], ["demo", "--speed", "fast"],
     ["fetch", "x", "--csv", "a", "--json", "b"], ["nonsense"], ["serve", "--faults", "{oops"],
     ["serve", "--faults", '{"error_rate": 2}'], ["serve", "--faults", '{"typo_rate": 0.1}'], ["serve", "--latency", "-1"]],
)
def test_bad_arguments_exit_2_without_traceback(argv, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_console_script_serve_then_fetch(tmp_path):
    """The installed `nb-ops` script: serve in one process, fetch from another, Ctrl-C stops it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEBIUS_")}
    server = subprocess.Popen(
        [NB_OPS, "serve", "--size", "40", "--seed", "3"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        lines = []
        for line in server.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        url = re.search(r"NEBIUS_BASE_URL=(\S+)", text).group(1)
        key = re.search(r"NEBIUS_API_KEY=(\S+)", text).group(1)
        ids = re.findall(r"^  ([0-9a-f]{32})$", text, flags=re.M)
        assert len(ids) == 40
        out = tmp_path / "ops.json"
        fetched = subprocess.run(
            [NB_OPS, "fetch", *ids[:5], "--json", str(out)],
            env={**env, "NEBIUS_API_KEY": key, "NEBIUS_BASE_URL": url},
            capture_output=True, text=True, timeout=60,
        )
        assert fetched.returncode == 0, fetched.stderr
        assert [r["id"] for r in json.loads(out.read_text())] == ids[:5]
        bad = subprocess.run([NB_OPS, "fetch", ids[0]], env={**env, "NEBIUS_BASE_URL": url},
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "NEBIUS_API_KEY" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=20)
    assert server.returncode == 0 and "stopped" in rest


def test_ids_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    ids = tmp_path / "ids.bin"
    ids.write_bytes(b"\xff\xfe\x00abc\n")
    assert main(["fetch", "--ids-file", str(ids)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "nb-ops: error: the ids file is not UTF-8 text"


def test_ids_file_with_a_bom(sim, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NEBIUS_API_KEY", sim.api_key)
    monkeypatch.setenv("NEBIUS_BASE_URL", sim.base_url)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sim.operation_ids[:2]), encoding="utf-8-sig")
    assert main(["fetch", "--ids-file", str(ids)]) == 0
