"""The eTrac simulator over real HTTP, with plain httpx (not the project's client)."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from etrack.model import canonical_plate
from etrack.simulator.config import Account, FleetConfig, QuirkConfig
from etrack.simulator.server import (
    FaultConfig,
    SimulatorConfig,
    SimulatorHandle,
    build_config,
    command,
    run_in_thread,
)

MakeSimulator = Callable[..., SimulatorHandle]
DAY = date(2025, 1, 7)  # the default simulator's now is 2025-01-08 12:00 local


@pytest.fixture
def http(simulator: SimulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(auth=simulator.auth, timeout=5) as client:
        yield client


def post(client: httpx.Client, sim: SimulatorHandle, endpoint: str, **body: Any) -> httpx.Response:
    return client.post(sim.url(endpoint), json=body or None)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


# ---------------------------------------------------------------- envelopes
def test_latest_positions_envelope(simulator: SimulatorHandle, http: httpx.Client) -> None:
    response = http.post(simulator.url("ultimas-posicoes"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code_header"] == 200
    assert body["retorno"] == simulator.fleet.latest_rows()
    assert sorted(canonical_plate(r["placa"]) for r in body["retorno"]) == sorted(
        simulator.fleet.plates()
    )


@pytest.mark.parametrize("spelling", [str.lower, lambda p: f"{p[:3]}-{p[3:]}", str])
def test_latest_position_of_one_plate(
    simulator: SimulatorHandle, http: httpx.Client, spelling: Callable[[str], str]
) -> None:
    plate = simulator.fleet.plates()[1]
    body = post(http, simulator, "ultimaposicao", placa=spelling(plate)).json()
    assert body == {"code_header": 200, "retorno": [simulator.fleet.latest_row(plate)]}


def test_history_of_a_day(simulator: SimulatorHandle, http: httpx.Client) -> None:
    plate = simulator.fleet.plates()[0]
    body = post(http, simulator, "ultimasposicoesterminal", placa=plate, data="07/01/2025").json()
    vehicle = simulator.fleet.vehicle(plate)
    assert body["code_header"] == 200
    assert body["terminal"] == {
        "placa": vehicle.display_plate,
        "descricao": vehicle.descricao,
        "frota": vehicle.frota,
    }
    assert body["posicoes"] == simulator.fleet.history_rows(plate, DAY)
    assert len(body["posicoes"]) > 96


def test_cached_answers_are_served_again_unchanged(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(cache_answers=True)
    plate = sim.fleet.plates()[0]
    with httpx.Client(auth=sim.auth, timeout=5) as client:
        first = post(client, sim, "ultimasposicoesterminal", placa=plate, data="07/01/2025")
        again = post(client, sim, "ultimasposicoesterminal", placa=plate, data="07/01/2025")
        other = post(client, sim, "ultimasposicoesterminal", placa=plate, data="06/01/2025")
        wrong = httpx.post(
            sim.url("ultimasposicoesterminal"),
            json={"placa": plate, "data": "07/01/2025"},
            auth=("nobody@example.com", "wrong"),
        )
    assert first.content == again.content
    assert first.json()["posicoes"] == sim.fleet.history_rows(plate, DAY)
    assert other.json()["posicoes"] == sim.fleet.history_rows(plate, date(2025, 1, 6))
    # Still authenticated and counted: only the answer's body is remembered.
    assert wrong.status_code == 401
    assert sim.stats().count("ultimasposicoesterminal", 200) == 3


def test_cached_answers_need_a_frozen_clock() -> None:
    with pytest.raises(ValueError, match="frozen clock"):
        build_config(now=None, cache_answers=True)


def test_history_of_a_window(simulator: SimulatorHandle, http: httpx.Client) -> None:
    plate = simulator.fleet.plates()[2]
    body = post(
        http,
        simulator,
        "ultimasposicoesterminal",
        placa=plate,
        data_inicio="06/01/2025 12:00:00",
        data_fim="07/01/2025 12:00:00",
    ).json()
    tz = simulator.fleet.tz
    expected = simulator.fleet.window_rows(
        plate, datetime(2025, 1, 6, 12, tzinfo=tz), datetime(2025, 1, 7, 12, tzinfo=tz)
    )
    assert body["posicoes"] == expected
    assert expected
    assert {row["data_transmissao"][:10] for row in expected} == {"06/01/2025", "07/01/2025"}


def test_trip_summaries(simulator: SimulatorHandle, http: httpx.Client) -> None:
    plate = simulator.fleet.plates()[0]
    body = post(http, simulator, "resumoviagens", placa=plate, data="07-01-2025").json()
    assert body == {"code_header": 200, "retorno": simulator.fleet.trip_summaries(plate, DAY)}
    assert body["retorno"]


def test_a_day_without_data_is_an_empty_list(
    simulator: SimulatorHandle, http: httpx.Client
) -> None:
    plate = simulator.fleet.plates()[0]
    history = post(http, simulator, "ultimasposicoesterminal", placa=plate, data="09/01/2025")
    assert history.json()["posicoes"] == []
    assert history.json()["code_header"] == 200
    trips = post(http, simulator, "resumoviagens", placa=plate, data="09-01-2025")
    assert trips.json() == {"code_header": 200, "retorno": []}


def test_a_day_without_data_can_be_an_error(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(no_data_error=True)
    with httpx.Client(auth=sim.auth) as client:
        plate = sim.fleet.plates()[0]
        response = post(client, sim, "ultimasposicoesterminal", placa=plate, data="09/01/2025")
        assert response.status_code == 200
        assert response.json() == {"erro": "Nenhum registro encontrado", "code_header": 404}
        assert post(client, sim, "ultimasposicoesterminal", placa=plate, data="07/01/2025").json()[
            "posicoes"
        ]


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "auth",
    [("demo@etrack.local", "wrong"), ("nobody@etrack.local", "demo-key"), None],
)
def test_bad_credentials_are_401(simulator: SimulatorHandle, auth: tuple[str, str] | None) -> None:
    response = httpx.post(simulator.url("ultimas-posicoes"), auth=auth)
    assert response.status_code == 401
    assert response.json()["code_header"] == 401
    assert "erro" in response.json()
    assert response.headers["www-authenticate"].startswith("Basic")
    assert simulator.stats().count("ultimas-posicoes", 401) == 1


@pytest.mark.parametrize(
    ("endpoint", "body", "code", "message"),
    [
        ("ultimaposicao", {"placa": "ZZZ9999"}, 404, "não encontrada"),
        ("ultimaposicao", {"placa": "not a plate"}, 404, "não encontrada"),
        ("ultimaposicao", {}, 400, "placa"),
        ("ultimasposicoesterminal", {"placa": "ZZZ9999", "data": "07/01/2025"}, 404, "não encontrada"),
        ("ultimasposicoesterminal", {"placa": "{plate}"}, 400, "data"),
        ("ultimasposicoesterminal", {"placa": "{plate}", "data": "2025-01-07"}, 400, "Data inválida"),
        ("ultimasposicoesterminal", {"placa": "{plate}", "data": "32/01/2025"}, 400, "Data inválida"),
        (
            "ultimasposicoesterminal",
            {"placa": "{plate}", "data_inicio": "06/01/2025 00:00:00"},
            400,
            "data_fim",
        ),
        (
            "ultimasposicoesterminal",
            {"placa": "{plate}", "data_inicio": "06/01/2025", "data_fim": "07/01/2025"},
            400,
            "Data inválida",
        ),
        (
            "ultimasposicoesterminal",
            {"placa": "{plate}", "data_inicio": "06/01/2025 00:00:00", "data_fim": "07/01/2025 00:00:01"},
            400,
            "24 horas",
        ),
        (
            "ultimasposicoesterminal",
            {"placa": "{plate}", "data_inicio": "07/01/2025 10:00:00", "data_fim": "07/01/2025 09:00:00"},
            400,
            "anterior",
        ),
        ("resumoviagens", {"placa": "{plate}", "data": "07/01/2025"}, 400, "DD-MM-AAAA"),
        ("resumoviagens", {"placa": "{plate}"}, 400, "data"),
    ],
)  # fmt: skip
def test_business_errors_come_inside_http_200(
    simulator: SimulatorHandle,
    http: httpx.Client,
    endpoint: str,
    body: dict[str, str],
    code: int,
    message: str,
) -> None:
    plate = simulator.fleet.plates()[0]
    request = {key: value.replace("{plate}", plate) for key, value in body.items()}
    response = http.post(simulator.url(endpoint), json=request)
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"erro", "code_header"}
    assert answer["code_header"] == code
    assert message in answer["erro"]
    assert simulator.stats().business_errors == {(endpoint, code): 1}
    assert simulator.stats().history_fetches == {}


def test_a_window_of_exactly_24_hours_is_allowed(
    simulator: SimulatorHandle, http: httpx.Client
) -> None:
    plate = simulator.fleet.plates()[0]
    body = post(
        http,
        simulator,
        "ultimasposicoesterminal",
        placa=plate,
        data_inicio="06/01/2025 00:00:00",
        data_fim="07/01/2025 00:00:00",
    ).json()
    assert body["code_header"] == 200
    assert body["posicoes"]


def test_malformed_json_body_is_a_business_error(
    simulator: SimulatorHandle, http: httpx.Client
) -> None:
    response = http.post(
        simulator.url("ultimaposicao"),
        content=b"{placa",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["code_header"] == 400


def test_another_accounts_plate_is_unknown(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(
        accounts=[Account("a@x", "ka", vehicles=2), Account("b@x", "kb", vehicles=3)]
    )
    assert (sim.user, sim.key) == ("a@x", "ka")
    b_plate = sim.fleet.plates("b@x")[0]
    with httpx.Client() as client:
        as_a = client.post(sim.url("ultimaposicao"), json={"placa": b_plate}, auth=("a@x", "ka"))
        as_b = client.post(sim.url("ultimaposicao"), json={"placa": b_plate}, auth=("b@x", "kb"))
        all_b = client.post(sim.url("ultimas-posicoes"), auth=("b@x", "kb"))
    assert as_a.json()["code_header"] == 404
    assert as_b.json()["retorno"] == [sim.fleet.latest_row(b_plate)]
    assert len(all_b.json()["retorno"]) == 3


def test_get_is_not_allowed(simulator: SimulatorHandle) -> None:
    assert httpx.get(simulator.url("ultimas-posicoes"), auth=simulator.auth).status_code == 405


# ------------------------------------------------------------------- faults
def test_rate_limit_answers_429_with_retry_after(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(rate_limit_per_s=0.5, rate_limit_burst=2)
    with httpx.Client(auth=sim.auth) as client:
        statuses = [client.post(sim.url("ultimas-posicoes")) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].headers["retry-after"] == "2"
    assert statuses[2].json()["code_header"] == 429
    assert sim.stats().faults["rate_limited"] == 1
    sim.set_faults(rate_limit_per_s=None)
    with httpx.Client(auth=sim.auth) as client:
        assert client.post(sim.url("ultimas-posicoes")).status_code == 200


def test_each_account_has_its_own_rate_limit(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(
        accounts=[
            Account("slow@x", "k1", vehicles=1, rate_limit_per_s=0.2, rate_limit_burst=1),
            Account("fast@x", "k2", vehicles=1),
        ]
    )
    with httpx.Client() as client:
        slow = [client.post(sim.url("ultimas-posicoes"), auth=("slow@x", "k1")) for _ in range(2)]
        fast = [client.post(sim.url("ultimas-posicoes"), auth=("fast@x", "k2")) for _ in range(5)]
    assert [r.status_code for r in slow] == [200, 429]
    assert slow[1].headers["retry-after"] == "5"
    assert {r.status_code for r in fast} == {200}


def test_a_fraction_of_5xx(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(error_rate=0.5, fault_seed=3)
    with httpx.Client(auth=sim.auth) as client:
        statuses = [client.post(sim.url("ultimas-posicoes")).status_code for _ in range(40)]
    assert set(statuses) == {200, 500, 503}
    assert 8 <= statuses.count(200) <= 32
    stats = sim.stats()
    assert stats.faults["error_500"] + stats.faults["error_503"] == 40 - statuses.count(200)
    assert stats.count("ultimas-posicoes", 500) == statuses.count(500)


def test_faults_are_reproducible_from_the_fault_seed(make_simulator: MakeSimulator) -> None:
    runs = []
    for _ in range(2):
        sim = make_simulator(error_rate=0.3, truncate_rate=0.3, fault_seed=11)
        with httpx.Client(auth=sim.auth) as client:
            runs.append([client.post(sim.url("ultimas-posicoes")).content for _ in range(10)])
    assert runs[0] == runs[1]


def test_truncated_json(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(truncate_rate=1.0)
    plate = sim.fleet.plates()[0]
    with httpx.Client(auth=sim.auth) as client:
        response = post(client, sim, "ultimasposicoesterminal", placa=plate, data="07/01/2025")
    assert response.status_code == 200
    whole = {
        "code_header": 200,
        "terminal": {
            "placa": sim.fleet.vehicle(plate).display_plate,
            "descricao": sim.fleet.vehicle(plate).descricao,
            "frota": sim.fleet.vehicle(plate).frota,
        },
        "posicoes": sim.fleet.history_rows(plate, DAY),
    }
    full = json.dumps(whole, ensure_ascii=False, separators=(",", ":")).encode()
    assert 0 < len(response.content) < len(full)
    assert full.startswith(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert int(response.headers["content-length"]) == len(response.content)
    assert sim.stats().faults["truncated"] == 1
    # Served, even if cut: the partition counts as fetched.
    assert sim.stats().history_fetches == {(plate, DAY): 1}


def test_hanging_request_times_out_without_blocking_others(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(hang_rate=1.0)
    with httpx.Client(auth=sim.auth) as client, pytest.raises(httpx.ReadTimeout):
        client.post(sim.url("ultimas-posicoes"), timeout=0.2)
    # The server notices the client left and lets the request go.
    wait_for(lambda: sim.stats().count("ultimas-posicoes", 499) == 1)
    # A second hanging request is held while normal requests go through.
    outcome: list[Any] = []

    def hang() -> None:
        try:
            outcome.append(httpx.post(sim.url("ultimas-posicoes"), auth=sim.auth, timeout=30))
        except httpx.HTTPError as error:
            outcome.append(error)

    thread = threading.Thread(target=hang)
    thread.start()
    wait_for(lambda: sim.stats().faults["hang"] == 2)
    sim.set_faults(hang_rate=0.0)
    with httpx.Client(auth=sim.auth, timeout=2) as client:
        assert client.post(sim.url("ultimas-posicoes")).status_code == 200
    assert thread.is_alive()
    assert not outcome
    started = time.monotonic()
    sim.stop()
    thread.join(5)
    assert time.monotonic() - started < 3
    assert not sim.running
    # Released by the shutdown with a 503 (or cut off): never left hanging.
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.HTTPError) or outcome[0].status_code == 503


def test_hang_ends_after_hang_seconds(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(hang_rate=1.0, hang_seconds=0.3)
    started = time.monotonic()
    response = httpx.post(sim.url("ultimas-posicoes"), auth=sim.auth, timeout=5)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_added_latency(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(latency_ms=150)
    started = time.monotonic()
    assert httpx.post(sim.url("ultimas-posicoes"), auth=sim.auth).status_code == 200
    assert time.monotonic() - started >= 0.15
    assert sim.stats().faults["latency"] == 1


def test_faults_endpoint_changes_faults_at_runtime(simulator: SimulatorHandle) -> None:
    response = httpx.post(f"{simulator.root_url}/_faults", json={"error_rate": 1.0})
    assert response.status_code == 200
    assert response.json()["error_rate"] == 1.0
    assert simulator.faults.error_rate == 1.0
    assert httpx.post(simulator.url("ultimas-posicoes"), auth=simulator.auth).status_code >= 500
    bad = httpx.post(f"{simulator.root_url}/_faults", json={"error_rate": 2})
    assert bad.status_code == 400
    bad = httpx.post(f"{simulator.root_url}/_faults", json={"nonsense": 1})
    assert bad.status_code == 400
    assert httpx.get(f"{simulator.root_url}/_faults").json()["error_rate"] == 1.0
    simulator.clear_faults()
    assert httpx.post(simulator.url("ultimas-posicoes"), auth=simulator.auth).status_code == 200


# -------------------------------------------------------------------- stats
def test_stats_count_requests_and_partitions(
    simulator: SimulatorHandle, http: httpx.Client
) -> None:
    plate = simulator.fleet.plates()[0]
    post(http, simulator, "ultimasposicoesterminal", placa=plate, data="07/01/2025")
    post(http, simulator, "ultimasposicoesterminal", placa=plate.lower(), data="07/01/2025")
    post(
        http,
        simulator,
        "ultimasposicoesterminal",
        placa=plate,
        data_inicio="06/01/2025 22:00:00",
        data_fim="07/01/2025 02:00:00",
    )
    post(http, simulator, "resumoviagens", placa=plate, data="07-01-2025")
    post(http, simulator, "ultimas-posicoes")
    stats = simulator.stats()
    assert stats.count("ultimasposicoesterminal", 200) == 3
    assert stats.count("/resumoviagens") == 1
    assert stats.count(status=200) == stats.total == 5
    assert stats.history_fetches == {(plate, DAY): 3, (plate, date(2025, 1, 6)): 1}
    assert stats.trip_fetches == {(plate, DAY): 1}
    assert stats.max_history_fetches() == 3

    body = httpx.get(f"{simulator.root_url}/_stats").json()
    assert body["total"] == 5
    assert body["requests"]["ultimasposicoesterminal"] == {"200": 3}
    assert body["history_fetches"][plate] == {"2025-01-06": 1, "2025-01-07": 3}
    assert body["max_history_fetches"] == 3

    assert httpx.post(f"{simulator.root_url}/_stats/reset").status_code == 200
    assert simulator.stats().total == 0
    post(http, simulator, "ultimas-posicoes")
    simulator.reset_stats()
    assert simulator.stats().total == 0
    assert not simulator.stats().history_fetches


def test_stats_need_no_auth_and_are_not_counted(simulator: SimulatorHandle) -> None:
    assert httpx.get(f"{simulator.root_url}/_stats").json()["total"] == 0


# --------------------------------------------------------------- lifecycle
def test_run_in_thread_starts_and_stops_cleanly() -> None:
    config = build_config(vehicles=2, quirks=QuirkConfig.none(), faults=FaultConfig())
    assert isinstance(config, SimulatorConfig)
    assert config.fleet.vehicles == 2
    with run_in_thread(config) as sim:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/monitoramento", sim.base_url)
        assert httpx.post(sim.url("ultimas-posicoes"), auth=sim.auth).status_code == 200
    assert not sim.running
    with pytest.raises(httpx.ConnectError):
        httpx.post(sim.url("ultimas-posicoes"), auth=sim.auth)


def test_build_config_routes_flat_overrides() -> None:
    config = build_config(seed=5, jump_rate=0.0, error_rate=0.25, port=1234, fault_seed=9)
    assert config.fleet.seed == 5
    assert config.fleet.quirks.jump_rate == 0.0
    assert config.fleet.quirks.duplicate_rate == QuirkConfig().duplicate_rate
    assert config.faults.error_rate == 0.25
    assert (config.port, config.fault_seed) == (1234, 9)
    assert build_config(fleet=FleetConfig(vehicles=3)).fleet.vehicles == 3
    with pytest.raises(TypeError):
        build_config(no_such_setting=1)


def test_the_default_simulator_fixture(simulator: SimulatorHandle) -> None:
    assert simulator.fleet.now() == datetime(2025, 1, 8, 12, tzinfo=simulator.fleet.tz)
    assert len(simulator.fleet.plates()) == 10
    assert simulator.config.fleet.seed == 42
    assert simulator.faults == FaultConfig()
    assert (simulator.user, simulator.key) == ("demo@etrack.local", "demo-key")


def test_cli_help_lists_the_options() -> None:
    app = typer.Typer()
    app.command("simulator")(command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["simulator", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--port",
        "--seed",
        "--vehicles",
        "--now",
        "--no-jumps",
        "--hang-rate",
        "--account",
    ):
        assert option in result.output


def test_cli_serves_until_interrupted() -> None:
    script = "import typer; from etrack.simulator.server import command; typer.run(command)"
    process = subprocess.Popen(
        [
            sys.executable, "-c", script, "--port", "0", "--vehicles", "3",
            "--now", "2025-01-08 12:00:00", "--no-quirks",
            "--account", "other@x:other-key:2:1.5",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        banner = lines.get(timeout=20)
        match = re.search(
            r"listening on (http://127\.0\.0\.1:\d+/monitoramento) \(user (\S+), key (\S+),", banner
        )
        assert match, banner
        base, user, key = match.groups()
        assert (user, key) == ("demo@etrack.local", "demo-key")
        latest = httpx.post(f"{base}/ultimas-posicoes", auth=(user, key)).json()["retorno"]
        assert len(latest) == 3
        other = httpx.post(f"{base}/ultimas-posicoes", auth=("other@x", "other-key")).json()
        assert len(other["retorno"]) == 2
        assert all(row["data_transmissao"] <= "08/01/2025 12:00:00" for row in latest)
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl+C
        assert process.wait(timeout=10) == 0


def test_nothing_served_after_now(simulator: SimulatorHandle, http: httpx.Client) -> None:
    now = simulator.fleet.now()
    for plate in simulator.fleet.plates()[:3]:
        rows = post(
            http, simulator, "ultimasposicoesterminal", placa=plate, data="08/01/2025"
        ).json()
        for row in rows["posicoes"]:
            moment = datetime.strptime(row["data_transmissao"], "%d/%m/%Y %H:%M:%S")
            assert moment.replace(tzinfo=now.tzinfo) <= now


# ------------------------------------------------------------------ hostile mode
def test_hostile_mode_serves_each_poison_and_can_be_turned_off(
    simulator: SimulatorHandle, http: httpx.Client
) -> None:
    clean = post(http, simulator, "ultimas-posicoes").content
    changed = httpx.post(
        f"{simulator.root_url}/_faults",
        json={"poison": ["surrogate", "huge_integer", "huge_float", "not_object"]},
    )
    assert changed.json()["poison"] == ["surrogate", "huge_integer", "huge_float", "not_object"]
    body = post(http, simulator, "ultimas-posicoes").content
    assert b'\\ud800"' in body  # lone surrogates, escaped: UTF-8 has no bytes for them
    assert b'"\\udc00' in body
    assert b'"velocidade":' + b"9" * 5000 in body
    assert b'"odometro":1e400' in body
    assert body.endswith(b'42,"not a row",null,[1,2]]}')
    with pytest.raises(ValueError, match="integer string conversion"):
        json.loads(body)  # what the poison is for: a whole-answer decode fails
    assert simulator.stats().faults["poisoned"] == 1
    simulator.clear_faults()
    assert post(http, simulator, "ultimas-posicoes").content == clean
    with pytest.raises(ValueError, match="unknown poison"):
        simulator.set_faults(poison=("arsenic",))


def test_hostile_mode_gzip_bomb_is_small_on_the_wire(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(vehicles=1, poison=("gzip_bomb",), bomb_bytes=8 << 20)
    with httpx.Client(auth=sim.auth, timeout=5) as client:
        response = client.post(sim.url("ultimas-posicoes"))
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.num_bytes_downloaded < 64 * 1024
    assert len(response.content) == 8 << 20
