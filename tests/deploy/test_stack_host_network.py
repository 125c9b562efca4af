"""`network_mode: host` (what a container engine without bridge networking runs): `tfsk stack` reaches the
serving container at its own ports on the host, and `tfsk stack check` knows that file."""

import yaml
from support import tfsk

from tfsk import deploy


def on_host_network(directory, keep_ports=False):
    """The stack's compose file with every service on the host network and (unless kept) no ports: section,
    as tests/engine derives the file the engine runs."""
    path = directory / "docker-compose.yml"
    data = yaml.safe_load(path.read_text())
    for service in data["services"].values():
        if not keep_ports:
            service.pop("ports", None)
        service["network_mode"] = "host"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_endpoints_are_the_containers_own_ports_on_loopback(stack_dir):
    spec = deploy.load_stack(on_host_network(stack_dir), environ={})
    assert spec.serving.host_network and not spec.serving.ports
    endpoints = spec.endpoints()
    assert endpoints.grpc == "127.0.0.1:8500"
    assert endpoints.rest == "http://127.0.0.1:8501"
    assert endpoints.metrics == "http://127.0.0.1:8501/monitoring/prometheus/metrics"


def test_a_bridged_service_without_ports_is_still_refused(stack_dir):
    path = stack_dir / "docker-compose.yml"
    data = yaml.safe_load(path.read_text())
    data["services"]["serving"].pop("ports")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    spec = deploy.load_stack(path, environ={})
    assert not spec.serving.host_network
    try:
        spec.endpoints()
    except deploy.StackError as error:
        assert "is not published" in str(error)
    else:
        raise AssertionError("endpoints() accepted a serving service with no published gRPC port")


def test_the_devserver_engine_runs_a_host_network_file_on_the_same_ports(served_stack_dir):
    spec = deploy.load_stack(on_host_network(served_stack_dir), environ={})
    arguments = deploy.devserver_arguments(spec)
    assert "--port=8500" in arguments and "--rest_api_port=8501" in arguments


def test_check_passes_a_host_network_file_and_says_the_ports_are_the_hosts(served_stack_dir):
    spec = deploy.load_stack(on_host_network(served_stack_dir), environ={})
    reports = deploy.check_stack(spec.compose, spec.declaration)
    assert all(r.ok for r in reports), [str(f) for r in reports for f in r.findings]
    warnings = [f for r in reports for f in r.findings]
    assert [f.code for f in warnings] == ["ports-open"] and "8500, 8501" in str(warnings[0])
    run = tfsk("stack", "check", "--compose-file", str(served_stack_dir / "docker-compose.yml"),
               cwd=served_stack_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "network_mode: host" in run.stdout


def test_check_refuses_ports_beside_the_host_network(served_stack_dir):
    spec = deploy.load_stack(on_host_network(served_stack_dir, keep_ports=True), environ={})
    reports = deploy.check_stack(spec.compose, spec.declaration)
    assert "ports-host-network" in {f.code for f in reports[0].errors}
