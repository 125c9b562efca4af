"""``tensorflow_model_server``'s flags: one table, read by one parser the way TF Serving reads them."""

import dataclasses

import pytest

from tfsk._base.flags import (
    BOOL_FLAGS,
    DEVSERVER_FLAGS,
    FLAGS,
    PATH_FLAGS,
    PORT_FLAGS,
    format_flag,
    parse_command_line,
    read_argument,
)


def test_the_table_is_main_cc_with_server_h_defaults():
    assert len(FLAGS) == 48
    assert FLAGS["port"].default == 8500 and FLAGS["rest_api_port"].default == 0
    assert FLAGS["model_name"].default == "default" and FLAGS["saved_model_tags"].default == "serve"
    assert FLAGS["enable_model_warmup"].default is True and FLAGS["enable_profiler"].default is True
    assert FLAGS["load_retry_interval_micros"].default == 60_000_000
    assert FLAGS["per_process_gpu_memory_fraction"].kind == "float"
    assert FLAGS["grpc_max_threads"].default_value() >= 4
    assert set(PORT_FLAGS) == {"port", "rest_api_port"}
    assert {"model_config_file", "model_base_path", "ssl_config_file", "monitoring_config_file"} <= set(PATH_FLAGS)
    # not flags of TF Serving, whatever a list once said
    assert "enable_tensorflow_session_and_saved_model_bundle_memory_check" not in FLAGS
    assert "model_config_file_poll_wait_seconds_for_empty_config" not in FLAGS


def test_the_devserver_options_are_the_flags_it_implements():
    from tfsk.devserver import ServerOptions

    options = {f.name for f in dataclasses.fields(ServerOptions)} - {"unknown", "not_implemented"}
    assert options == {name for name, flag in DEVSERVER_FLAGS.items() if flag.devserver}
    defaults = ServerOptions()
    for name in options:
        assert getattr(defaults, name) == DEVSERVER_FLAGS[name].default_value(), name


@pytest.mark.parametrize("text, value", [("--port=8500", 8500), ("--port=+5", 5), ("--port= 5", 5), ("--port=-1", -1),
                                         ("--model_name=", ""), ("--model_name=a=b", "a=b"),
                                         ("--per_process_gpu_memory_fraction=0.5", 0.5),
                                         ("--per_process_gpu_memory_fraction=1e-1", 0.1),
                                         ("--enable_batching", True), ("--enable_batching=false", False)])
def test_values_tf_serving_takes(text, value):
    argument = read_argument(text)
    assert argument.error is None and argument.value == value and type(argument.value) is type(value)


@pytest.mark.parametrize("text", ["--port=", "--port=5 ", "--port=0x10", "--port=1_000", "--port=٣", "--port=8500.0",
                                  "--per_process_gpu_memory_fraction=half", "--enable_batching=1",
                                  "--enable_batching=TRUE", "--enable_batching=", "--enable_batchingX"])
def test_values_tf_serving_refuses(text):
    argument = read_argument(text)
    assert argument.error and argument.flag is not None and argument.value is None


@pytest.mark.parametrize("text", ["--port", "8500", "--bogus=1", "-port=1", "true"])
def test_items_tf_serving_ignores(text):
    assert read_argument(text).unknown


def test_a_command_line():
    line = parse_command_line(["--port=1", "--port=2", "--rest_api_port", "8501", "--enable_batching", "false", "--",
                               "--model_name=x"])
    assert line.value("port") == 2 and line.value("rest_api_port") == 0 and line.value("enable_batching") is True
    assert line.unknown == ["--rest_api_port", "8501", "false", "--", "--model_name=x"]
    assert line.value("model_name") == "default" and not line.given("model_name") and not line.errors
    assert parse_command_line(["--enable_batching=1", "--port=x"]).errors == [
        "Illegal value '1' for bool flag --enable_batching: use --enable_batching, --enable_batching=true or "
        "--enable_batching=false", "Illegal value 'x' for int flag --port"]


def test_format_flag():
    assert format_flag("enable_batching", True) == "--enable_batching=true"
    assert format_flag("port", 8500) == "--port=8500"
    assert all(read_argument(format_flag(n, False)).value is False for n in BOOL_FLAGS)
