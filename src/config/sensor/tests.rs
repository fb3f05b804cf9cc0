use super::super::kinds::all_names;
use super::*;
use crate::config::Aggregation;
use crate::config::{Board, ConfigError};

fn load(text: &str) -> Result<Board, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("board.toml");
    std::fs::write(&path, text).unwrap();
    Board::load(&path)
}

#[test]
fn a_key_of_another_kind_is_refused_with_file_line_and_key() {
    let text = "[[sensor]]\nid = \"T1\"\nkind = \"sht3x\"\nserial = \"28-01\"\n";
    let err = load(text).unwrap_err().to_string();
    assert!(
        err.contains("board.toml:4: key `sensor[0].serial`"),
        "{err}"
    );
    assert!(
        err.contains("kind `sht3x` does not take `serial`; it takes bus, address"),
        "{err}"
    );
}

#[test]
fn the_refused_key_is_found_in_the_right_sensor_table() {
    let text = "[[sensor]]\nid = \"cpu\"\nkind = \"soc_temp\"\npath = \"/x\"\n\
                [[sensor]]\nid = \"T\"\nkind = \"simulated_climate\"\npath = \"/y\"\n";
    let err = load(text).unwrap_err().to_string();
    assert!(err.contains(":8: key `sensor[1].path`"), "{err}");
    assert!(err.contains("it takes seed"), "{err}");
}

#[test]
fn an_unknown_kind_lists_the_kinds_there_are() {
    let err = load("[[sensor]]\nid = \"T\"\nkind = \"sht99\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains(":3: key `sensor[0].kind`"), "{err}");
    assert!(err.contains("unknown kind `sht99`"), "{err}");
    assert!(
        err.contains("aht10") && err.contains("reed_switch"),
        "{err}"
    );
}

#[test]
fn a_gpio_sensor_without_a_line_is_refused() {
    let err = load("[[sensor]]\nid = \"door\"\nkind = \"reed_switch\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains(":1: key `sensor[0].line`"), "{err}");
    assert!(err.contains("needs `line`"), "{err}");
}

#[test]
fn every_kind_in_the_tables_round_trips_through_its_name() {
    for name in all_names() {
        let text = format!("id = \"s\"\nkind = \"{name}\"\nline_name = \"GPIO17\"\n");
        let parsed: Result<SensorConfig, _> = toml::from_str(&text);
        let parsed = match parsed {
            // Only GPIO kinds take `line_name`; every other kind is parsed without it.
            Err(_) => toml::from_str::<SensorConfig>(&format!("id = \"s\"\nkind = \"{name}\"\n")),
            ok => ok,
        };
        assert_eq!(parsed.expect(name).kind.name(), name);
    }
}

#[test]
fn every_kind_specific_key_is_taken_by_some_kind() {
    let every_key = "id = \"s\"\nkind = \"x\"\nseed = 1\nbus = \"/b\"\naddress = 1\n\
                     chip = \"c\"\nline = 1\nline_name = \"n\"\nactive_low = true\n\
                     bias = \"pull_up\"\ndebounce = \"1s\"\nw1_root = \"/w\"\n\
                     iio_root = \"/i\"\niio_device = \"d\"\npath = \"/p\"\nserial = \"s\"\n";
    let table: SensorTable = toml::from_str(every_key).unwrap();
    let mut given = table.given_keys();
    let mut taken: Vec<&str> = all_names()
        .into_iter()
        .flat_map(|name| SensorKind::from_table(name, &table).unwrap().keys())
        .copied()
        .collect();
    given.sort_unstable();
    taken.sort_unstable();
    taken.dedup();
    assert_eq!(given, taken);
}

#[test]
fn each_kind_keeps_the_settings_it_takes() {
    let cfg: SensorConfig =
        toml::from_str("id = \"T\"\nkind = \"aht10\"\naddress = 0x39\n").unwrap();
    let settings = I2cSettings {
        bus: None,
        address: Some(0x39),
    };
    assert_eq!(cfg.kind, SensorKind::I2c(I2cChip::Aht10, settings));
    let cfg: SensorConfig = toml::from_str(
        "id = \"d\"\nkind = \"pir\"\nchip = \"gpiochip4\"\nline = 17\nactive_low = true\n",
    )
    .unwrap();
    let line = GpioLine::Offset {
        chip: Some("gpiochip4".into()),
        line: 17,
    };
    match cfg.kind {
        SensorKind::Gpio(GpioKind::Pir, settings) => {
            assert_eq!(settings.line, line);
            assert!(settings.active_low);
        }
        other => panic!("expected a PIR, got {other:?}"),
    }
}

#[test]
fn event_kinds_are_the_gpio_and_simulated_edge_sensors() {
    let with_events: Vec<_> = all_names()
        .into_iter()
        .filter(|name| {
            let text = format!("id = \"s\"\nkind = \"{name}\"\nline = 1\n");
            let cfg = toml::from_str::<SensorConfig>(&text).or_else(|_| {
                toml::from_str::<SensorConfig>(&format!("id = \"s\"\nkind = \"{name}\"\n"))
            });
            cfg.expect(name).kind.has_events()
        })
        .collect();
    assert_eq!(
        with_events,
        ["simulated_motion", "simulated_door", "pir", "reed_switch"]
    );
}

#[test]
fn a_tag_named_event_is_refused_because_it_names_the_edge_of_events() {
    let text = "[[sensor]]\nid = \"d\"\nkind = \"simulated_door\"\ntags = { event = \"x\" }\n";
    let err = load(text).unwrap_err().to_string();
    assert!(err.contains("tag `event` is reserved"), "{err}");
}

fn sensor(text: &str) -> Result<SensorConfig, String> {
    toml::from_str::<SensorConfig>(text).map_err(|e| e.to_string())
}

#[test]
fn aggregate_takes_a_window_a_subset_of_the_kinds_fields_and_keep_raw() {
    let cfg = sensor(
        "id = \"T\"\nkind = \"sht3x\"\ninterval = \"1s\"\naggregate = \"1m\"\n\
         aggregate_fields = [\"temperature\"]\nkeep_raw = true\n",
    )
    .unwrap();
    let expected = Aggregation {
        window: std::time::Duration::from_secs(60),
        fields: Some(vec!["temperature".into()]),
        keep_raw: true,
    };
    assert_eq!(cfg.aggregate, Some(expected));
    assert_eq!(
        sensor("id = \"T\"\nkind = \"pir\"\nline = 1\n")
            .unwrap()
            .aggregate,
        None
    );
}

#[test]
fn aggregate_fields_must_be_fields_of_the_kind() {
    let err = sensor(
        "id = \"T\"\nkind = \"ds18b20\"\naggregate = \"1m\"\naggregate_fields = [\"humidity\"]\n",
    )
    .unwrap_err();
    assert!(
        err.contains("kind `ds18b20` has no field `humidity`; its fields are temperature"),
        "{err}"
    );
}

#[test]
fn aggregation_keys_without_a_window_or_a_window_shorter_than_the_interval_are_refused() {
    let err = sensor("id = \"T\"\nkind = \"sht3x\"\nkeep_raw = true\n").unwrap_err();
    assert!(
        err.contains("key `keep_raw`: only means something with `aggregate`"),
        "{err}"
    );
    let err = sensor("id = \"T\"\nkind = \"sht3x\"\ninterval = \"1m\"\naggregate = \"10s\"\n")
        .unwrap_err();
    assert!(err.contains("at least the sensor's interval"), "{err}");
}
