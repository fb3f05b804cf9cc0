use super::*;
use crate::reading::Value;
use crate::sensors::i2c::testing::{hundredths, nack};
use crate::sensors::Sensor;
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

/// The worked example of the BMP280 datasheet (section 3.12), which the BME280 shares.
const BOSCH: Calibration = Calibration {
    t1: 27504,
    t2: 26435,
    t3: -1000,
    p1: 36477,
    p2: -10685,
    p3: 3024,
    p4: 2855,
    p5: 140,
    p6: -7,
    p7: 15500,
    p8: -14600,
    p9: 6000,
    // Humidity words of a typical BME280 (the example has none).
    h1: 75,
    h2: 362,
    h3: 0,
    h4: 313,
    h5: 50,
    h6: 30,
};

/// `BOSCH` as the chip sends it from 0x88 (26 bytes) and 0xE1 (7 bytes).
const CALIB_TP: [u8; 26] = [
    0x70, 0x6B, 0x43, 0x67, 0x18, 0xFC, 0x7D, 0x8E, 0x43, 0xD6, 0xD0, 0x0B, 0x27, 0x0B, 0x8C, 0x00,
    0xF9, 0xFF, 0x8C, 0x3C, 0xF8, 0xC6, 0x70, 0x17, 0x00, 0x4B,
];
const CALIB_H: [u8; 7] = [0x6A, 0x01, 0x00, 0x13, 0x29, 0x03, 0x1E];

/// adc_P = 415148, adc_T = 519888, adc_H = 0x6A00.
const DATA: [u8; 8] = [0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x6A, 0x00];

fn identify(chip_id: u8) -> Vec<Transaction> {
    let mut t = vec![
        Transaction::write_read(0x76, vec![0xD0], vec![chip_id]),
        Transaction::write_read(0x76, vec![0x88], CALIB_TP.to_vec()),
    ];
    if chip_id == CHIP_ID_BME280 {
        t.push(Transaction::write_read(0x76, vec![0xE1], CALIB_H.to_vec()));
    }
    t
}

fn forced_bme280() -> Vec<Transaction> {
    vec![
        Transaction::write(0x76, vec![0xF2, 0x01]),
        Transaction::write(0x76, vec![0xF4, 0x25]),
        Transaction::write_read(0x76, vec![0xF3], vec![0x00]),
        Transaction::write_read(0x76, vec![0xF7], DATA.to_vec()),
    ]
}

fn driver(transactions: &[Transaction]) -> Bme280<Mock, NoopDelay> {
    Bme280::new(Mock::new(transactions), NoopDelay::new(), 0x76)
}

#[test]
fn the_bosch_example_is_25_08_degrees_with_t_fine_128422() {
    assert_eq!(BOSCH.compensate_temperature(519888), (128422, 2508));
}

#[test]
fn the_bosch_example_is_100653_pascal() {
    let q24_8 = BOSCH.compensate_pressure(415148, 128422);
    assert_eq!(q24_8.map(|p| p / 256), Some(100653));
}

#[test]
fn a_blank_pressure_calibration_gives_no_pressure() {
    let blank = Calibration { p1: 0, ..BOSCH };
    assert_eq!(blank.compensate_pressure(415148, 128422), None);
}

#[test]
fn humidity_is_clamped_to_100_percent_by_the_formula() {
    assert_eq!(BOSCH.compensate_humidity(0xFFFF, 128422), 100 * 1024);
}

#[test]
fn calibration_registers_decode_including_the_shared_nibbles() {
    assert_eq!(
        Calibration::from_registers(&CALIB_TP, Some(&CALIB_H)),
        BOSCH
    );
}

#[test]
fn a_bme280_reads_temperature_humidity_and_pressure() {
    let mut transactions = identify(CHIP_ID_BME280);
    transactions.extend(forced_bme280());
    let mut sensor = driver(&transactions);
    let fields = sensor.read().expect("good read");
    assert_eq!(fields[0], ("temperature", Value::Float(25.08)));
    assert_eq!(hundredths(&fields, "humidity"), 39.03);
    assert_eq!(hundredths(&fields, "pressure"), 1006.53);
    assert_eq!(sensor.model(), Some(Model::Bme280));
    sensor.destroy().0.done();
}

#[test]
fn the_calibration_is_read_only_once() {
    let mut transactions = identify(CHIP_ID_BME280);
    transactions.extend(forced_bme280());
    transactions.extend(forced_bme280());
    let mut sensor = driver(&transactions);
    assert!(sensor.read().is_ok());
    assert!(sensor.read().is_ok());
    sensor.destroy().0.done();
}

#[test]
fn a_bmp280_reads_no_humidity() {
    let mut transactions = identify(CHIP_ID_BMP280);
    transactions.extend([
        Transaction::write(0x76, vec![0xF4, 0x25]),
        Transaction::write_read(0x76, vec![0xF3], vec![0x08]),
        Transaction::write_read(0x76, vec![0xF3], vec![0x00]),
        Transaction::write_read(0x76, vec![0xF7], DATA[..6].to_vec()),
    ]);
    let mut sensor = driver(&transactions);
    let fields = sensor.read().expect("good read");
    let names: Vec<_> = fields.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["temperature", "pressure"]);
    sensor.destroy().0.done();
}

#[test]
fn an_unknown_chip_id_is_a_protocol_error() {
    let mut sensor = driver(&[Transaction::write_read(0x76, vec![0xD0], vec![0x61])]);
    let result = sensor.read();
    assert!(
        matches!(result, Err(SensorError::Protocol(_))),
        "{result:?}"
    );
    sensor.destroy().0.done();
}

#[test]
fn no_answer_to_the_chip_id_read_is_a_bus_error() {
    let mut sensor =
        driver(&[Transaction::write_read(0x76, vec![0xD0], vec![0]).with_error(nack())]);
    let result = sensor.read();
    assert!(matches!(result, Err(SensorError::Bus(_))), "{result:?}");
    sensor.destroy().0.done();
}

#[test]
fn a_skipped_temperature_after_a_chip_reset_is_a_protocol_error() {
    let mut transactions = identify(CHIP_ID_BME280);
    transactions.extend([
        Transaction::write(0x76, vec![0xF2, 0x01]),
        Transaction::write(0x76, vec![0xF4, 0x25]),
        Transaction::write_read(0x76, vec![0xF3], vec![0x00]),
        Transaction::write_read(
            0x76,
            vec![0xF7],
            vec![0x65, 0x5A, 0xC0, 0x80, 0x00, 0x00, 0x6A, 0x00],
        ),
    ]);
    let mut sensor = driver(&transactions);
    let result = sensor.read();
    assert!(
        matches!(result, Err(SensorError::Protocol(_))),
        "{result:?}"
    );
    sensor.destroy().0.done();
}
