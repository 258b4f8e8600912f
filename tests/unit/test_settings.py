"""Settings: flags > environment > config file > defaults, and one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from coffee_orders_common.kafka_config import (
    METADATA_REFRESH_MS,
    admin_config,
    consumer_config,
    producer_config,
)
from coffee_orders_common.setting_fields import declared_settings
from coffee_orders_common.settings import SettingsError, load_settings
from coffee_orders_consumer.settings import ConsumerSettings
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_producer.settings import ProducerSettings


def _load(
    environ: dict[str, str] | None = None,
    flags: dict[str, object] | None = None,
    config: Path | None = None,
) -> ProducerSettings:
    return load_settings(
        ProducerSettings,
        flags=flags,
        environ=environ or {},
        config_path=str(config) if config else None,
    )


def test_defaults_are_the_seed_defaults() -> None:
    settings = _load()
    assert settings.kafka.brokers == ("localhost:9092",)
    assert settings.kafka.topic == "coffee_orders"
    assert settings.kafka.retry_max == 5
    assert settings.kafka.required_acks == "all"
    assert settings.listen == "0.0.0.0:50051"
    config = producer_config(settings.kafka)
    assert config["acks"] == "all" and config["enable.idempotence"] == "true"
    assert config["retries"] == "5"


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    config = tmp_path / "coffee.yaml"
    config.write_text(
        "kafka:\n  brokers: [file:1]\n  topic: from_file\n  properties:\n"
        "    compression.type: lz4\nproducer:\n  listen: 127.0.0.1:1\n"
    )
    environ = {"KAFKA_TOPIC": "from_env", "COFFEE_PRODUCER_LISTEN": "127.0.0.1:2"}
    settings = _load(environ, {"listen": "127.0.0.1:3", "kafka.topic": None}, config)
    assert settings.listen == "127.0.0.1:3"
    assert settings.kafka.topic == "from_env"
    assert settings.kafka.brokers == ("file:1",)
    assert producer_config(settings.kafka)["compression.type"] == "lz4"


def test_admin_clients_never_create_a_topic_by_asking_for_it() -> None:
    """A broker with auto.create.topics.enable would create it with its defaults: an
    uncompacted order-state topic, which the consumer then refuses."""
    assert admin_config(_load().kafka)["allow.auto.create.topics"] == "false"


def test_clients_refresh_metadata_every_10_s_unless_a_property_says_otherwise() -> None:
    """New partitions are used within seconds, not after librdkafka's 5 minutes."""
    key = "topic.metadata.refresh.interval.ms"
    kafka = _load().kafka
    for build in (producer_config, consumer_config, admin_config):
        assert build(kafka)[key] == str(METADATA_REFRESH_MS) == "10000"
    overridden = kafka.model_copy(update={"properties": {key: "60000"}})
    for build in (producer_config, consumer_config, admin_config):
        assert build(overridden)[key] == "60000"


def test_toml_config_file(tmp_path: Path) -> None:
    config = tmp_path / "coffee.toml"
    config.write_text('[kafka]\nbrokers = "a:1,b:2"\ntopic = "t"\n')
    assert _load(config=config).kafka.brokers == ("a:1", "b:2")


@pytest.mark.parametrize(
    ("value", "brokers"),
    [
        ("k1:9092,k2:9092", ("k1:9092", "k2:9092")),
        ('["k1:9092", "k2:9092"]', ("k1:9092", "k2:9092")),  # the original format's JSON-array form
        (" k1:9092 ", ("k1:9092",)),
    ],
)
def test_kafka_brokers_forms(value: str, brokers: tuple[str, ...]) -> None:
    assert _load({"KAFKA_BROKERS": value}).kafka.brokers == brokers


@pytest.mark.parametrize(
    ("value", "acks"),
    [("all", "all"), ("-1", "all"), ("1", "1"), ("local", "1"), ("0", "0"), ("none", "0")],
)
def test_required_acks_forms(value: str, acks: str) -> None:
    settings = _load({"KAFKA_REQUIRED_ACKS": value})
    assert settings.kafka.required_acks == acks
    idempotent = producer_config(settings.kafka)["enable.idempotence"]
    assert idempotent == ("true" if acks == "all" else "false")


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"KAFKA_REQUIRED_ACKS": "maybe"}, "kafka.required_acks (from environment variable"),
        ({"KAFKA_RETRY_MAX": "-1"}, "kafka.retry_max (from environment variable KAFKA_RETRY_MAX)"),
        ({"KAFKA_BROKERS": "no-port"}, "kafka.brokers"),
        ({"KAFKA_TOPIC": "bad topic"}, "not a legal Kafka topic name"),
        ({"COFFEE_PRODUCER_LISTEN": "nowhere"}, "listen"),
    ],
)
def test_bad_value_is_one_clear_error(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as error:
        _load(environ)
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tls: not-a-mapping\n", "tls must be a mapping"),
        ("kafka: [1, 2]\n", "kafka must be a mapping"),
        (
            "brokers: [a:1]\n",
            "unknown section(s) ['brokers']; expected kafka, tls, producer, consumer",
        ),
        ("kafka:\n  topic: [\n", "is not valid"),
        ("kafka:\n  nonsense: 1\n", "invalid setting kafka.nonsense (from "),
        ("producer:\n  max_in_flight: 0\n", ": producer.max_in_flight): "),
    ],
)
def test_bad_config_file_is_one_clear_error_naming_it(
    tmp_path: Path, text: str, fragment: str
) -> None:
    config = tmp_path / "coffee.yaml"
    config.write_text(text)
    with pytest.raises(SettingsError) as error:
        _load(config=config)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"cannot read config file .*nowhere\.yaml"):
        _load({"COFFEE_CONFIG": str(tmp_path / "nowhere.yaml")})


def test_a_flag_value_error_names_the_command_line() -> None:
    with pytest.raises(SettingsError, match=r"invalid setting listen \(from command line\)"):
        _load(flags={"listen": "nowhere"})


@pytest.mark.parametrize("service", ["producer", "consumer"])
def test_help_names_every_setting_with_its_env_variable_and_default(service: str) -> None:
    model = ProducerSettings if service == "producer" else ConsumerSettings
    result = RunningCommand.run_cli(service, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for declared in declared_settings(model):
        assert declared.env in text, declared.path
        assert f"default {declared.default_text}" in text, declared.path
        if declared.flag:
            assert declared.flag in text


def test_configuration_doc_lists_every_environment_variable() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for model in (ProducerSettings, ConsumerSettings):
        for declared in declared_settings(model):
            assert f"`{declared.env}`" in doc, f"{declared.env} ({declared.path}) is not documented"


def test_bad_setting_stops_the_producer_with_exit_2(tmp_path: Path) -> None:
    result = RunningCommand.run_cli(
        "producer", env={"KAFKA_REQUIRED_ACKS": "maybe", "PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "coffee-orders producer: error: invalid setting kafka.required_acks (from environment "
        "variable KAFKA_REQUIRED_ACKS): expected one of all, 1, 0, -1, none, local; got 'maybe'"
    ]


def test_librdkafka_repeats_are_logged_once_per_window() -> None:
    import logging

    from coffee_orders_common.logs import RepeatFilter

    repeat = RepeatFilter(window_s=30)

    def record(message: str, at: float) -> logging.LogRecord:
        made = logging.LogRecord("librdkafka", logging.WARNING, "", 0, message, None, None)
        made.created = at
        return made

    failing = "Connect to 127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)"
    assert repeat.filter(record(failing, 0.0))
    assert not repeat.filter(record(failing.replace("0ms", "3ms"), 10.0))
    assert repeat.filter(record(failing, 31.0))
    assert repeat.filter(record("something else", 11.0))


@pytest.mark.parametrize(
    ("key", "value"), [("enable.auto.offset.store", "true"), ("enable.auto.commit", "False")]
)
def test_consumer_properties_that_undo_at_least_once_are_refused(
    tmp_path: Path, key: str, value: str
) -> None:
    config = tmp_path / "coffee.yaml"
    config.write_text(f'kafka:\n  properties:\n    {key}: "{value}"\n')
    with pytest.raises(SettingsError) as error:
        load_settings(ConsumerSettings, flags=None, environ={}, config_path=str(config))
    assert f"kafka.properties {key}={value} would " in str(error.value)
    assert "\n" not in str(error.value)
    _load(config=config)  # the producer has no offsets to keep: accepted there
