""" "Is this incident still an unacknowledged problem?": each target asks its core (the escalator's
question). True: a problem nobody acknowledged; False: recovered or acknowledged; None: cannot tell."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from cores.icinga2 import Icinga2
from cores.nagios import NagiosCommandFile
from cores.openitcockpit import OpenItcockpit
from schemas.ack_listener import AckTargetSettings
from tests.support.icinga import API_PASSWORD, API_USER, Icinga2Core
from tests.support.nagios import NagiosCore
from tests.test_ack_forwarder import API_KEY, ack_message


def test_nagios_reads_the_problem_and_its_acknowledgement_from_status_dat(
    nagios_core: NagiosCore, tmp_path: Path
) -> None:
    settings = AckTargetSettings(command_file=nagios_core.command_file, status_file=nagios_core.status_file)
    target = NagiosCommandFile(settings)

    nagios_core.set_service_state("web01", "disk", "CRITICAL", "DISK CRITICAL - / 1% free")
    nagios_core.wait_for(lambda: nagios_core.status().service("web01", "disk")["current_state"] == "2")
    assert target.still_unacknowledged_problem("web01", "disk") is True
    assert target.still_unacknowledged_problem("web01", None) is False  # the host is UP

    target.acknowledge(ack_message().model_copy(update={"host_id": "web01", "service_id": "disk"}))
    nagios_core.wait_for(lambda: nagios_core.status().service("web01", "disk")["problem_has_been_acknowledged"] == "1")
    assert target.still_unacknowledged_problem("web01", "disk") is False

    nagios_core.set_host_state("web01", "DOWN", "PING CRITICAL")
    nagios_core.wait_for(lambda: nagios_core.status().host("web01")["current_state"] == "1")
    assert target.still_unacknowledged_problem("web01", None) is True

    assert target.still_unacknowledged_problem("web01", "no-such-service") is None
    assert target.still_unacknowledged_problem("no-such-host", None) is None
    missing = AckTargetSettings(command_file=nagios_core.command_file, status_file=tmp_path / "absent.dat")
    assert NagiosCommandFile(missing).still_unacknowledged_problem("web01", "disk") is None
    assert (
        NagiosCommandFile(AckTargetSettings(command_file=tmp_path / "x")).still_unacknowledged_problem("web01", "disk")
        is None
    )  # no status_file configured: unknown, callers fail open


def test_nagios_counts_a_status_dat_the_core_stopped_writing_as_unknown(
    nagios_core: NagiosCore, tmp_path: Path
) -> None:
    nagios_core.set_service_state("web01", "disk", "CRITICAL", "DISK CRITICAL")
    nagios_core.wait_for(lambda: nagios_core.status().service("web01", "disk")["current_state"] == "2")
    # A hung core leaves its last status.dat behind (a stopped one removes it): the core's own file, aged.
    left_behind = tmp_path / "status.dat"
    shutil.copy(nagios_core.status_file, left_behind)
    target = NagiosCommandFile(
        AckTargetSettings(command_file=nagios_core.command_file, status_file=left_behind, status_max_age=60)
    )
    assert target.still_unacknowledged_problem("web01", "disk") is True
    long_ago = time.time() - 120
    os.utime(left_behind, (long_ago, long_ago))
    assert target.still_unacknowledged_problem("web01", "disk") is None


def icinga2_target(core: Icinga2Core) -> Icinga2:
    return Icinga2(
        AckTargetSettings(
            kind="icinga2",
            url=core.url,
            username=API_USER,
            password=API_PASSWORD,
            ca_bundle=core.ca_file,
            timeout=3,
        )
    )


def test_icinga2_answers_from_its_objects_api(icinga2_core: Icinga2Core) -> None:
    target = icinga2_target(icinga2_core)
    assert target.still_unacknowledged_problem("web01", "disk") is None  # pending: never checked

    icinga2_core.set_service_state("web01", "disk", 2, "DISK CRITICAL")
    assert target.still_unacknowledged_problem("web01", "disk") is True

    target.acknowledge(ack_message().model_copy(update={"host_id": "web01", "service_id": "disk"}))
    icinga2_core.wait_for(lambda: icinga2_core.service("web01", "disk")["acknowledgement"] != 0)
    assert target.still_unacknowledged_problem("web01", "disk") is False

    icinga2_core.set_service_state("web01", "disk", 0, "DISK OK")
    assert target.still_unacknowledged_problem("web01", "disk") is False
    assert target.still_unacknowledged_problem("web01", "no-such-service") is None
    assert target.still_unacknowledged_problem("no-such-host", None) is None

    icinga2_core.stop()
    assert target.still_unacknowledged_problem("web01", "disk") is None  # unreachable: fail open


def oitc(httpserver: HTTPServer) -> OpenItcockpit:
    settings = AckTargetSettings(kind="openitcockpit", url=httpserver.url_for("/"), api_key=API_KEY)
    return OpenItcockpit(settings)


def servicestatus(current_state: int | None, acknowledged: bool, in_monitoring: bool = True) -> dict[str, Any]:
    # The shape of openITCOCKPIT's ServicesController::index (angular) with Servicestatus::toArray().
    status = {
        "currentState": current_state,
        "problemHasBeenAcknowledged": acknowledged,
        "isInMonitoring": in_monitoring,
        "isHardstate": True,
        "humanState": "critical",
    }
    return {
        "all_services": [{"Service": {"uuid": "svc-uuid-1"}, "Host": {"uuid": "host-uuid-1"}, "Servicestatus": status}]
    }


def test_openitcockpit_answers_from_its_index_api(httpserver: HTTPServer) -> None:
    headers = {"Authorization": f"X-OITC-API {API_KEY}"}
    query = {"angular": "true", "filter[Services.uuid]": "svc-uuid-1"}
    target = oitc(httpserver)
    answers: list[tuple[dict[str, Any] | None, int]] = [
        (servicestatus(2, False), 200),
        (servicestatus(2, True), 200),
        (servicestatus(0, False), 200),
        (servicestatus(None, False, in_monitoring=False), 200),
        ({"all_services": []}, 200),
        (None, 503),
    ]
    for body, status in answers:
        handler = httpserver.expect_ordered_request("/services/index.json", "GET", query_string=query, headers=headers)
        if body is None:
            handler.respond_with_data("down", status=status)
        else:
            handler.respond_with_json(body, status=status)
    seen = [target.still_unacknowledged_problem("host-uuid-1", "svc-uuid-1") for _ in answers]
    httpserver.check_assertions()
    assert seen == [True, False, False, None, None, None]

    hosts = {"angular": "true", "filter[Hosts.uuid]": "host-uuid-1"}
    hoststatus = {"currentState": 1, "problemHasBeenAcknowledged": False, "isInMonitoring": True}
    httpserver.expect_ordered_request(
        "/hosts/index.json", "GET", query_string=hosts, headers=headers
    ).respond_with_json({"all_hosts": [{"Host": {"uuid": "host-uuid-1"}, "Hoststatus": hoststatus}]})
    assert target.still_unacknowledged_problem("host-uuid-1", None) is True
    httpserver.check_assertions()
