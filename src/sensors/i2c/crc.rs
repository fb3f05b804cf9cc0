//! CRC-8 with polynomial 0x31 (x⁸ + x⁵ + x⁴ + 1), the checksum Sensirion, Aosong (AHT20) and
//! TE (HTU21D) chips send after their data. Only the start value differs between vendors, so
//! one function serves all of them and each driver names its start value.

use crate::sensors::SensorError;

const POLYNOMIAL: u8 = 0x31;

/// Start value used by Sensirion (SHT3x, SHTC3) and Aosong (AHT20).
pub const SENSIRION_INIT: u8 = 0xFF;

/// Start value used by the HTU21D and Si7021.
pub const HTU21D_INIT: u8 = 0x00;

/// CRC-8 of `data`, most significant bit first, no final XOR.
pub fn crc8(data: &[u8], init: u8) -> u8 {
    let mut crc = init;
    for &byte in data {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ POLYNOMIAL
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Compare the checksum the chip sent with the one its data gives. `expected` in the error is
/// the CRC computed from the data, `actual` the byte that came over the wire.
pub fn check(data: &[u8], received: u8, init: u8) -> Result<(), SensorError> {
    let expected = crc8(data, init);
    if expected == received {
        Ok(())
    } else {
        Err(SensorError::Crc {
            expected,
            actual: received,
        })
    }
}

/// A big-endian 16-bit word followed by its CRC, the frame Sensirion and HTU21D chips send.
pub fn checked_word(frame: [u8; 3], init: u8) -> Result<u16, SensorError> {
    check(&frame[..2], frame[2], init)?;
    Ok(u16::from_be_bytes([frame[0], frame[1]]))
}

/// Two checked words (temperature, humidity) as SHT3x and SHTC3 send them in one 6-byte read.
pub fn sensirion_pair(frame: [u8; 6]) -> Result<(u16, u16), SensorError> {
    let first = checked_word([frame[0], frame[1], frame[2]], SENSIRION_INIT)?;
    let second = checked_word([frame[3], frame[4], frame[5]], SENSIRION_INIT)?;
    Ok((first, second))
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHT3x datasheet, section 4.12 "Checksum Calculation", table 20.
    #[test]
    fn crc_of_beef_is_0x92_as_in_the_datasheet() {
        assert_eq!(crc8(&[0xBE, 0xEF], SENSIRION_INIT), 0x92);
    }

    // HTU21D(F) datasheet, "CRC Checksum" examples.
    #[test]
    fn htu21d_crc_of_0xdc_is_0x79_as_in_the_datasheet() {
        assert_eq!(crc8(&[0xDC], HTU21D_INIT), 0x79);
    }

    #[test]
    fn htu21d_crc_of_0x683a_is_0x7c_as_in_the_datasheet() {
        assert_eq!(crc8(&[0x68, 0x3A], HTU21D_INIT), 0x7C);
    }

    #[test]
    fn a_good_frame_gives_its_word() {
        assert_eq!(
            checked_word([0xBE, 0xEF, 0x92], SENSIRION_INIT).ok(),
            Some(0xBEEF)
        );
    }

    #[test]
    fn a_bad_checksum_reports_both_values() {
        match checked_word([0xBE, 0xEF, 0x93], SENSIRION_INIT) {
            Err(SensorError::Crc { expected, actual }) => {
                assert_eq!((expected, actual), (0x92, 0x93));
            }
            other => panic!("expected a CRC error, got {other:?}"),
        }
    }
}
